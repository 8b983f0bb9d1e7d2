package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/diag"
)

// FuzzLoad feeds arbitrary bytes to the loader as one tenant file, then
// decodes the result. Whatever the input: no panic, no hang (the fuzzer
// times out a run), every diagnostic names the file and a registered rule,
// and the trees handed downstream hold no alias, merge key or duplicate key.
func FuzzLoad(f *testing.F) {
	// Every fixture file is a seed; ReadFile follows the fixture's
	// symlink, which is fine here (it is our own tree, not input).
	_ = filepath.WalkDir("../test/fixtures", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isYAML(p) {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	for _, s := range []string{
		aliasBomb, deep(100), "a: &x [*x]\n", "a: 1\na: 2\n", "<<: {a: 1}\n", "- 1\n",
		"kind: App\nname: *x\n", "\xff\xfe", "a: \x00", "---\n---\n", "? [a]\n: b\n",
		"a: !!binary aGVsbG8=\n", "kind: App\nreplicas: 0\nhealthcheck: {}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"tenants/acme/x.yaml": {Data: data}}
		docs, ds := Load(fsys, Limits{})
		for _, d := range ds {
			if d.File == "" {
				t.Errorf("diagnostic without a file: %v", d)
			}
			if _, ok := diag.Lookup(d.Rule); !ok {
				t.Errorf("unregistered rule: %v", d)
			}
		}
		for _, d := range docs {
			if d.File != "tenants/acme/x.yaml" || d.Tenant != "acme" {
				t.Errorf("document %s tenant %q", d.File, d.Tenant)
			}
			checkTree(t, d.Node, 1)
		}
		_, _ = Decode(docs)
	})
}

// BenchmarkLoad loads (and decodes) a generated repository of 10,000
// documents: 100 tenants, each with one file of 99 apps and one LAN.
func BenchmarkLoad(b *testing.B) {
	fsys := fstest.MapFS{}
	var size int64
	for t := range 100 {
		var sb strings.Builder
		fmt.Fprintf(&sb, "kind: Lan\nname: main\nsubnet: 10.%d.0.0/24\n", t)
		for a := range 99 {
			fmt.Fprintf(&sb, `---
kind: App
name: app-%d
image: localhost/moat-examples/echo:1
replicas: 2
lans: [main]
talksTo: [app-%d]
uses:
  - {service: logging, mode: write-only}
resources: {cpus: 0.25, memory: 64MiB, pids: 64}
env: {LOG_URL: "http://logging:8080"}
`, a, (a+1)%99)
		}
		fsys[fmt.Sprintf("tenants/t%03d/apps.yaml", t)] = &fstest.MapFile{Data: []byte(sb.String()), Mode: 0o644}
		size += int64(sb.Len())
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		docs, ds := Load(fsys, Limits{})
		if len(ds) != 0 || len(docs) != 10000 {
			b.Fatalf("%d docs, %v", len(docs), ds)
		}
		if _, ds := Decode(docs); len(ds) != 0 {
			b.Fatal(ds)
		}
	}
}
