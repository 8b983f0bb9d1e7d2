package policy

import (
	"maps"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// base is a small valid repository (the same shape as the valid-minimal
// fixture, kept here so these tests do not move when fixtures do). The
// tests change one file at a time.
var base = map[string]string{
	"platform.yaml": `kind: Platform
name: fixture
network:
  driver: bridge
  pool: 10.80.0.0/12
policy:
  images: ["localhost/moat-examples/"]
  publishPorts: false
`,
	"platform/tenants.yaml": `kind: Tenant
name: acme
block: 10.80.0.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 10}
grants:
  logging: [write-only]
  masterdata: [read-only]
---
kind: Tenant
name: globex
block: 10.80.4.0/22
quota: {cpus: 1, memory: 512MiB, pids: 256, containers: 5}
grants:
  logging: [write-only]
`,
	"shared/services.yaml": `kind: SharedService
name: logging
image: localhost/moat-examples/logsink:1
protocol: http
port: 8080
offers: [write-only]
resources: {cpus: 0.5, memory: 64MiB, pids: 64}
---
kind: SharedVolume
name: masterdata
offers: [read-only]
`,
	"tenants/acme/lans.yaml": `kind: Lan
name: frontend
subnet: 10.80.0.0/24
internet: false
---
kind: Lan
name: backend
subnet: 10.80.1.0/24
`,
	"tenants/acme/apps.yaml": `kind: App
name: web
image: localhost/moat-examples/echo:1
replicas: 2
lans: [frontend, backend]
talksTo: [api]
uses:
  - {service: logging, mode: write-only}
resources: {cpus: 0.25, memory: 64MiB, pids: 64}
---
kind: App
name: api
image: localhost/moat-examples/echo:1
lans: [backend]
volumes:
  - {shared: masterdata, path: /master}
  - {volume: cache, path: /cache}
secrets: [db-password]
resources: {cpus: 0.25, memory: 64MiB, pids: 64}
---
kind: Volume
name: cache
`,
	"tenants/globex/all.yaml": `kind: Lan
name: main
subnet: 10.80.4.0/24
---
kind: App
name: shop
image: localhost/moat-examples/echo:1
lans: [main]
resources: {cpus: 0.5, memory: 128MiB, pids: 64}
`,
}

// repoOf loads base with edits applied (an empty value deletes the file)
// through the real loader and decoder, so positions, Src.Tenant and
// defaults are exactly what validate.Run hands to Check.
func repoOf(t testing.TB, edits map[string]string) *config.Repo {
	t.Helper()
	files := maps.Clone(base)
	for k, v := range edits {
		if v == "" {
			delete(files, k)
		} else {
			files[k] = v
		}
	}
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	docs, ds := config.Load(fsys, config.Limits{})
	if len(ds) != 0 {
		t.Fatalf("load: %v", ds)
	}
	repo, ds := config.Decode(docs)
	if len(ds) != 0 {
		t.Fatalf("decode: %v", ds)
	}
	return repo
}

// short renders diagnostics as "pos: rule" lines, sorted.
func short(ds diag.List) []string {
	var out []string
	for _, d := range ds.Sort() {
		out = append(out, d.Pos.String()+": "+d.Rule)
	}
	return out
}

func full(ds diag.List) string {
	var b strings.Builder
	for _, d := range ds.Sort() {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// replace returns base[file] with old replaced by new, failing when old is
// absent (a typo would make the test vacuous).
func replace(t *testing.T, file, old, new string) string {
	t.Helper()
	s := base[file]
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	return strings.Replace(s, old, new, 1)
}

// fuzzRepo is repoOf without a testing.TB: a fuzz input that does not load
// gives nil.
func fuzzRepo(edits map[string]string) *config.Repo {
	files := maps.Clone(base)
	maps.Copy(files, edits)
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	docs, _ := config.Load(fsys, config.Limits{})
	repo, _ := config.Decode(docs)
	return repo
}
