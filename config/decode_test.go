package config

import (
	"fmt"
	"slices"
	"testing"
)

func load(t *testing.T, kv ...string) *Repo {
	t.Helper()
	docs, ds := Load(files(kv...), Limits{})
	if len(ds) != 0 {
		t.Fatalf("load: %v", ds)
	}
	repo, ds := Decode(docs)
	if len(ds) != 0 {
		t.Fatalf("decode: %v", ds)
	}
	return repo
}

func TestDecodeDefaults(t *testing.T) {
	repo := load(t,
		"platform.yaml", "kind: Platform\nname: p\nnetwork: {pool: 10.80.0.0/12}\n",
		"shared/s.yaml", "kind: SharedService\nname: logging\nport: 8080\n---\nkind: SharedVolume\nname: data\n---\nkind: SharedVolume\nname: none\noffers: []\n",
		"tenants/acme/apps.yaml", `kind: App
name: web
ports: [{container: 80, host: 8080}, {container: 53, protocol: udp}]
healthcheck: {command: [/probe]}
---
kind: App
name: zero
replicas: 0
healthcheck: {command: [/probe], retries: 0, interval: 1s}
`,
	)
	p := repo.Platform
	if p == nil {
		t.Fatal("no platform")
	}
	wantRT := Runtime{StopTimeout: 10, User: "65534:65534", RestartRetries: 5, TmpfsSize: "16MiB"}
	if p.Network.Driver != "bridge" || p.Policy.PublishAddress != "127.0.0.1" || p.Runtime != wantRT {
		t.Errorf("platform defaults: %+v %+v %+v", p.Network, p.Policy, p.Runtime)
	}
	if s := repo.Services[0]; s.Protocol != "http" || s.Src == nil || s.Src.File != "shared/s.yaml" {
		t.Errorf("service: %+v", s)
	}
	if got := fmt.Sprint(repo.SharedVolumes[0].Offers, repo.SharedVolumes[1].Offers); got != "[read-only] []" {
		t.Errorf("shared volume offers: %s (an explicit [] stays)", got)
	}
	web, zero := repo.Apps[0], repo.Apps[1]
	if web.Name != "web" || web.Replicas != 1 || web.Ports[0].Protocol != "tcp" || web.Ports[1].Protocol != "udp" {
		t.Errorf("web: %+v", web)
	}
	if h := *web.Healthcheck; h.Interval != "10s" || h.Timeout != "3s" || h.Retries != 3 {
		t.Errorf("web healthcheck: %+v", h)
	}
	if zero.Replicas != 0 {
		t.Errorf("explicit replicas: 0 became %d", zero.Replicas)
	}
	if h := *zero.Healthcheck; h.Interval != "1s" || h.Timeout != "3s" || h.Retries != 0 {
		t.Errorf("zero healthcheck: %+v", h)
	}
}

func TestDecodeExplicitRuntimeZero(t *testing.T) {
	repo := load(t, "platform.yaml", "kind: Platform\nname: p\nruntime: {stopTimeout: 0, restartRetries: 0, user: '1000:1000'}\n")
	want := Runtime{StopTimeout: 0, User: "1000:1000", RestartRetries: 0, TmpfsSize: "16MiB"}
	if repo.Platform.Runtime != want {
		t.Errorf("runtime: %+v, want %+v", repo.Platform.Runtime, want)
	}
}

func TestDecodeTenantsAndOrder(t *testing.T) {
	repo := load(t,
		"tenants/globex/a.yaml", "kind: App\nname: a\n---\nkind: Lan\nname: main\n",
		"tenants/acme/z.yaml", "kind: App\nname: b\n---\nkind: App\nname: a\n---\nkind: Volume\nname: cache\n",
		// Names another tenant: kept as written, policy reports it.
		"tenants/acme/y.yaml", "kind: App\nname: a\ntenant: globex\n",
		// Two apps of one name: both kept, in file order, for policy.
		"tenants/acme/x.yaml", "kind: App\nname: b\n",
	)
	var got []string
	for _, a := range repo.Apps {
		got = append(got, fmt.Sprintf("%s/%s@%s", a.Tenant, a.Name, a.Src.File))
	}
	want := []string{
		"acme/a@tenants/acme/z.yaml",
		"acme/b@tenants/acme/x.yaml",
		"acme/b@tenants/acme/z.yaml",
		"globex/a@tenants/acme/y.yaml",
		"globex/a@tenants/globex/a.yaml",
	}
	if !slices.Equal(got, want) {
		t.Errorf("apps:\n got %q\nwant %q", got, want)
	}
	if l := repo.Lans[0]; l.Tenant != "globex" || l.Name != "main" {
		t.Errorf("lan: %+v", l)
	}
	if v := repo.Volumes[0]; v.Tenant != "acme" || v.Src.Index != 2 {
		t.Errorf("volume: %+v", v)
	}
}

func TestDecodeSkipsWhatItCannotRead(t *testing.T) {
	repo := load(t,
		"platform.yaml", "kind: Platform\nname: first\n",
		"platform2.yaml", "kind: Platform\nname: second\n---\nkind: Platform\nname: [not, a, string]\n",
		"tenants/acme/a.yaml", "kind: App\nname: ok\n---\nkind: App\nname: bad\nreplicas: [1]\n---\nkind: Gadget\nname: g\n---\nname: nokind\n",
	)
	// A document with a value of the wrong type is kept, marked Partial,
	// with the field zero: its name exists for the documents that name it.
	if repo.Platform == nil || repo.Platform.Name != "first" || len(repo.Platforms) != 3 || repo.Platforms[1].Name != "second" ||
		repo.Platforms[1].Partial || !repo.Platforms[2].Partial || repo.Platforms[2].Name != "" {
		t.Errorf("platforms: %+v", repo.Platforms)
	}
	if len(repo.Apps) != 2 || repo.Apps[0].Name != "bad" || !repo.Apps[0].Partial || repo.Apps[0].Replicas != 0 ||
		repo.Apps[1].Name != "ok" || repo.Apps[1].Partial {
		t.Errorf("apps: %+v", repo.Apps)
	}
}

func TestDecodeEmpty(t *testing.T) {
	repo, ds := Decode(nil)
	if repo == nil || repo.Platform != nil || len(ds) != 0 {
		t.Errorf("Decode(nil) = %+v, %v", repo, ds)
	}
}
