package policy

import (
	"math"
	"testing"

	"github.com/moat-platform/moat/config"
	"gopkg.in/yaml.v3"
)

// TestCheckNeverPanics feeds Check partial repositories: nil entries, no
// sources, empty or hostile values. Whatever Decode hands over after the
// schema has complained, Check must report, not crash.
func TestCheckNeverPanics(t *testing.T) {
	nan := math.NaN()
	weird := &config.Document{File: "tenants/acme/x.yaml", Tenant: "acme",
		Node: &yaml.Node{Kind: yaml.SequenceNode}}
	repos := []*config.Repo{
		nil,
		{},
		{Platforms: []*config.Platform{nil}, Tenants: []*config.Tenant{nil}, Services: []*config.SharedService{nil},
			SharedVolumes: []*config.SharedVolume{nil}, Lans: []*config.Lan{nil}, Volumes: []*config.Volume{nil}, Apps: []*config.App{nil}},
		{
			Platform: &config.Platform{Network: config.PlatformNetwork{Pool: "not a cidr"},
				Policy: config.Policy{PublishPorts: true, Capabilities: []config.CapException{{}}}},
			Tenants: []*config.Tenant{
				{Meta: config.Meta{Name: "acme"}, Block: "10.0.0.0/8", Quota: config.Quota{CPUs: nan, Memory: "lots", Pids: -1, Containers: -1},
					Grants: map[string][]string{"": nil, "x": {"bogus"}}},
				{Meta: config.Meta{Name: "acme"}, Block: "::/0"},
				{},
			},
			Services:      []*config.SharedService{{}, {Meta: config.Meta{Name: "s"}}},
			SharedVolumes: []*config.SharedVolume{{Meta: config.Meta{Name: "s"}}},
			Lans: []*config.Lan{
				{Meta: config.Meta{Name: "l"}, Tenant: "acme", Subnet: "10.0.0.0/32"},
				{Meta: config.Meta{Name: "l2", Src: weird}, Subnet: "garbage"},
				{Meta: config.Meta{Name: "l3"}, Tenant: "acme", Subnet: "10.0.0.0/0"},
			},
			Apps: []*config.App{
				{Meta: config.Meta{Name: "a"}, Tenant: "acme", Replicas: math.MaxInt, Lans: []string{"l", "l", ""},
					TalksTo: []string{"", "a", "b"}, Uses: []config.Use{{}, {Service: "s", Mode: "read-only"}, {Service: "s"}},
					Volumes: []config.Mount{{}, {Volume: "v"}, {Shared: "s"}}, Secrets: []string{"", ""},
					Resources: config.Resources{CPUs: math.Inf(1), Memory: "1TiB", Pids: math.MaxInt},
					Ports:     []config.Port{{}, {Host: 80}, {Host: 80}}, CapAdd: []string{"", "ALL"}},
				{Meta: config.Meta{Name: "b", Src: weird}, Replicas: -3, Resources: config.Resources{CPUs: nan, Memory: "-1"}},
				{Tenant: "nobody"},
			},
		},
	}
	for i, r := range repos {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("repo %d: Check panicked: %v", i, p)
				}
			}()
			ds := Check(r)
			for _, d := range ds {
				if d.Rule == "" || d.Message == "" {
					t.Errorf("repo %d: empty rule or message: %+v", i, d)
				}
			}
		}()
	}
}

// TestGoBuiltRepo: a Repo made in Go (no sources) is judged by its fields.
func TestGoBuiltRepo(t *testing.T) {
	repo := &config.Repo{
		Platform: &config.Platform{Network: config.PlatformNetwork{Pool: "10.80.0.0/12"}},
		Tenants: []*config.Tenant{{Meta: config.Meta{Kind: config.KindTenant, Name: "acme"}, Block: "10.80.0.0/22",
			Quota: config.Quota{CPUs: 1, Memory: "1GiB", Pids: 100, Containers: 2}}},
		Lans: []*config.Lan{{Meta: config.Meta{Kind: config.KindLan, Name: "l"}, Tenant: "acme", Subnet: "10.80.0.0/24"}},
		Apps: []*config.App{{Meta: config.Meta{Kind: config.KindApp, Name: "a"}, Tenant: "acme", Replicas: 3, Lans: []string{"l"},
			Resources: config.Resources{CPUs: 0.1, Memory: "64MiB", Pids: 10}}},
	}
	ds := Check(repo)
	if len(ds) != 1 || ds[0].Rule != "quotas.containers" {
		t.Fatalf("got %v", ds)
	}
}

// FuzzCheck mutates the base repository's app file and checks that Check
// (after the real loader and decoder) never panics.
func FuzzCheck(f *testing.F) {
	f.Add(base[acmeApps])
	f.Add("kind: App\nname: x\nlans: [a, a]\nreplicas: 99999999999\nports: [{host: 1}, {host: 1}]\n")
	f.Add("kind: Tenant\nname: acme\nblock: 10.80.0.0/22\ngrants: {x: [read-only]}\n")
	f.Fuzz(func(t *testing.T, app string) {
		files := map[string]string{acmeApps: app}
		if app == "" {
			files[acmeApps] = "{}"
		}
		repo := fuzzRepo(files)
		if repo != nil {
			Check(repo)
		}
	})
}
