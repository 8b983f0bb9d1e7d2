package schema

import (
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

func BenchmarkMicroOpts(b *testing.B) {
	d := parseDocs(b, "x.yaml", microApp)[0]
	for _, name := range []string{"default", "sharing=false"} {
		var ctx *cue.Context
		if name == "default" {
			ctx = cuecontext.New()
		} else {
			ctx = cuecontext.New(cuecontext.CUE_DEBUG(name))
		}
		s := ctx.CompileString(schemaSrc)
		def := s.LookupPath(cue.ParsePath("#App"))
		var conv converter
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := def.Unify(ctx.BuildExpr(conv.convert(d.Node))).Validate(cue.Concrete(true)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
