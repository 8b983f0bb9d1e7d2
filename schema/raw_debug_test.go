package schema

import (
	"fmt"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
)

func TestRawDebug(t *testing.T) {
	c := newChecker(loadTable(), Options{ImagePrefixes: []string{"localhost/"}})
	for _, tc := range []struct{ f, src string }{
		{"resources", "{cpus: 0, memory: 1M, foo: 1}"},
		{"volumes", "[{host: /etc, path: /x, bar: 1}, {shared: a, volume: b, path: /y, readOnly: false}]"},
		{"image", "docker.io/x:1"},
		{"uses", "[{service: a, mode: rw, x: 1}]"},
	} {
		d := parseDocs(t, "x.yaml", tc.src)[0]
		var fs cue.Value
		it, _ := c.defs["App"].Fields(cue.Optional(true))
		for it.Next() {
			if it.Selector().Unquoted() == tc.f {
				fs = it.Value()
			}
		}
		v := fs.Unify(c.ctx.BuildExpr(c.conv.convert(d.Node)))
		for _, e := range errors.Errors(v.Validate(cue.Concrete(true))) {
			fmt.Printf("%s %q %v\n", tc.f, e.Path(), e)
		}
	}
}
