package examples_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packageDirs maps the package names the documents use to their directories.
var packageDirs = map[string]string{
	"tpm":       "../tpm",
	"tpmtest":   "../tpm/tpmtest",
	"protector": "../protector",
	"container": "../container",
	"reset":     "../reset",
	"service":   "../reset/service",
	"idp":       "../reset/idp",
	"resettest": "../reset/resettest",
	"identity":  "../reset/identity",
	"policy":    "../reset/policy",
}

// declarations collects the exported names of a package directory: top-level
// functions, types, constants and variables as "Name", and methods, struct
// fields and interface methods as "Type.Name". With tests, it collects the
// Test, Example, Fuzz and Benchmark functions of the _test.go files instead.
func declarations(t *testing.T, dir string, tests bool) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") != tests {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
					continue
				}
				typ := d.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					names[id.Name+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						var fields *ast.FieldList
						switch tt := s.Type.(type) {
						case *ast.StructType:
							fields = tt.Fields
						case *ast.InterfaceType:
							fields = tt.Methods
						}
						if fields != nil {
							for _, fl := range fields.List {
								for _, n := range fl.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					}
				}
			}
		}
	}
	return names
}

var (
	spanRE     = regexp.MustCompile("`([^`\n]+)`")
	testNameRE = regexp.MustCompile(`^(?:[a-z]+/)?((?:Test|Example|Fuzz|Benchmark)\w*)$`)
	identRE    = regexp.MustCompile(`^([a-z]+)\.([A-Z]\w*(?:\.[A-Z]\w*)?)$`)
)

// Every Go name and test the documents cite exists, so the mapping from the
// PIN reset documentation to the code cannot silently go stale.
func TestDocsNameOnlyWhatExists(t *testing.T) {
	allTests := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() {
			for name := range declarations(t, path, true) {
				allTests[name] = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	decls := map[string]map[string]bool{}
	for pkg, dir := range packageDirs {
		decls[pkg] = declarations(t, dir, false)
	}

	for _, doc := range []string{"../docs/PINRESET-MAPPING.md", "../docs/SECURITY.md", "../docs/ARCHITECTURE.md", "../README.md"} {
		data, err := os.ReadFile(doc)
		require.NoError(t, err)
		checked := 0
		for _, m := range spanRE.FindAllStringSubmatch(string(data), -1) {
			span := strings.TrimSuffix(strings.TrimSpace(m[1]), "()")
			if tm := testNameRE.FindStringSubmatch(span); tm != nil {
				assert.True(t, allTests[tm[1]], "%s names %s, which no _test.go declares", doc, span)
				checked++
				continue
			}
			if im := identRE.FindStringSubmatch(span); im != nil {
				names, ok := decls[im[1]]
				if !ok {
					continue // not one of ours (crypto.Signer, …)
				}
				assert.True(t, names[im[2]], "%s names %s, which package %s does not declare", doc, span, im[1])
				checked++
			}
		}
		if strings.HasSuffix(doc, "MAPPING.md") {
			assert.Greater(t, checked, 150, "the mapping should cite many names")
		}
	}
}
