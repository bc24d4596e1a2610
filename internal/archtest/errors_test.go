package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// moduleRoot is the directory of go.mod, two levels up from this package.
const moduleRoot = "../.."

// libraryFiles parses every non-test Go file of the module outside package
// main, keyed by its directory relative to the module root.
func libraryFiles(t *testing.T) map[string][]*ast.File {
	t.Helper()
	out := map[string][]*ast.File{}
	walkGoFiles(t, parser.ImportsOnly|parser.ParseComments, func(fset *token.FileSet, path, dir string, f *ast.File) error {
		if f.Name.Name == "main" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		out[dir] = append(out[dir], f)
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no Go files found under the module root")
	}
	return out
}

// walkGoFiles parses every non-test Go file of the module with mode,
// skipping hidden, testdata and vendor directories, and calls fn with the
// file's path and its directory relative to the module root.
func walkGoFiles(t *testing.T, mode parser.Mode, fn func(fset *token.FileSet, path, dir string, f *ast.File) error) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != moduleRoot && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, mode)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, filepath.Dir(path))
		return fn(fset, path, filepath.ToSlash(rel), f)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// errorNames returns the exported error identifiers a package declares:
// variables named ErrX and types named XError.
func errorNames(files []*ast.File) []string {
	var names []string
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
							names = append(names, n.Name)
						}
					}
				case *ast.TypeSpec:
					if s.Name.IsExported() && strings.HasSuffix(s.Name.Name, "Error") {
						names = append(names, s.Name.Name)
					}
				}
			}
		}
	}
	return names
}

// Every exported error identifier is declared in exactly one package, so
// that a name says one thing that went wrong: container.PolicyError (a weak
// PIN) and policy.SettingError (a setting that does not parse) cannot be
// confused, nor one package's ErrUnknownKey with another's.
func TestErrorNamesAreUnique(t *testing.T) {
	where := map[string][]string{}
	total := 0
	for dir, files := range libraryFiles(t) {
		for _, n := range errorNames(files) {
			where[n] = append(where[n], dir)
			total++
		}
	}
	if total < 50 {
		t.Fatalf("found only %d error identifiers: is the walk reaching the packages?", total)
	}
	var dups []string
	for n, dirs := range where {
		if len(dirs) > 1 {
			sort.Strings(dirs)
			dups = append(dups, n+" in "+strings.Join(dirs, ", "))
		}
	}
	sort.Strings(dups)
	for _, d := range dups {
		t.Errorf("error identifier declared in more than one package: %s", d)
	}
}
