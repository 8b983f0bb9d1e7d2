package policy

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/config"
)

// benchRepo generates a valid repository of apps apps, ten per tenant, each
// with one replica publishing its own host port,
// on two LANs, talking to its neighbour, using a shared service, mounting a
// shared and a tenant volume, through the real loader and decoder so that
// every document has its source (as in production).
func benchRepo(tb testing.TB, apps int) *config.Repo {
	tb.Helper()
	const perTenant = 10
	tenants := max(apps/perTenant, 1)
	fsys := fstest.MapFS{}
	put := func(name, s string) { fsys[name] = &fstest.MapFile{Data: []byte(s), Mode: 0o644} }
	put("platform.yaml", "kind: Platform\nname: bench\nnetwork: {pool: 10.0.0.0/8}\npolicy: {publishPorts: true}\n")
	put("shared/s.yaml", "kind: SharedService\nname: logging\nport: 8080\noffers: [write-only]\n---\nkind: SharedVolume\nname: masterdata\n")
	var reg strings.Builder
	for t := range tenants {
		// Tenant t owns the /22 starting at t*1024 inside 10.0.0.0/8.
		o2, o3 := t/64, (t%64)*4
		fmt.Fprintf(&reg, "---\nkind: Tenant\nname: t%d\nblock: 10.%d.%d.0/22\n"+
			"quota: {cpus: 100, memory: 100GiB, pids: 100000, containers: 100}\n"+
			"grants: {logging: [write-only], masterdata: [read-only]}\n", t, o2, o3)
		put(fmt.Sprintf("tenants/t%d/lans.yaml", t), fmt.Sprintf(
			"kind: Lan\nname: front\nsubnet: 10.%d.%d.0/24\n---\nkind: Lan\nname: back\nsubnet: 10.%d.%d.0/24\n---\nkind: Volume\nname: cache\n",
			o2, o3, o2, o3+1))
		var b strings.Builder
		for a := range perTenant {
			if t*perTenant+a >= apps {
				break
			}
			fmt.Fprintf(&b, "---\nkind: App\nname: a%d\nimage: localhost/x/echo:1\nreplicas: 1\nlans: [front, back]\n"+
				"talksTo: [a%d]\nuses: [{service: logging, mode: write-only}]\n"+
				"volumes: [{shared: masterdata, path: /m}, {volume: cache, path: /c}]\nsecrets: [s1, s2]\n"+
				"resources: {cpus: 0.25, memory: 64MiB, pids: 64}\nports: [{container: 80, host: %d}]\n",
				a, (a+1)%perTenant, 1024+t*perTenant+a)
		}
		put(fmt.Sprintf("tenants/t%d/apps.yaml", t), b.String())
	}
	put("platform/tenants.yaml", reg.String())
	docs, ds := config.Load(fsys, config.Limits{})
	if len(ds) != 0 {
		tb.Fatalf("load: %v", ds[:min(len(ds), 5)])
	}
	repo, _ := config.Decode(docs)
	if len(repo.Apps) != apps {
		tb.Fatalf("generated %d apps, want %d", len(repo.Apps), apps)
	}
	return repo
}

func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			repo := benchRepo(b, n)
			if ds := Check(repo); len(ds) != 0 {
				b.Fatalf("generated repo is not valid: %v", ds[:min(len(ds), 5)])
			}
			b.ReportAllocs()
			for b.Loop() {
				Check(repo)
			}
		})
	}
}

// TestCheckScale keeps the generated repository valid (so the benchmark
// measures the clean path) without running the benchmark.
func TestCheckScale(t *testing.T) {
	if ds := Check(benchRepo(t, 1000)); len(ds) != 0 {
		t.Fatalf("generated repo is not valid: %v", ds[:min(len(ds), 5)])
	}
}
