package compile

import (
	"fmt"
	"testing"

	"github.com/moat-platform/moat/config"
)

// benchRepo builds tenants x appsPer apps, each tenant with two LANs, a
// volume and a secret, and two shared services granted to every tenant.
func benchRepo(tenants, appsPer int) (*config.Repo, Options) {
	repo := &config.Repo{
		Platform:      platform("bench"),
		Services:      []*config.SharedService{service("logging"), service("metrics")},
		SharedVolumes: []*config.SharedVolume{{Meta: config.Meta{Kind: config.KindSharedVolume, Name: "masterdata"}}},
	}
	opts := Options{SecretsDir: "/var/lib/moat/secrets", SecretDigests: map[string]string{}}
	grants := map[string][]string{"logging": {config.WriteOnly}, "metrics": {config.WriteOnly}, "masterdata": {config.ReadOnly}}
	for ti := range tenants {
		tn := fmt.Sprintf("t%04d", ti)
		// Each tenant a /22 inside 10.0.0.0/8, LANs the first two /24s.
		b2, b3 := (ti*4)/256, (ti*4)%256
		repo.Tenants = append(repo.Tenants, tenant(tn, fmt.Sprintf("10.%d.%d.0/22", b2, b3), grants))
		repo.Lans = append(repo.Lans,
			lan(tn, "front", fmt.Sprintf("10.%d.%d.0/24", b2, b3), true),
			lan(tn, "back", fmt.Sprintf("10.%d.%d.0/24", b2, b3+1), false))
		repo.Volumes = append(repo.Volumes, volume(tn, "data"))
		opts.SecretDigests[tn+"/token"] = digest(tn)
		for ai := range appsPer {
			a := app(tn, fmt.Sprintf("app%04d", ai), "front", "back")
			a.Env = map[string]string{"LOG_URL": "http://logging:8080", "MODE": "bench", "INDEX": fmt.Sprint(ai)}
			a.Volumes = []config.Mount{{Volume: "data", Path: "/data"}, {Shared: "masterdata", Path: "/master"}}
			a.Secrets = []string{"token"}
			a.Healthcheck = &config.Healthcheck{Command: []string{"/app", "-check"}}
			repo.Apps = append(repo.Apps, a)
		}
	}
	return repo, opts
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []struct{ tenants, appsPer int }{{1, 10}, {10, 100}, {100, 100}} {
		repo, opts := benchRepo(n.tenants, n.appsPer)
		b.Run(fmt.Sprintf("apps=%d", n.tenants*n.appsPer), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(repo, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchRepoCompiles keeps the benchmark's model valid.
func TestBenchRepoCompiles(t *testing.T) {
	repo, opts := benchRepo(3, 4)
	d := mustCompile(t, repo, opts)
	if len(d.Containers) != 3*4+2 || len(d.Networks) != 6 || len(d.Volumes) != 4 {
		t.Errorf("got %d containers, %d networks, %d volumes", len(d.Containers), len(d.Networks), len(d.Volumes))
	}
}
