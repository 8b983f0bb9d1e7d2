package compile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"

	"github.com/moat-platform/moat/config"
)

// A tiny builder for models, so tests read like the YAML they stand for.
// Everything is built as Decode would leave it: defaults applied, tenant
// fields filled.

func platform(name string) *config.Platform {
	return &config.Platform{
		Meta:    config.Meta{Kind: config.KindPlatform, Name: name},
		Network: config.PlatformNetwork{Driver: "bridge", Pool: "10.80.0.0/12"},
		Policy:  config.Policy{Images: []string{"localhost/moat-examples/"}, PublishAddress: "127.0.0.1"},
		Runtime: config.Runtime{StopTimeout: 10, User: "65534:65534", RestartRetries: 5, TmpfsSize: "16MiB"},
	}
}

func tenant(name, block string, grants map[string][]string) *config.Tenant {
	return &config.Tenant{Meta: config.Meta{Kind: config.KindTenant, Name: name}, Block: block, Grants: grants}
}

func lan(tenant, name, subnet string, internet bool) *config.Lan {
	return &config.Lan{Meta: config.Meta{Kind: config.KindLan, Name: name}, Tenant: tenant, Subnet: subnet, Internet: internet}
}

func volume(tenant, name string) *config.Volume {
	return &config.Volume{Meta: config.Meta{Kind: config.KindVolume, Name: name}, Tenant: tenant}
}

func app(tenant, name string, lans ...string) *config.App {
	return &config.App{
		Meta:      config.Meta{Kind: config.KindApp, Name: name},
		Tenant:    tenant,
		Image:     "localhost/moat-examples/echo:1",
		Replicas:  1,
		Lans:      lans,
		Resources: config.Resources{CPUs: 0.25, Memory: "64MiB", Pids: 64},
	}
}

func service(name string) *config.SharedService {
	return &config.SharedService{
		Meta:      config.Meta{Kind: config.KindSharedService, Name: name},
		Image:     "localhost/moat-examples/logsink:1",
		Protocol:  "http",
		Port:      8080,
		Offers:    []string{config.WriteOnly},
		Resources: config.Resources{CPUs: 0.5, Memory: "64MiB", Pids: 64},
	}
}

// secretValues stand in for the host's secret store in tests; digest is
// what a caller computes from them (a keyed hash).
var secretValues = map[string]string{
	"acme/db-password": "hunter2-very-secret",
	"acme/api-token":   "tok-3f9a1c-very-secret",
}

func digest(value string) string {
	m := hmac.New(sha256.New, []byte("test-key"))
	m.Write([]byte(value))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]
}

func testOptions() Options {
	d := map[string]string{}
	for k, v := range secretValues {
		d[k] = digest(v)
	}
	return Options{SecretsDir: "/var/lib/moat/secrets", SecretDigests: d}
}

// smallRepo is test/fixtures/validate/valid-minimal plus a secret, a
// health check and a capability, so the golden file shows every feature.
func smallRepo() *config.Repo {
	web := app("acme", "web", "frontend", "backend")
	web.Replicas = 2
	web.TalksTo = []string{"api"}
	web.Uses = []config.Use{{Service: "logging", Mode: config.WriteOnly}}
	web.Env = map[string]string{"LOG_URL": "http://logging:8080", "GREETING": "hello"}
	web.Command = []string{"/echo", "-listen", ":8080"}
	web.Healthcheck = &config.Healthcheck{Command: []string{"/echo", "-check"}, Interval: "5s"}

	api := app("acme", "api", "backend")
	api.Volumes = []config.Mount{{Shared: "masterdata", Path: "/master"}, {Volume: "cache", Path: "/cache"}}
	api.Secrets = []string{"db-password", "api-token"}

	shop := app("globex", "shop", "main")
	shop.Resources = config.Resources{CPUs: 0.5, Memory: "128MiB", Pids: 64}
	shop.CapAdd = []string{"NET_BIND_SERVICE"}

	p := platform("fixture")
	p.Policy.Capabilities = []config.CapException{{Tenant: "globex", App: "shop", Add: []string{"NET_BIND_SERVICE"}}}
	return &config.Repo{
		Platform: p,
		Tenants: []*config.Tenant{
			tenant("acme", "10.80.0.0/22", map[string][]string{"logging": {config.WriteOnly}, "masterdata": {config.ReadOnly}}),
			tenant("globex", "10.80.4.0/22", map[string][]string{"logging": {config.WriteOnly}}),
			tenant("initech", "10.80.8.0/22", nil),
		},
		Services:      []*config.SharedService{service("logging")},
		SharedVolumes: []*config.SharedVolume{{Meta: config.Meta{Kind: config.KindSharedVolume, Name: "masterdata"}, Offers: []string{config.ReadOnly}}},
		Lans: []*config.Lan{
			lan("acme", "backend", "10.80.1.0/24", true),
			lan("acme", "frontend", "10.80.0.0/24", false),
			lan("globex", "main", "10.80.4.0/24", true),
			lan("initech", "office", "10.80.8.0/24", false),
		},
		Volumes: []*config.Volume{volume("acme", "cache")},
		Apps:    []*config.App{api, web, shop},
	}
}

// shuffled returns a deep-enough copy of repo with every slice whose order
// carries no meaning shuffled. Maps need no help: Go randomises them.
func shuffled(repo *config.Repo, seed uint64) *config.Repo {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	shuffle := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	cp := *repo
	cp.Tenants = slices.Clone(repo.Tenants)
	cp.Services = slices.Clone(repo.Services)
	cp.SharedVolumes = slices.Clone(repo.SharedVolumes)
	cp.Lans = slices.Clone(repo.Lans)
	cp.Volumes = slices.Clone(repo.Volumes)
	cp.Apps = make([]*config.App, len(repo.Apps))
	for i, a := range repo.Apps {
		b := *a
		b.Lans = slices.Clone(a.Lans)
		b.Secrets = slices.Clone(a.Secrets)
		b.Volumes = slices.Clone(a.Volumes)
		b.Ports = slices.Clone(a.Ports)
		b.CapAdd = slices.Clone(a.CapAdd)
		shuffle(len(b.Lans), func(i, j int) { b.Lans[i], b.Lans[j] = b.Lans[j], b.Lans[i] })
		shuffle(len(b.Secrets), func(i, j int) { b.Secrets[i], b.Secrets[j] = b.Secrets[j], b.Secrets[i] })
		shuffle(len(b.Volumes), func(i, j int) { b.Volumes[i], b.Volumes[j] = b.Volumes[j], b.Volumes[i] })
		shuffle(len(b.Ports), func(i, j int) { b.Ports[i], b.Ports[j] = b.Ports[j], b.Ports[i] })
		shuffle(len(b.CapAdd), func(i, j int) { b.CapAdd[i], b.CapAdd[j] = b.CapAdd[j], b.CapAdd[i] })
		cp.Apps[i] = &b
	}
	shuffle(len(cp.Tenants), func(i, j int) { cp.Tenants[i], cp.Tenants[j] = cp.Tenants[j], cp.Tenants[i] })
	shuffle(len(cp.Services), func(i, j int) { cp.Services[i], cp.Services[j] = cp.Services[j], cp.Services[i] })
	shuffle(len(cp.SharedVolumes), func(i, j int) {
		cp.SharedVolumes[i], cp.SharedVolumes[j] = cp.SharedVolumes[j], cp.SharedVolumes[i]
	})
	shuffle(len(cp.Lans), func(i, j int) { cp.Lans[i], cp.Lans[j] = cp.Lans[j], cp.Lans[i] })
	shuffle(len(cp.Volumes), func(i, j int) { cp.Volumes[i], cp.Volumes[j] = cp.Volumes[j], cp.Volumes[i] })
	shuffle(len(cp.Apps), func(i, j int) { cp.Apps[i], cp.Apps[j] = cp.Apps[j], cp.Apps[i] })
	return &cp
}
