package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// heldLine is the fixed form of the line that says which locks the
// caller of an unexported Mailbox method holds (the Mailbox type's doc).
var heldLine = regexp.MustCompile(`^Held: (none|any|((turn|dotlock|wmu|mu|kwMu)( \([^)]*\))?(, (turn|dotlock|wmu|mu|kwMu)( \([^)]*\))?)*))( \(or [^)]*\))?( but [a-zA-Z]+)?(\.|;|,)`)

// TestHeldLines checks the lock discipline's documentation: every
// unexported method of Mailbox says what its caller holds in a Held line,
// a name ending in Locked has mu in it, and every exported method says
// what it takes.
func TestHeldLines(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, ent := range ents {
		name := ent.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil {
				continue
			}
			star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
			if !ok || star.X.(*ast.Ident).Name != "Mailbox" {
				continue
			}
			checked++
			where := fset.Position(fn.Pos()).String() + " " + fn.Name.Name
			var lines []string
			if fn.Doc != nil {
				lines = strings.Split(strings.TrimSpace(fn.Doc.Text()), "\n")
			}
			if ast.IsExported(fn.Name.Name) {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Takes: ") }) {
					t.Errorf("%s: exported, and its doc has no line \"Takes: …\"", where)
				}
				continue
			}
			var held string
			for _, l := range lines {
				if strings.HasPrefix(l, "Held:") {
					if held != "" {
						t.Errorf("%s: two Held lines", where)
					}
					held = l
				}
			}
			switch {
			case held == "":
				t.Errorf("%s: its doc has no Held line", where)
			case !heldLine.MatchString(held):
				t.Errorf("%s: %q is not in the fixed form of a Held line", where, held)
			case strings.HasSuffix(fn.Name.Name, "Locked") && !regexp.MustCompile(`^Held: [^;.]*\bmu\b`).MatchString(held):
				t.Errorf("%s: named …Locked, but its Held line does not list mu: %q", where, held)
			}
		}
	}
	if checked < 80 {
		t.Fatalf("checked %d Mailbox methods: the files were not found", checked)
	}
}
