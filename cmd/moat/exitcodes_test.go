package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The exit codes are documented in one table, shown in README.md and in
// the package doc; both must say exactly what exitCodes says, and
// exitCodes must list every exit* constant with its value.
func TestExitCodeTable(t *testing.T) {
	// The constants, evaluated by the type checker.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "exitcodes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{}).Check("main", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]int{}
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok && strings.HasPrefix(name, "exit") {
			v, _ := constant.Int64Val(c.Val())
			consts[name] = int(v)
		}
	}
	if len(consts) < 5 {
		t.Fatalf("found only %d exit constants: %v", len(consts), consts)
	}
	listed := map[string]bool{}
	var want []string
	for _, c := range exitCodes {
		v, ok := consts[c.name]
		if !ok {
			t.Errorf("table row %q names no exit constant", c.name)
		} else if v != c.code {
			t.Errorf("table row %s has code %d, the constant is %d", c.name, c.code, v)
		}
		listed[c.name] = true
		want = append(want, fmt.Sprintf("%d|%s|%s", c.code, c.commands, c.meaning))
	}
	for name := range consts {
		if !listed[name] {
			t.Errorf("constant %s is not in the exit code table", name)
		}
	}

	// README.md: the rows of the table under "## Exit codes".
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Exit codes\n")
	if !ok {
		t.Fatal("README.md has no section \"## Exit codes\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var got []string
	row := regexp.MustCompile(`^\| (\d+) \| (.+?) \| (.+) \|$`)
	for _, l := range strings.Split(section, "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			got = append(got, m[1]+"|"+m[2]+"|"+m[3])
		}
	}
	compare(t, "README.md", got, want)

	// The package doc: "//\t<code>  <commands>: <meaning>".
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	line := regexp.MustCompile(`^//\t(\d+) +(.+?): (.+)$`)
	for _, l := range strings.Split(string(doc), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			got = append(got, m[1]+"|"+m[2]+"|"+m[3])
		}
	}
	compare(t, "doc.go", got, want)
}

func compare(t *testing.T, where string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	var readme, doc strings.Builder
	for _, c := range exitCodes {
		fmt.Fprintf(&readme, "| %d | %s | %s |\n", c.code, c.commands, c.meaning)
		fmt.Fprintf(&doc, "//\t%-4d %s: %s\n", c.code, c.commands, c.meaning)
	}
	t.Errorf("%s's exit code table differs from exitCodes:\ngot:\n%s\nwant:\n%s\nREADME rows:\n%s\ndoc.go lines:\n%s",
		where, strings.Join(got, "\n"), strings.Join(want, "\n"), readme.String(), doc.String())
}
