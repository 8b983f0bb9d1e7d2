package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
)

// genRepo builds the documents of a repository with the given number of
// tenants, each with two LANs, a volume-less set of apps and a Tenant
// entry, like a real platform at scale.
//
// unique makes every value of every app differ (image tag, resources,
// env, mounts, secrets, health check), so no validation result can be
// reused: the worst case for Check. Otherwise values vary the way a real
// platform's do: per-app names and env, a few images and sizes.
func genRepo(t testing.TB, tenants, appsPerTenant int, unique bool) []*config.Document {
	t.Helper()
	var docs []*config.Document
	docs = append(docs, parseDocs(t, "platform.yaml", `kind: Platform
name: bench
network: {driver: bridge, pool: 10.64.0.0/10}
policy: {images: ["localhost/moat-examples/"], publishPorts: false}
`)...)
	var reg strings.Builder
	for i := range tenants {
		if i > 0 {
			reg.WriteString("---\n")
		}
		fmt.Fprintf(&reg, "kind: Tenant\nname: t%d\nblock: 10.%d.%d.0/22\nquota: {cpus: 8, memory: 4GiB, pids: 2048, containers: 40}\ngrants:\n  logging: [write-only]\n  masterdata: [read-only]\n", i, 64+i/64, (i%64)*4)
	}
	docs = append(docs, parseDocs(t, "platform/tenants.yaml", reg.String())...)
	docs = append(docs, parseDocs(t, "shared/services.yaml", `kind: SharedService
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
`)...)
	for i := range tenants {
		var b strings.Builder
		fmt.Fprintf(&b, "kind: Lan\nname: frontend\nsubnet: 10.%d.%d.0/24\n---\nkind: Lan\nname: backend\nsubnet: 10.%d.%d.0/24\ninternet: false\n", 64+i/64, (i%64)*4, 64+i/64, (i%64)*4+1)
		for a := range appsPerTenant {
			n := i*appsPerTenant + a
			tag, cpus, mem, pids, suffix := n%20, []string{"0.1", "0.25", "0.5", "1"}[n%4], 32<<(n%4), 64, ""
			if unique {
				tag, cpus, mem, pids, suffix = n, fmt.Sprintf("0.%04d", n%9000+100), 32+n, 64+n%4000, fmt.Sprint("-", n)
			}
			fmt.Fprintf(&b, `---
kind: App
name: app-%d
image: localhost/moat-examples/echo:%d
replicas: 2
lans: [frontend, backend]
talksTo: [app-%d]
uses:
  - {service: logging, mode: write-only}
volumes:
  - {shared: masterdata, path: /master%s}
secrets: [db-password%s]
resources: {cpus: %s, memory: %dMiB, pids: %d}
env: {LOG_URL: "http://logging:8080", APP_ID: "%d"}
healthcheck: {command: [/echo, -check%s], interval: 10s}
`, a, tag, (a+1)%appsPerTenant, suffix, suffix, cpus, mem, pids, n, suffix)
		}
		docs = append(docs, parseDocs(t, fmt.Sprintf("tenants/t%d/apps.yaml", i), b.String())...)
	}
	return docs
}

func BenchmarkCheck(b *testing.B) {
	for _, tc := range []struct {
		tenants, apps int
		unique        bool
	}{{100, 10, false}, {1000, 10, false}, {100, 10, true}, {1000, 10, true}} {
		docs := genRepo(b, tc.tenants, tc.apps, tc.unique)
		b.Run(fmt.Sprintf("apps=%d/docs=%d/unique=%v", tc.tenants*tc.apps, len(docs), tc.unique), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ds := Check(docs, Options{ImagePrefixes: []string{"localhost/moat-examples/"}}); len(ds) > 0 {
					b.Fatalf("generated repo invalid: %v", ds[0])
				}
			}
		})
	}
}
