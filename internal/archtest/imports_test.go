package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/hellosim/hellosim"

// rule is one row of the import-rules table of docs/ARCHITECTURE.md.
type rule struct {
	pkg     string          // a package directory, or "dir/..." for a tree
	layer   int             // the layer column: a package imports only lower layers
	any     bool            // "anything but examples/..."
	allowed map[string]bool // otherwise: the module packages it may import
}

func (r rule) covers(dir string) bool {
	if tree, ok := strings.CutSuffix(r.pkg, "/..."); ok {
		return dir == tree || strings.HasPrefix(dir, tree+"/")
	}
	return dir == r.pkg
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// importRules reads the table between the "import rules" markers.
func importRules(t *testing.T) []rule {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "<!-- import rules: begin -->")
	table, _, ok2 := strings.Cut(table, "<!-- import rules: end -->")
	if !ok || !ok2 {
		t.Fatal("docs/ARCHITECTURE.md has no import rules table between its markers")
	}
	var rules []rule
	for line := range strings.SplitSeq(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		m := codeSpan.FindStringSubmatch(cells[1])
		layer, err := strconv.Atoi(strings.TrimSpace(cells[2]))
		if err != nil {
			t.Fatalf("import rule for %s: layer %q is not a number", m[1], strings.TrimSpace(cells[2]))
		}
		r := rule{pkg: m[1], layer: layer, allowed: map[string]bool{}}
		may := strings.TrimSpace(cells[3])
		switch {
		case may == "nothing":
		case strings.HasPrefix(may, "anything but `examples/...`"):
			r.any = true
		default:
			for _, m := range codeSpan.FindAllStringSubmatch(may, -1) {
				r.allowed[m[1]] = true
			}
			if len(r.allowed) == 0 {
				t.Fatalf("import rule for %s: cannot read %q", r.pkg, may)
			}
		}
		rules = append(rules, r)
	}
	if len(rules) < 10 {
		t.Fatalf("read only %d import rules", len(rules))
	}
	return rules
}

// moduleImports returns, for each package directory of the module, the
// module packages its non-test files import (build tags are ignored: a rule
// holds on every platform).
func moduleImports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	walkGoFiles(t, parser.ImportsOnly, func(_ *token.FileSet, _, dir string, f *ast.File) error {
		if out[dir] == nil {
			out[dir] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if p == modulePath {
				out[dir]["."] = true
			} else if sub, ok := strings.CutPrefix(p, modulePath+"/"); ok {
				out[dir][sub] = true
			}
		}
		return nil
	})
	return out
}

// The layers of docs/ARCHITECTURE.md hold: every package imports only what
// its row of the import-rules table allows, every package has a row, and
// every row names a package that exists.
func TestImportRules(t *testing.T) {
	rules := importRules(t)
	imports := moduleImports(t)
	var dirs []string
	for dir := range imports {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	used := map[string]bool{}
	for _, dir := range dirs {
		var r *rule
		for i := range rules {
			if rules[i].covers(dir) {
				if r != nil {
					t.Errorf("%s is covered by two import rules, %s and %s", dir, r.pkg, rules[i].pkg)
				}
				r = &rules[i]
			}
		}
		if r == nil {
			t.Errorf("%s has no row in the import rules of docs/ARCHITECTURE.md", dir)
			continue
		}
		used[r.pkg] = true
		for imp := range imports[dir] {
			switch {
			case imp == "examples" || strings.HasPrefix(imp, "examples/"):
				t.Errorf("%s imports %s: nothing imports the examples", dir, imp)
			case !r.any && !r.allowed[imp]:
				t.Errorf("%s imports %s, which its import rule (layer of docs/ARCHITECTURE.md) does not allow", dir, imp)
			}
			if to := ruleFor(rules, imp); to != nil && to.layer >= r.layer {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers", dir, r.layer, imp, to.layer)
			}
		}
	}
	// The table is consistent with itself: a row allows only lower layers.
	for _, r := range rules {
		for imp := range r.allowed {
			to := ruleFor(rules, imp)
			switch {
			case to == nil:
				t.Errorf("the import rule for %s allows %s, which has no row", r.pkg, imp)
			case to.layer >= r.layer:
				t.Errorf("the import rule for %s (layer %d) allows %s (layer %d): only lower layers may be imported", r.pkg, r.layer, imp, to.layer)
			}
		}
	}
	for _, r := range rules {
		if !used[r.pkg] {
			t.Errorf("the import rules name %s, which is not a package of the module", r.pkg)
		}
	}
}

// ruleFor returns the rule that covers a package directory, or nil.
func ruleFor(rules []rule, dir string) *rule {
	for i := range rules {
		if rules[i].covers(dir) {
			return &rules[i]
		}
	}
	return nil
}

// The picture under "## Layers" in docs/ARCHITECTURE.md names every package
// of the import-rules table, each at the layer its row gives, so the picture
// a reader sees first cannot drift from the rules the test enforces.
func TestLayerDiagram(t *testing.T) {
	rules := importRules(t)
	doc, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Layers")
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no \"## Layers\" section")
	}
	_, rest, ok = strings.Cut(rest, "```")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the Layers section of docs/ARCHITECTURE.md has no picture in a code block")
	}
	byPkg := map[string]*rule{}
	for i := range rules {
		byPkg[rules[i].pkg] = &rules[i]
	}
	seen := map[string]int{}
	layer := -1
	for line := range strings.SplitSeq(block, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.Atoi(fields[0]); err == nil {
			layer, fields = n, fields[1:]
		}
		for _, f := range fields {
			r := byPkg[f]
			if r == nil {
				continue
			}
			if prev, dup := seen[f]; dup {
				t.Errorf("the layer picture names %s twice (layers %d and %d)", f, prev, layer)
			}
			seen[f] = layer
			if layer != r.layer {
				t.Errorf("the layer picture puts %s in layer %d, its import rule in layer %d", f, layer, r.layer)
			}
		}
	}
	for _, r := range rules {
		if _, ok := seen[r.pkg]; !ok {
			t.Errorf("the layer picture does not name %s (layer %d of the import rules)", r.pkg, r.layer)
		}
	}
}
