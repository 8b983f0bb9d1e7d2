package schema

import (
	"fmt"
	"os"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

func TestRawDebug(t *testing.T) {
	src, _ := os.ReadFile(os.Getenv("DOC"))
	docs := parseDocs(t, "x.yaml", string(src))
	c := newChecker(loadTable(), Options{})
	for _, d := range docs {
		expr := c.conv.convert(deref(d.Node))
		v := c.ctx.BuildExpr(ast.NewBinExpr(token.AND, ast.NewIdent("#App"), expr), cue.Scope(c.schema))
		for _, e := range errors.Errors(v.Validate(cue.Concrete(true))) {
			fmt.Printf("A %q %v\n", e.Path(), e)
		}
		v = c.defs["App"].Unify(c.ctx.BuildExpr(c.conv.convert(deref(d.Node))))
		for _, e := range errors.Errors(v.Validate(cue.Concrete(true))) {
			fmt.Printf("B %q %v\n", e.Path(), e)
		}
	}
}
