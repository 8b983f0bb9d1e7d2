package schema

import (
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
)

const microApp = `kind: App
name: app-1
image: localhost/moat-examples/echo:1
replicas: 2
lans: [frontend, backend]
talksTo: [app-2]
uses:
  - {service: logging, mode: write-only}
volumes:
  - {shared: masterdata, path: /master}
secrets: [db-password]
resources: {cpus: 0.25, memory: 64MiB, pids: 64}
env: {LOG_URL: "http://logging:8080", MODE: production}
healthcheck: {command: [/echo, -check], interval: 10s}
`

func BenchmarkMicro(b *testing.B) {
	d := parseDocs(b, "x.yaml", microApp)[0]
	c := newChecker(loadTable(), Options{})
	def := c.defs["App"]
	b.Run("buildexpr+unify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := def.Unify(c.ctx.BuildExpr(c.conv.convert(d.Node))).Validate(cue.Concrete(true)); err != nil {
				b.Fatal(errors.Details(err, nil))
			}
		}
	})
	b.Run("fillpath", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := def.FillPath(cue.Path{}, c.conv.convert(d.Node)).Validate(cue.Concrete(true)); err != nil {
				b.Fatal(errors.Details(err, nil))
			}
		}
	})
	b.Run("convert-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.conv.convert(d.Node)
		}
	})
	b.Run("buildexpr-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ctx.BuildExpr(c.conv.convert(d.Node))
		}
	})
}
