package compile

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustCompile(t testing.TB, repo *config.Repo, opts Options) *state.Desired {
	t.Helper()
	d, err := Compile(repo, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return d
}

func marshal(t testing.TB, d *state.Desired) []byte {
	t.Helper()
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	got := marshal(t, mustCompile(t, smallRepo(), testOptions()))
	golden := filepath.Join("testdata", "small.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./compile -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("compile output differs from %s (run with -update if intended):\n%s", golden, got)
	}
}

func TestDeterministicWhateverTheOrder(t *testing.T) {
	want := marshal(t, mustCompile(t, smallRepo(), testOptions()))
	for seed := range uint64(20) {
		got := marshal(t, mustCompile(t, shuffled(smallRepo(), seed), testOptions()))
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: output depends on input order", seed)
		}
	}
}

func TestDoesNotModifyRepo(t *testing.T) {
	repo := smallRepo()
	fresh := smallRepo()
	mustCompile(t, repo, testOptions())
	if !reflect.DeepEqual(repo, fresh) {
		t.Error("Compile modified its input")
	}
}

// TestHardening checks the SECURITY.md defaults on every container of the
// small repo and of a repo where every app asks for as much as it may.
func TestHardening(t *testing.T) {
	d := mustCompile(t, smallRepo(), testOptions())
	if len(d.Containers) != 6 {
		t.Fatalf("got %d containers, want 6 (web x2, api, shop, logging, acme's logging gateway)", len(d.Containers))
	}
	for _, c := range d.Containers {
		t.Run(c.Name, func(t *testing.T) {
			if !slices.Equal(c.CapDrop, []string{"ALL"}) {
				t.Errorf("CapDrop = %v", c.CapDrop)
			}
			if !slices.Contains(c.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("SecurityOpt = %v", c.SecurityOpt)
			}
			if !c.ReadOnlyRootfs {
				t.Error("root filesystem is writable")
			}
			if c.User == "" || isRoot(c.User) {
				t.Errorf("User = %q", c.User)
			}
			if c.Memory <= 0 || c.NanoCPUs <= 0 || c.PidsLimit <= 0 {
				t.Errorf("limits memory=%d cpus=%d pids=%d", c.Memory, c.NanoCPUs, c.PidsLimit)
			}
			if c.Restart.Name != "on-failure" || c.Restart.MaxRetries < 1 {
				t.Errorf("Restart = %+v", c.Restart)
			}
			if opts := c.Tmpfs["/tmp"]; !strings.Contains(opts, "noexec") || !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "size=16777216") {
				t.Errorf("Tmpfs = %v", c.Tmpfs)
			}
			for _, m := range c.Mounts {
				switch {
				case m.Type == "bind":
					if !m.ReadOnly || !strings.HasPrefix(m.Target, "/run/secrets/") || !strings.HasPrefix(m.Source, "/var/lib/moat/secrets/acme/") {
						t.Errorf("bind mount %+v is not a read-only secret of the tenant", m)
					}
				case strings.Contains(m.Source, ".shared."):
					if !m.ReadOnly {
						t.Errorf("shared volume mount %+v is writable", m)
					}
				}
			}
			if c.Labels[state.LabelManagedBy] != state.ManagedBy || c.Labels[state.LabelInstance] != "fixture" ||
				len(c.Labels[state.LabelSpecHash]) != hashLen || c.Labels[state.LabelSpecParts] == "" {
				t.Errorf("Labels = %v", c.Labels)
			}
		})
	}
}

func TestNoSecretValueInOutput(t *testing.T) {
	out := string(marshal(t, mustCompile(t, smallRepo(), testOptions())))
	for k, v := range secretValues {
		if strings.Contains(out, v) {
			t.Errorf("the value of secret %s appears in the output", k)
		}
		if !strings.Contains(out, digest(v)) {
			t.Errorf("the digest of secret %s is missing from the output", k)
		}
	}
}

func TestSecretRotationChangesOnlyTheSecretsPart(t *testing.T) {
	before := mustCompile(t, smallRepo(), testOptions())
	opts := testOptions()
	opts.SecretDigests["acme/db-password"] = digest("rotated")
	after := mustCompile(t, smallRepo(), opts)
	for i, c := range after.Containers {
		old := before.Containers[i].Labels
		changed := ChangedParts(old[state.LabelSpecParts], c.Labels[state.LabelSpecParts])
		if c.Labels[state.LabelApp] == "api" {
			if !slices.Equal(changed, []string{"secrets"}) || old[state.LabelSpecHash] == c.Labels[state.LabelSpecHash] {
				t.Errorf("%s: changed parts %v after rotation, want [secrets] and a new hash", c.Name, changed)
			}
		} else if len(changed) != 0 {
			t.Errorf("%s: changed parts %v, want none", c.Name, changed)
		}
	}
}

func TestNetworks(t *testing.T) {
	tests := []struct {
		name      string
		driver    string
		encrypted bool
		internet  bool
		weave     *config.WeaveNetwork
		want      state.NetworkSpec
	}{
		{"bridge", "bridge", false, false, nil, state.NetworkSpec{Driver: "bridge", Internal: true,
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "true", state.OptionBridgeName: "moat-e9fb3bf2e3"}}},
		{"bridge with internet", "bridge", false, true, nil, state.NetworkSpec{Driver: "bridge",
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "true", state.OptionBridgeName: "moat-e9fb3bf2e3"}}},
		{"default driver", "", false, false, nil, state.NetworkSpec{Driver: "bridge", Internal: true,
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "true", state.OptionBridgeName: "moat-e9fb3bf2e3"}}},
		// Overlay is Swarm's (the test sets engine swarm): not attachable,
		// so no standalone container can join a tenant LAN.
		{"overlay", "overlay", false, false, nil, state.NetworkSpec{Driver: "overlay", Internal: true}},
		{"overlay encrypted", "overlay", true, false, nil, state.NetworkSpec{Driver: "overlay", Internal: true,
			Options: map[string]string{"encrypted": "true"}}},
		{"weave", "weave", false, false, &config.WeaveNetwork{API: "127.0.0.1:6784"},
			state.NetworkSpec{Driver: "weavemesh", IPAMDriver: "weavemesh", Internal: true}},
		{"weave renamed plugin", "weave", false, false, &config.WeaveNetwork{API: "127.0.0.1:6784", Plugin: "moatweavemesh"},
			state.NetworkSpec{Driver: "moatweavemesh", IPAMDriver: "moatweavemesh", Internal: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := &config.Repo{
				Platform: platform("p"),
				Tenants:  []*config.Tenant{tenant("acme", "10.80.0.0/22", nil)},
				Lans:     []*config.Lan{lan("acme", "backend", "10.80.1.0/24", tt.internet)},
			}
			repo.Platform.Network.Driver = tt.driver
			repo.Platform.Network.Encrypted = tt.encrypted
			repo.Platform.Network.Weave = tt.weave
			name := "p.acme.backend"
			if tt.driver == "overlay" {
				repo.Platform.Engine = config.EngineSwarm
				name = "p--acme--backend"
			}
			d := mustCompile(t, repo, Options{})
			want := tt.want
			want.Name, want.Subnet, want.Gateway = name, "10.80.1.0/24", "10.80.1.1"
			want.Labels = map[string]string{
				state.LabelManagedBy: "moat", state.LabelInstance: "p", state.LabelTenant: "acme",
				state.LabelKind: "lan", state.LabelLan: "backend",
			}
			if len(d.Networks) != 1 || !reflect.DeepEqual(d.Networks[0], want) {
				t.Errorf("got %+v\nwant %+v", d.Networks, want)
			}
		})
	}
}

func TestPortsBindToThePublishAddress(t *testing.T) {
	repo := smallRepo()
	repo.Platform.Policy.PublishPorts = true
	repo.Platform.Policy.PublishAddress = "192.0.2.10"
	repo.Apps[2].Ports = []config.Port{{Container: 8443, Host: 9443}, {Container: 53, Host: 5353, Protocol: "udp"}}
	d := mustCompile(t, repo, testOptions())
	want := []state.Port{
		{HostIP: "192.0.2.10", HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
		{HostIP: "192.0.2.10", HostPort: 9443, ContainerPort: 8443, Protocol: "tcp"},
	}
	for _, c := range d.Containers {
		if c.Labels[state.LabelApp] == "shop" && !reflect.DeepEqual(c.Ports, want) {
			t.Errorf("Ports = %+v\nwant %+v", c.Ports, want)
		} else if c.Labels[state.LabelApp] != "shop" && len(c.Ports) != 0 {
			t.Errorf("%s publishes %+v", c.Name, c.Ports)
		}
	}
}

func TestUserAndReplicas(t *testing.T) {
	repo := smallRepo()
	repo.Tenants[0].User = "1000:1000" // acme's, explicit
	repo.Apps[0].User = "01000:1000"   // the same ids: allowed
	repo.Apps[0].Replicas = 3
	d := mustCompile(t, repo, testOptions())
	var names []string
	for _, c := range d.Containers {
		if c.Labels[state.LabelApp] == "api" {
			names = append(names, c.Name)
			if c.User != "1000:1000" {
				t.Errorf("%s: User = %q", c.Name, c.User)
			}
			if !slices.Contains(c.Env, "MOAT_REPLICA="+c.Labels[state.LabelReplica]) {
				t.Errorf("%s: Env = %v", c.Name, c.Env)
			}
		}
	}
	if want := []string{"fixture.acme.api.1", "fixture.acme.api.2", "fixture.acme.api.3"}; !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
}

// TestErrors: each broken model is refused with an error naming what is
// wrong, and never half-compiled.
func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Repo, *Options)
		want   []string // substrings of the error
	}{
		{"missing digest", func(_ *config.Repo, o *Options) { delete(o.SecretDigests, "acme/db-password") },
			[]string{"app acme/api", `secret "db-password"`, "no digest"}},
		{"no secrets dir", func(_ *config.Repo, o *Options) { o.SecretsDir = "" },
			[]string{"app acme/api", "secrets directory"}},
		{"secret path", func(r *config.Repo, o *Options) {
			r.Apps[0].Secrets = []string{"../globex/key"}
			o.SecretDigests["acme/../globex/key"] = "x"
		}, []string{`secret "../globex/key"`, "plain file name"}},
		{"unknown lan", func(r *config.Repo, _ *Options) { r.Apps[0].Lans = []string{"main"} },
			[]string{"app acme/api", `unknown lan "main"`}},
		{"unknown tenant", func(r *config.Repo, _ *Options) { r.Apps[0].Tenant = "umbrella" },
			[]string{"app umbrella/api", "unknown tenant"}},
		{"reserved tenant", func(r *config.Repo, _ *Options) { r.Tenants[2].Name = "shared" },
			[]string{`tenant "shared"`, "reserved"}},
		{"dotted name", func(r *config.Repo, _ *Options) { r.Apps[0].Name = "a.b" },
			[]string{"not a DNS label"}},
		{"root user", func(r *config.Repo, _ *Options) { r.Apps[0].User = "0:0" },
			[]string{"app acme/api", `user "0:0" is not tenant acme's`}},
		{"root tenant user", func(r *config.Repo, _ *Options) { r.Tenants[0].User = "0:1000" },
			[]string{"app acme/api", "tenant acme has no valid non-root user"}},
		{"another tenant's user", func(r *config.Repo, _ *Options) { r.Apps[0].User = config.DefaultTenantUser("globex") },
			[]string{"app acme/api", "is not tenant acme's"}},
		{"root runtime user", func(r *config.Repo, _ *Options) { r.Platform.Runtime.User = "root" },
			[]string{"runtime user", "root"}},
		{"no limits", func(r *config.Repo, _ *Options) { r.Apps[0].Resources.Pids = 0 },
			[]string{"app acme/api", "limits"}},
		{"bad memory", func(r *config.Repo, _ *Options) { r.Apps[0].Resources.Memory = "64 MiB" },
			[]string{"app acme/api", "memory"}},
		{"service without limits", func(r *config.Repo, _ *Options) { r.Services[0].Resources = config.Resources{} },
			[]string{"shared service logging", "limits"}},
		{"ports not allowed", func(r *config.Repo, _ *Options) { r.Apps[0].Ports = []config.Port{{Container: 80, Host: 8080}} },
			[]string{"app acme/api", "published ports"}},
		{"reserved env", func(r *config.Repo, _ *Options) { r.Apps[0].Env = map[string]string{"MOAT_TENANT": "globex"} },
			[]string{"app acme/api", "MOAT_TENANT", "reserved"}},
		{"host mount", func(r *config.Repo, _ *Options) {
			r.Apps[0].Volumes = []config.Mount{{Host: "/var/run/docker.sock", Path: "/sock"}}
		}, []string{"host bind mount"}},
		{"mount clash", func(r *config.Repo, _ *Options) {
			r.Apps[0].Volumes = []config.Mount{{Volume: "cache", Path: "/run/secrets/api-token"}}
		}, []string{"two mounts at /run/secrets/api-token"}},
		{"unknown shared volume", func(r *config.Repo, _ *Options) {
			r.Apps[0].Volumes = []config.Mount{{Shared: "payroll", Path: "/p"}}
		}, []string{`unknown shared volume "payroll"`}},
		{"alias clash", func(r *config.Repo, _ *Options) { r.Apps[0].Name = "logging" },
			[]string{"fixture.acme.backend", `"logging"`, "claimed by both"}},
		{"duplicate app", func(r *config.Repo, _ *Options) { r.Apps[1].Name = "api" },
			[]string{"container fixture.acme.api.1", "more than once"}},
		{"subnet host bits", func(r *config.Repo, _ *Options) { r.Lans[0].Subnet = "10.80.1.7/24" },
			[]string{"lan acme/backend", "host bits"}},
		{"ipv6 subnet", func(r *config.Repo, _ *Options) { r.Lans[0].Subnet = "fd00::/64" },
			[]string{"lan acme/backend", "IPv4"}},
		{"unbounded restart", func(r *config.Repo, _ *Options) { r.Platform.Runtime.RestartRetries = 0 },
			[]string{"restart retries"}},
		{"unknown driver", func(r *config.Repo, _ *Options) { r.Platform.Network.Driver = "macvlan" },
			[]string{`unknown network driver "macvlan"`}},
		{"replicated published port", func(r *config.Repo, _ *Options) {
			r.Platform.Policy.PublishPorts = true
			r.Apps[1].Ports = []config.Port{{Container: 8080, Host: 8080}}
		}, []string{"host port 127.0.0.1:8080/tcp is published by both fixture.acme.web.1 and fixture.acme.web.2"}},
		{"capability not excepted", func(r *config.Repo, _ *Options) { r.Apps[0].CapAdd = []string{"NET_BIND_SERVICE"} },
			[]string{"app acme/api", "capability NET_BIND_SERVICE", "exception list"}},
		{"capability of another app", func(r *config.Repo, _ *Options) { r.Apps[2].CapAdd = []string{"SYS_ADMIN"} },
			[]string{"app globex/shop", "capability SYS_ADMIN"}},
		{"bad healthcheck", func(r *config.Repo, _ *Options) { r.Apps[1].Healthcheck.Timeout = "soon" },
			[]string{"app acme/web", "healthcheck", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, opts := smallRepo(), testOptions()
			tt.mutate(repo, &opts)
			d, err := Compile(repo, opts)
			if err == nil {
				t.Fatalf("no error; got %d containers", len(d.Containers))
			}
			if d != nil {
				t.Error("a partial result came back with the error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestMissingDigestIsDetectable(t *testing.T) {
	opts := testOptions()
	clear(opts.SecretDigests)
	_, err := Compile(smallRepo(), opts)
	if !errors.Is(err, ErrMissingSecretDigest) {
		t.Fatalf("err = %v, want ErrMissingSecretDigest", err)
	}
	// Both missing secrets are reported at once, in a stable order.
	if !strings.Contains(err.Error(), `"api-token"`) || !strings.Contains(err.Error(), `"db-password"`) ||
		strings.Index(err.Error(), `"api-token"`) > strings.Index(err.Error(), `"db-password"`) {
		t.Errorf("err = %v", err)
	}
}

func TestNoPlatform(t *testing.T) {
	if _, err := Compile(&config.Repo{}, Options{}); err == nil {
		t.Error("no error for a repo without a platform")
	}
}

func TestCapabilitiesNormalised(t *testing.T) {
	repo := smallRepo()
	repo.Apps[2].CapAdd = []string{"cap_net_bind_service", "NET_BIND_SERVICE"}
	d := mustCompile(t, repo, testOptions())
	for _, c := range d.Containers {
		if c.Labels[state.LabelApp] == "shop" && !slices.Equal(c.CapAdd, []string{"NET_BIND_SERVICE"}) {
			t.Errorf("CapAdd = %v", c.CapAdd)
		}
	}
}

// An app with no LAN gets no endpoint at all (network mode "none").
func TestNoLanNoNetwork(t *testing.T) {
	repo := smallRepo()
	repo.Apps[0].Lans = nil
	d := mustCompile(t, repo, testOptions())
	if c := d.Containers[0]; c.Name != "fixture.acme.api.1" || len(c.Networks) != 0 {
		t.Errorf("%s: Networks = %+v", c.Name, c.Networks)
	}
}
