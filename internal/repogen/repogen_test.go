package repogen_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/internal/repogen"
	"gopkg.in/yaml.v3"
)

func TestGenerateFiles(t *testing.T) {
	got := fileNames(repogen.Generate(repogen.Options{Tenants: 3, AppsPerTenant: 4}))
	want := []string{
		"platform.yaml",
		"platform/tenants-0000.yaml",
		"shared/services.yaml",
		"tenants/t000/apps.yaml",
		"tenants/t000/base.yaml",
		"tenants/t001/apps.yaml",
		"tenants/t001/base.yaml",
		"tenants/t002/apps.yaml",
		"tenants/t002/base.yaml",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files:\n got %q\nwant %q", got, want)
	}

	got = fileNames(repogen.Generate(repogen.Options{Tenants: 1001, AppsPerTenant: 2, FilePerApp: true}))
	for _, name := range []string{"platform/tenants-0000.yaml", "platform/tenants-0002.yaml", "tenants/t1000/app000.yaml", "tenants/t1000/app001.yaml", "tenants/t1000/base.yaml"} {
		if !slices.Contains(got, name) {
			t.Errorf("file-per-app repo of 1001 tenants lacks %s", name)
		}
	}
	if want := 3 + 2 + 1001*3; len(got) != want {
		t.Errorf("file-per-app repo of 1001 tenants has %d files, want %d", len(got), want)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	opts := repogen.Options{Tenants: 20, AppsPerTenant: 7, LansPerTenant: 3, ReplicasPerApp: 2}
	a, b := repogen.Generate(opts), repogen.Generate(opts)
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for name, f := range a {
		if g, ok := b[name]; !ok || !bytes.Equal(f.Data, g.Data) {
			t.Errorf("%s differs between two runs", name)
		}
	}

	dir := t.TempDir()
	if err := repogen.WriteDir(dir, opts); err != nil {
		t.Fatal(err)
	}
	for name, f := range a {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(data, f.Data) {
			t.Errorf("WriteDir: %s differs from Generate (%v)", name, err)
		}
	}
	if err := repogen.WriteDir(dir, opts); err == nil {
		t.Error("WriteDir into a non-empty directory succeeded")
	}
}

func TestCheck(t *testing.T) {
	for _, o := range []repogen.Options{
		{Tenants: 0, AppsPerTenant: 1},
		{Tenants: repogen.MaxTenants + 1, AppsPerTenant: 1},
		{Tenants: 1, AppsPerTenant: 0},
		{Tenants: 1, AppsPerTenant: 1, LansPerTenant: repogen.MaxLansPerTenant + 1},
		{Tenants: 1, AppsPerTenant: 1, ReplicasPerApp: -1},
		{Tenants: 1, AppsPerTenant: 1000, LansPerTenant: 1, ReplicasPerApp: 2}, // 2002 > 1022 addresses
		{Tenants: 1, AppsPerTenant: 64 * 13, LansPerTenant: 64},                // /28: 14 addresses, 16 needed
	} {
		if o.Check() == nil {
			t.Errorf("Check(%+v) = nil, want an error", o)
		}
	}
	for _, o := range []repogen.Options{
		{Tenants: repogen.MaxTenants, AppsPerTenant: 1, LansPerTenant: repogen.MaxLansPerTenant},
		{Tenants: 1, AppsPerTenant: 1020, LansPerTenant: 1},     // 1020 + 2 = 1022 addresses of a /22
		{Tenants: 1, AppsPerTenant: 64 * 11, LansPerTenant: 64}, // 12 + 2 = 14 of a /28
	} {
		if err := o.Check(); err != nil {
			t.Errorf("Check(%+v): %v", o, err)
		}
	}
}

// TestGenerateIsConsistent decodes every generated document strictly into
// the config model (unknown fields are errors, so every field name matches
// a yaml tag of config/model.go) and checks the cross-document properties
// the validators judge: addresses, links, grants and quotas.
func TestGenerateIsConsistent(t *testing.T) {
	for _, o := range []repogen.Options{
		{Tenants: 3, AppsPerTenant: 4},
		{Tenants: 5, AppsPerTenant: 9, LansPerTenant: 3, ReplicasPerApp: 2},
		{Tenants: 2, AppsPerTenant: 64 * 11, LansPerTenant: repogen.MaxLansPerTenant},
		{Tenants: 2, AppsPerTenant: 1, LansPerTenant: 1, FilePerApp: true},
	} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d", o.Tenants, o.AppsPerTenant, o.LansPerTenant, o.ReplicasPerApp), func(t *testing.T) {
			r := decodeStrict(t, repogen.Generate(o))
			lans := o.LansPerTenant
			if lans == 0 {
				lans = 2
			}
			if len(r.Tenants) != o.Tenants || len(r.Apps) != o.Tenants*o.AppsPerTenant || len(r.Lans) != o.Tenants*lans {
				t.Fatalf("got %d tenants, %d apps, %d LANs", len(r.Tenants), len(r.Apps), len(r.Lans))
			}
			replicas := 0
			for _, a := range r.Apps {
				replicas += a.Replicas
			}
			if want := o.Tenants * o.AppsPerTenant * max(o.ReplicasPerApp, 1); replicas != want {
				t.Errorf("%d containers, want %d", replicas, want)
			}
			checkConsistent(t, r)
		})
	}
}

func TestGenerateLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large repository")
	}
	fsys := repogen.Generate(repogen.Options{Tenants: 1000, AppsPerTenant: 10})
	r := decodeStrict(t, fsys)
	if len(r.Apps) != 10000 || len(r.Tenants) != 1000 {
		t.Fatalf("got %d apps of %d tenants", len(r.Apps), len(r.Tenants))
	}
	checkConsistent(t, r)
	for name, f := range fsys {
		if len(f.Data) > int(config.DefaultLimits.MaxFileBytes) {
			t.Errorf("%s is %d bytes, over the loader's default limit", name, len(f.Data))
		}
	}
}

func BenchmarkGenerate1000x10(b *testing.B) {
	for b.Loop() {
		repogen.Generate(repogen.Options{Tenants: 1000, AppsPerTenant: 10})
	}
}

func fileNames(fsys fstest.MapFS) []string {
	var names []string
	for name := range fsys {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// repo is what decodeStrict read, with each tenant document's owner.
type repo struct {
	config.Repo
	owner map[any]string // *Lan, *App, *Volume -> tenant folder
}

// decodeStrict reads every YAML file of fsys with gopkg.in/yaml.v3 and
// decodes each document into the model type of its kind, refusing unknown
// fields. It stands in for config.Load + config.Decode in tests that must
// not depend on them.
func decodeStrict(t *testing.T, fsys fs.FS) *repo {
	t.Helper()
	r := &repo{owner: map[any]string{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		owner := ""
		if parts := strings.Split(name, "/"); len(parts) > 2 && parts[0] == "tenants" {
			owner = parts[1]
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s doc %d: %w", name, i, err)
			}
			if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
				return fmt.Errorf("%s doc %d: not a mapping", name, i)
			}
			node := doc.Content[0]
			var meta config.Meta
			if err := node.Decode(&meta); err != nil {
				return fmt.Errorf("%s doc %d: %w", name, i, err)
			}
			var v any
			switch meta.Kind {
			case config.KindPlatform:
				p := new(config.Platform)
				r.Platform, v = p, p
			case config.KindTenant:
				p := new(config.Tenant)
				r.Tenants, v = append(r.Tenants, p), p
			case config.KindSharedService:
				p := new(config.SharedService)
				r.Services, v = append(r.Services, p), p
			case config.KindSharedVolume:
				p := new(config.SharedVolume)
				r.SharedVolumes, v = append(r.SharedVolumes, p), p
			case config.KindLan:
				p := new(config.Lan)
				r.Lans, v = append(r.Lans, p), p
			case config.KindApp:
				p := new(config.App)
				r.Apps, v = append(r.Apps, p), p
			case config.KindVolume:
				p := new(config.Volume)
				r.Volumes, v = append(r.Volumes, p), p
			default:
				return fmt.Errorf("%s doc %d: unknown kind %q", name, i, meta.Kind)
			}
			if isTenantKind(meta.Kind) != (owner != "") {
				return fmt.Errorf("%s doc %d: kind %s in the wrong place", name, i, meta.Kind)
			}
			if owner != "" {
				r.owner[v] = owner
			}
			// Re-encode the node and decode it strictly: Node.Decode has no
			// KnownFields switch.
			raw, err := yaml.Marshal(node)
			if err != nil {
				return err
			}
			sdec := yaml.NewDecoder(bytes.NewReader(raw))
			sdec.KnownFields(true)
			if err := sdec.Decode(v); err != nil {
				return fmt.Errorf("%s doc %d (%s %s): %w", name, i, meta.Kind, meta.Name, err)
			}
			// Default: replicas 1 when absent; an explicit 0 stays 0.
			if a, ok := v.(*config.App); ok && !hasKey(node, "replicas") {
				a.Replicas = 1
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Platform == nil {
		t.Fatal("no Platform document")
	}
	return r
}

func isTenantKind(k string) bool { return slices.Contains(config.TenantKinds, k) }

// checkConsistent checks what the cross-document rules check, in simple
// form, so that the generator and the examples stay valid even before (or
// independently of) the real validators.
func checkConsistent(t *testing.T, r *repo) {
	t.Helper()
	pool := netip.MustParsePrefix(r.Platform.Network.Pool)
	tenants := map[string]*config.Tenant{}
	var blocks []netip.Prefix
	for _, tn := range r.Tenants {
		if tenants[tn.Name] != nil || tn.Name == "shared" {
			t.Errorf("tenant %s: duplicate or reserved name", tn.Name)
		}
		tenants[tn.Name] = tn
		b := netip.MustParsePrefix(tn.Block)
		if b.Masked() != b || !pool.Contains(b.Addr()) || b.Bits() < pool.Bits() {
			t.Errorf("tenant %s: block %s not aligned inside pool %s", tn.Name, b, pool)
		}
		for _, o := range blocks {
			if o.Overlaps(b) {
				t.Errorf("tenant %s: block %s overlaps %s", tn.Name, b, o)
			}
		}
		blocks = append(blocks, b)
	}
	offers := map[string][]string{}
	for _, s := range r.Services {
		offers[s.Name] = s.Offers
	}
	for _, s := range r.SharedVolumes {
		offers[s.Name] = s.Offers
	}
	for _, tn := range r.Tenants {
		for svc, modes := range tn.Grants {
			for _, m := range modes {
				if !slices.Contains(offers[svc], m) {
					t.Errorf("tenant %s: grant %s %s is not offered", tn.Name, svc, m)
				}
			}
		}
	}
	for dir := range mapValues(r.owner) {
		if tenants[dir] == nil {
			t.Errorf("folder tenants/%s: tenant not registered", dir)
		}
	}

	type key struct{ tenant, name string }
	lans := map[key]netip.Prefix{}
	for _, l := range r.Lans {
		tn := r.owner[l]
		if l.Tenant != "" && l.Tenant != tn {
			t.Errorf("lan %s/%s names tenant %s", tn, l.Name, l.Tenant)
		}
		s := netip.MustParsePrefix(l.Subnet)
		b := netip.MustParsePrefix(tenants[tn].Block)
		if s.Masked() != s || !b.Contains(s.Addr()) || s.Bits() < b.Bits() {
			t.Errorf("lan %s/%s: subnet %s not aligned inside block %s", tn, l.Name, s, b)
		}
		for k, o := range lans {
			if k.tenant == tn && o.Overlaps(s) {
				t.Errorf("lan %s/%s: subnet %s overlaps %s", tn, l.Name, s, k.name)
			}
		}
		if _, dup := lans[key{tn, l.Name}]; dup {
			t.Errorf("lan %s/%s: duplicate", tn, l.Name)
		}
		lans[key{tn, l.Name}] = s
	}
	vols := map[key]bool{}
	for _, v := range r.Volumes {
		vols[key{r.owner[v], v.Name}] = true
	}
	apps := map[key]*config.App{}
	for _, a := range r.Apps {
		k := key{r.owner[a], a.Name}
		if apps[k] != nil {
			t.Errorf("app %s/%s: duplicate", k.tenant, k.name)
		}
		apps[k] = a
	}
	type usage struct {
		cpus       float64
		mem        int64
		pids, ctrs int
	}
	used := map[string]*usage{}
	for k, a := range apps {
		tn := tenants[k.tenant]
		if !strings.HasPrefix(a.Image, r.Platform.Policy.Images[0]) {
			t.Errorf("app %s/%s: image %s not allowed", k.tenant, k.name, a.Image)
		}
		if len(a.Lans) == 0 {
			t.Errorf("app %s/%s: no LAN", k.tenant, k.name)
		}
		for _, l := range a.Lans {
			if _, ok := lans[key{k.tenant, l}]; !ok {
				t.Errorf("app %s/%s: unknown LAN %s", k.tenant, k.name, l)
			}
		}
		for _, peer := range a.TalksTo {
			p := apps[key{k.tenant, peer}]
			if p == nil {
				t.Errorf("app %s/%s: talksTo unknown app %s", k.tenant, k.name, peer)
			} else if !slices.ContainsFunc(a.Lans, func(l string) bool { return slices.Contains(p.Lans, l) }) {
				t.Errorf("app %s/%s: talksTo %s without a shared LAN", k.tenant, k.name, peer)
			}
		}
		for _, u := range a.Uses {
			if !slices.Contains(tn.Grants[u.Service], u.Mode) {
				t.Errorf("app %s/%s: uses %s %s without a grant", k.tenant, k.name, u.Service, u.Mode)
			}
		}
		for _, m := range a.Volumes {
			switch {
			case m.Shared != "":
				if !slices.Contains(tn.Grants[m.Shared], config.ReadOnly) {
					t.Errorf("app %s/%s: mounts shared volume %s without a grant", k.tenant, k.name, m.Shared)
				}
			case m.Volume != "":
				if !vols[key{k.tenant, m.Volume}] {
					t.Errorf("app %s/%s: mounts unknown volume %s", k.tenant, k.name, m.Volume)
				}
			default:
				t.Errorf("app %s/%s: mount of neither a volume nor a shared volume", k.tenant, k.name)
			}
			if !strings.HasPrefix(m.Path, "/") {
				t.Errorf("app %s/%s: mount path %q not absolute", k.tenant, k.name, m.Path)
			}
		}
		if a.Resources.CPUs <= 0 || a.Resources.Memory == "" || a.Resources.Pids <= 0 {
			t.Errorf("app %s/%s: resources incomplete: %+v", k.tenant, k.name, a.Resources)
		}
		replicas := a.Replicas
		u := used[k.tenant]
		if u == nil {
			u = &usage{}
			used[k.tenant] = u
		}
		u.cpus += float64(replicas) * a.Resources.CPUs
		u.mem += int64(replicas) * mib(t, a.Resources.Memory)
		u.pids += replicas * a.Resources.Pids
		u.ctrs += replicas
	}
	for name, u := range used {
		q := tenants[name].Quota
		if u.cpus > q.CPUs || u.mem > mib(t, q.Memory) || u.pids > q.Pids || u.ctrs > q.Containers {
			t.Errorf("tenant %s: usage %+v over quota %+v", name, *u, q)
		}
	}
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func mib(t *testing.T, s string) int64 {
	t.Helper()
	for suf, mul := range map[string]int64{"MiB": 1, "GiB": 1024} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			var v int64
			if _, err := fmt.Sscan(n, &v); err == nil {
				return v * mul
			}
		}
	}
	t.Errorf("memory %q: want <n>MiB or <n>GiB", s)
	return 0
}

func mapValues(m map[any]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}
