// Package repogen generates large, valid moat config repositories for
// benchmarks and scale tests: N tenants with M apps each, deterministic
// byte for byte for the same Options.
//
// The generated repository has
//
//	platform.yaml                      Platform "bench", pool 10.0.0.0/8
//	platform/tenants-NNNN.yaml         the Tenant registry, 500 per file
//	shared/services.yaml               SharedService logging (write-only)
//	                                   and SharedVolume masterdata (read-only)
//	tenants/<t>/base.yaml              LansPerTenant Lans and the Volume data
//	tenants/<t>/apps.yaml              AppsPerTenant Apps (or one file per app)
//
// Tenant i owns the /22 block 10.0.0.0/8 + i*1024, so up to 16384 tenants
// fit; its LANs split the block into equal power-of-two subnets. App j of a
// tenant joins LAN j mod LansPerTenant (app 0 joins every LAN) and talks to
// an earlier app it shares a LAN with; every app uses logging write-only,
// app 0 also mounts the shared volume and the tenant's own volume. Quotas
// are twice what the apps need. Every name, number and reference is chosen
// so that the repository passes validation.
package repogen

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing/fstest"
)

// Limits of the generator's address plan and names.
const (
	MaxTenants       = 1 << 14 // /22 blocks in 10.0.0.0/8
	MaxLansPerTenant = 64      // /28 subnets in a /22
	MaxApps          = 9999    // app names are app0000..app9999
	MaxReplicas      = 100
	tenantsPerFile   = 500
	// Images come from the platform's allowed prefix.
	imagePrefix = "localhost/moat-examples/"
	// Per container resources; cpus is a binary fraction so that sums over
	// thousands of containers stay exact in float64.
	appCPUs     = 0.25
	appMemMiB   = 32
	appPids     = 32
	quotaFactor = 2
)

// Options size the generated repository. Zero LansPerTenant and
// ReplicasPerApp mean 2 and 1.
type Options struct {
	Tenants        int
	AppsPerTenant  int
	LansPerTenant  int // default 2
	ReplicasPerApp int // default 1
	// FilePerApp writes tenants/<t>/<app>.yaml per app instead of one
	// apps.yaml per tenant (more files, same documents).
	FilePerApp bool
}

func (o Options) withDefaults() Options {
	if o.LansPerTenant == 0 {
		o.LansPerTenant = 2
	}
	if o.ReplicasPerApp == 0 {
		o.ReplicasPerApp = 1
	}
	return o
}

// Check reports options the generator cannot turn into a valid repository.
func (o Options) Check() error {
	o = o.withDefaults()
	var errs []error
	if o.Tenants < 1 || o.Tenants > MaxTenants {
		errs = append(errs, fmt.Errorf("tenants must be 1..%d, not %d", MaxTenants, o.Tenants))
	}
	if o.AppsPerTenant < 1 || o.AppsPerTenant > MaxApps {
		errs = append(errs, fmt.Errorf("apps per tenant must be 1..%d, not %d", MaxApps, o.AppsPerTenant))
	}
	if o.LansPerTenant < 1 || o.LansPerTenant > MaxLansPerTenant {
		errs = append(errs, fmt.Errorf("LANs per tenant must be 1..%d, not %d", MaxLansPerTenant, o.LansPerTenant))
	}
	if o.ReplicasPerApp < 1 || o.ReplicasPerApp > MaxReplicas {
		errs = append(errs, fmt.Errorf("replicas per app must be 1..%d, not %d", MaxReplicas, o.ReplicasPerApp))
	}
	if len(errs) == 0 {
		// Every LAN must hold its gateway, the containers of the apps on it
		// and the logging gateway: the busiest LAN holds app 0 and every
		// L-th app after app 1.
		perLan := 1 + (o.AppsPerTenant-1+o.LansPerTenant-1)/o.LansPerTenant
		need := perLan*o.ReplicasPerApp + 2
		prefix := 22 + bits.Len(uint(o.LansPerTenant-1))
		if hosts := 1<<(32-prefix) - 2; need > hosts {
			errs = append(errs, fmt.Errorf("a /%d LAN holds %d addresses, but %d apps x %d replicas over %d LANs need %d on the busiest; use more LANs, fewer apps or fewer replicas",
				prefix, hosts, o.AppsPerTenant, o.ReplicasPerApp, o.LansPerTenant, need))
		}
	}
	return errors.Join(errs...)
}

// Generate returns the repository as an in-memory file system. It panics
// when opts fail Check (a programming error in the caller).
func Generate(opts Options) fstest.MapFS {
	if err := opts.Check(); err != nil {
		panic("repogen: " + err.Error())
	}
	g := gen{Options: opts.withDefaults(), fs: fstest.MapFS{}}
	g.platform()
	g.registry()
	g.shared()
	for i := range g.Tenants {
		g.tenant(i)
	}
	return g.fs
}

// WriteDir writes the repository generated from opts under dir, which must
// not exist or be empty (so that no stale file of an earlier run remains).
func WriteDir(dir string, opts Options) error {
	if err := opts.Check(); err != nil {
		return fmt.Errorf("repogen: %w", err)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("repogen: %s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repogen: %w", err)
	}
	for name, f := range Generate(opts) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("repogen: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("repogen: %w", err)
		}
	}
	return nil
}

// TenantName is the name of tenant i (0-based) in a repository of n tenants.
func TenantName(i, n int) string { return fmt.Sprintf("t%0*d", width(n), i) }

// AppName is the name of app j (0-based) of a tenant with n apps.
func AppName(j, n int) string { return fmt.Sprintf("app%0*d", width(n), j) }

// LanName is the name of LAN k (0-based).
func LanName(k int) string { return fmt.Sprintf("lan%d", k) }

// width is the number of digits of n-1, at least 3, so names sort in order.
func width(n int) int {
	return max(3, len(fmt.Sprint(max(n-1, 0))))
}

type gen struct {
	Options
	fs fstest.MapFS
}

func (g *gen) put(name, text string) {
	g.fs[name] = &fstest.MapFile{Data: []byte(text), Mode: 0o644}
}

func (g *gen) platform() {
	g.put("platform.yaml", `# Generated by moat-repogen; do not edit.
kind: Platform
name: bench
network:
  driver: bridge
  pool: 10.0.0.0/8
policy:
  images: ["`+imagePrefix+`"]
  publishPorts: false
runtime:
  stopTimeout: 2
`)
}

// containers is the number of containers one tenant runs.
func (g *gen) containers() int { return g.AppsPerTenant * g.ReplicasPerApp }

func (g *gen) registry() {
	n := g.containers()
	quota := fmt.Sprintf("{cpus: %s, memory: %dMiB, pids: %d, containers: %d}",
		ftoa(appCPUs*float64(n*quotaFactor)), appMemMiB*n*quotaFactor, appPids*n*quotaFactor, n*quotaFactor)
	files := (g.Tenants + tenantsPerFile - 1) / tenantsPerFile
	for f := range files {
		var b strings.Builder
		b.WriteString("# Generated by moat-repogen; do not edit.\n")
		for i := f * tenantsPerFile; i < min(g.Tenants, (f+1)*tenantsPerFile); i++ {
			if i > f*tenantsPerFile {
				b.WriteString("---\n")
			}
			fmt.Fprintf(&b, "kind: Tenant\nname: %s\nblock: %s/22\nquota: %s\ngrants:\n  logging: [write-only]\n  masterdata: [read-only]\n",
				TenantName(i, g.Tenants), blockAddr(i), quota)
		}
		g.put(fmt.Sprintf("platform/tenants-%04d.yaml", f), b.String())
	}
}

func (g *gen) shared() {
	g.put("shared/services.yaml", `# Generated by moat-repogen; do not edit.
kind: SharedService
name: logging
image: `+imagePrefix+`logsink:1
protocol: http
port: 8080
offers: [write-only]
resources: {cpus: 0.5, memory: 64MiB, pids: 64}
---
kind: SharedVolume
name: masterdata
offers: [read-only]
`)
}

// blockAddr is the first address of tenant i's /22 inside 10.0.0.0/8.
func blockAddr(i int) string {
	a := uint32(10)<<24 | uint32(i)<<10
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff)
}

// subnet is LAN k of tenant i: the /22 split into 2^ceil(log2 lans) parts.
func (g *gen) subnet(i, k int) string {
	b := bits.Len(uint(g.LansPerTenant - 1)) // ceil(log2 lans)
	prefix := 22 + b
	a := uint32(10)<<24 | uint32(i)<<10 | uint32(k)<<(32-prefix)
	return fmt.Sprintf("%d.%d.%d.%d/%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff, prefix)
}

func (g *gen) tenant(i int) {
	t := TenantName(i, g.Tenants)
	dir := path.Join("tenants", t)

	var b strings.Builder
	b.WriteString("# Generated by moat-repogen; do not edit.\n")
	for k := range g.LansPerTenant {
		// The first LAN has a route out, the others are internal.
		fmt.Fprintf(&b, "kind: Lan\nname: %s\nsubnet: %s\ninternet: %t\n---\n", LanName(k), g.subnet(i, k), k == 0)
	}
	b.WriteString("kind: Volume\nname: data\n")
	g.put(path.Join(dir, "base.yaml"), b.String())

	b.Reset()
	b.WriteString("# Generated by moat-repogen; do not edit.\n")
	for j := range g.AppsPerTenant {
		doc := g.app(j)
		if g.FilePerApp {
			g.put(path.Join(dir, AppName(j, g.AppsPerTenant)+".yaml"), "# Generated by moat-repogen; do not edit.\n"+doc)
			continue
		}
		if j > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(doc)
	}
	if !g.FilePerApp {
		g.put(path.Join(dir, "apps.yaml"), b.String())
	}
}

// app is the document of app j. App 0 joins every LAN; app j > 0 joins LAN
// j mod L and talks to the app L before it on the same LAN, or to app 0.
func (g *gen) app(j int) string {
	L, n := g.LansPerTenant, g.AppsPerTenant
	var lans []string
	if j == 0 {
		for k := range L {
			lans = append(lans, LanName(k))
		}
	} else {
		lans = []string{LanName(j % L)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kind: App\nname: %s\nimage: %secho:1\n", AppName(j, n), imagePrefix)
	if g.ReplicasPerApp != 1 {
		fmt.Fprintf(&b, "replicas: %d\n", g.ReplicasPerApp)
	}
	fmt.Fprintf(&b, "lans: [%s]\n", strings.Join(lans, ", "))
	switch {
	case j >= L:
		fmt.Fprintf(&b, "talksTo: [%s]\n", AppName(j-L, n))
	case j > 0:
		fmt.Fprintf(&b, "talksTo: [%s]\n", AppName(0, n))
	}
	b.WriteString("uses:\n  - {service: logging, mode: write-only}\n")
	if j == 0 {
		b.WriteString("volumes:\n  - {shared: masterdata, path: /master}\n  - {volume: data, path: /data}\n")
	}
	fmt.Fprintf(&b, "resources: {cpus: %s, memory: %dMiB, pids: %d}\n", ftoa(appCPUs), appMemMiB, appPids)
	fmt.Fprintf(&b, "env: {APP_NAME: %s, LOG_URL: \"http://logging:8080/logs\"}\n", AppName(j, n))
	return b.String()
}

// ftoa formats a float without exponent or trailing zeros.
func ftoa(f float64) string {
	s := fmt.Sprintf("%.4f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
