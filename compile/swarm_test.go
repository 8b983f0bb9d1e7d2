package compile

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// swarmRepo is smallRepo on a Swarm platform: overlay LANs, encrypted,
// acme pinned to nodes by two labels.
func swarmRepo() *config.Repo {
	r := smallRepo()
	r.Platform.Engine = config.EngineSwarm
	r.Platform.Network.Driver = DriverOverlay
	r.Platform.Network.Encrypted = true
	r.Platform.Network.HostProtection = true // the default of a loaded platform
	for _, t := range r.Tenants {
		if t.Name == "acme" {
			t.Placement = &config.Placement{NodeLabels: map[string]string{"zone": "eu-1", "disk": "ssd"}}
		}
	}
	return r
}

func TestSwarmGolden(t *testing.T) {
	got := marshal(t, mustCompile(t, swarmRepo(), testOptions()))
	golden := filepath.Join("testdata", "swarm.golden.json")
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
	for seed := range uint64(10) {
		if again := marshal(t, mustCompile(t, shuffled(swarmRepo(), seed), testOptions())); !bytes.Equal(again, got) {
			t.Fatalf("seed %d: Swarm output depends on input order", seed)
		}
	}
}

func TestSwarmNames(t *testing.T) {
	d := mustCompile(t, swarmRepo(), testOptions())
	if d.Engine != state.EngineSwarm {
		t.Errorf("Engine = %q, want %q", d.Engine, state.EngineSwarm)
	}
	var cts, nets, vols []string
	for _, c := range d.Containers {
		cts = append(cts, c.Name)
	}
	for _, n := range d.Networks {
		nets = append(nets, n.Name)
	}
	for _, v := range d.Volumes {
		vols = append(vols, v.Name)
	}
	wantCts := []string{"fixture--acme--api--1", "fixture--acme--logging--gateway", "fixture--acme--web--1", "fixture--acme--web--2",
		"fixture--globex--shop--1", "fixture--shared--logging"}
	wantNets := []string{"fixture--acme--backend", "fixture--acme--frontend", "fixture--acme--logging--link", "fixture--globex--main", "fixture--initech--office"}
	wantVols := []string{"fixture--acme--cache", "fixture--shared--masterdata"}
	if !slices.Equal(cts, wantCts) || !slices.Equal(nets, wantNets) || !slices.Equal(vols, wantVols) {
		t.Errorf("names\n got %v\n     %v\n     %v\nwant %v\n     %v\n     %v", cts, nets, vols, wantCts, wantNets, wantVols)
	}
	for _, c := range d.Containers {
		if strings.Contains(c.Name, ".") {
			t.Errorf("%s: a Swarm name must be one DNS label", c.Name)
		}
	}
	gw := findContainer(d, "fixture--acme--logging--gateway")
	if !slices.Contains(gw.Cmd, "--upstream=fixture--shared--logging:8080") {
		t.Errorf("gateway Cmd %v: the upstream must be the Swarm name of the service", gw.Cmd)
	}
	api := findContainer(d, "fixture--acme--api--1")
	if i := slices.IndexFunc(api.Mounts, func(m state.Mount) bool { return m.Target == "/cache" }); i < 0 || api.Mounts[i].Source != "fixture--acme--cache" {
		t.Errorf("api mounts %+v: the volume must have its Swarm name", api.Mounts)
	}
	if init := d.Volumes[0].Init; init == nil || init.Mounts[0].Source != "fixture--acme--cache" {
		t.Errorf("volume init %+v", init)
	}
	// The single-host names are unchanged.
	if NetworkName("p", "t", "l") != "p.t.l" || ContainerName("p", "t", "a", 2) != "p.t.a.2" ||
		GatewayContainerName("p", "t", "s") != "p.t.s.gateway" || SwarmNames.Gateway("p", "t", "s") != "p--t--s--gateway" {
		t.Error("names changed")
	}
}

func TestSwarmNetworks(t *testing.T) {
	d := mustCompile(t, swarmRepo(), testOptions())
	for _, n := range d.Networks {
		if n.Driver != DriverOverlay || n.Attachable || !reflect.DeepEqual(n.Options, map[string]string{"encrypted": "true"}) {
			t.Errorf("%s: driver %s attachable %v options %v, want an encrypted, non-attachable overlay", n.Name, n.Driver, n.Attachable, n.Options)
		}
	}
	link := findNetwork(d, "fixture--acme--logging--link")
	sub := netip.MustParsePrefix(link.Subnet)
	if sub.Bits() != 28 || !link.Internal || !netip.MustParsePrefix("10.95.0.0/16").Contains(sub.Addr()) || sub.Masked() != sub {
		t.Errorf("link network %+v: want an internal /28 of the link pool", link)
	}

	r := swarmRepo()
	r.Platform.Network.Encrypted = false
	for _, n := range mustCompile(t, r, testOptions()).Networks {
		if n.Options != nil {
			t.Errorf("%s: options %v without encryption", n.Name, n.Options)
		}
	}
}

// On Swarm the host is reached through the node's docker_gwbridge, not
// through the overlays: one rule set for its interface (moat-gwbridge),
// none per overlay; none at all with host protection off.
func TestSwarmHostRules(t *testing.T) {
	d := mustCompile(t, swarmRepo(), testOptions())
	want := state.HostRulesSpec{Network: "docker_gwbridge", Tenant: "", Bridge: "moat-gwbridge"}
	want.Hash = firewall.Hash("fixture", want)
	if !reflect.DeepEqual(d.HostRules, []state.HostRulesSpec{want}) {
		t.Errorf("host rules on Swarm:\n got %+v\nwant %+v", d.HostRules, []state.HostRulesSpec{want})
	}
	if want.Hash == "" || !strings.HasPrefix(want.Bridge, firewall.BridgePrefix) {
		t.Errorf("the gateway bridge's interface %q must match moat's jumps (%s+)", want.Bridge, firewall.BridgePrefix)
	}
	r := swarmRepo()
	r.Platform.Network.HostProtection = false
	if hr := mustCompile(t, r, testOptions()).HostRules; len(hr) != 0 {
		t.Errorf("host protection off: host rules %+v", hr)
	}
}

func TestSwarmParts(t *testing.T) {
	d := mustCompile(t, swarmRepo(), testOptions())
	acme := []string{"node.labels.disk==ssd", "node.labels.zone==eu-1"}
	want := map[string]state.SwarmSpec{
		// api mounts the writable volume cache: never two at once.
		"fixture--acme--api--1":           {Placement: acme, UpdateOrder: UpdateStopFirst},
		"fixture--acme--web--1":           {Placement: acme, UpdateOrder: UpdateStartFirst},
		"fixture--acme--web--2":           {Placement: acme, UpdateOrder: UpdateStartFirst},
		"fixture--acme--logging--gateway": {Placement: acme, UpdateOrder: UpdateStartFirst},
		"fixture--globex--shop--1":        {UpdateOrder: UpdateStartFirst},
		// A shared service is the platform's: no tenant places it.
		"fixture--shared--logging": {UpdateOrder: UpdateStartFirst},
	}
	for _, c := range d.Containers {
		w, ok := want[c.Name]
		if !ok || c.Swarm == nil || !reflect.DeepEqual(*c.Swarm, w) {
			t.Errorf("%s: Swarm %+v, want %+v", c.Name, c.Swarm, w)
		}
		if !strings.Contains(c.Labels[state.LabelSpecParts], partSwarm+"=") {
			t.Errorf("%s: the swarm part is not hashed: %s", c.Name, c.Labels[state.LabelSpecParts])
		}
	}
	// Only a read-only volume: start-first.
	if got := updateOrder([]state.Mount{{Type: "volume", Source: "x", Target: "/x", ReadOnly: true}, {Type: state.MountSecret}}); got != UpdateStartFirst {
		t.Errorf("read-only mounts: %s", got)
	}

	// A placement change is a change of the swarm part only.
	r := swarmRepo()
	r.Tenants[0].Placement.NodeLabels["zone"] = "eu-2"
	d2 := mustCompile(t, r, testOptions())
	web1, web2 := findContainer(d, "fixture--acme--web--1"), findContainer(d2, "fixture--acme--web--1")
	if ch := ChangedParts(web1.Labels[state.LabelSpecParts], web2.Labels[state.LabelSpecParts]); !slices.Equal(ch, []string{"swarm"}) {
		t.Errorf("placement change: changed parts %v, want [swarm]", ch)
	}

	// One host: no Swarm part, and placement is ignored (policy refuses it).
	r = smallRepo()
	r.Tenants[0].Placement = &config.Placement{NodeLabels: map[string]string{"zone": "eu-1"}}
	single := mustCompile(t, r, testOptions())
	if !bytes.Equal(marshal(t, single), marshal(t, mustCompile(t, smallRepo(), testOptions()))) {
		t.Error("placement changed a single-host Desired")
	}
	for _, c := range single.Containers {
		if c.Swarm != nil || strings.Contains(c.Labels[state.LabelSpecParts], partSwarm) {
			t.Errorf("%s: a Swarm part on one host", c.Name)
		}
	}
	if single.Engine != "" || single.Secrets != nil {
		t.Errorf("single host: Engine %q Secrets %v", single.Engine, single.Secrets)
	}
}

func TestSwarmSecrets(t *testing.T) {
	r := swarmRepo()
	for _, a := range r.Apps {
		if a.Name == "web" {
			a.Secrets = []string{"db-password"} // shared with api: one version object
		}
	}
	opts := testOptions()
	d := mustCompile(t, r, opts)
	dbDigest := opts.SecretDigests["acme/db-password"]
	tokDigest := opts.SecretDigests["acme/api-token"]
	db := "fixture--acme--db-password--" + strings.TrimPrefix(dbDigest, "hmac-sha256:")[:12]
	tok := "fixture--acme--api-token--" + strings.TrimPrefix(tokDigest, "hmac-sha256:")[:12]
	labels := func(secret string) map[string]string {
		return map[string]string{state.LabelManagedBy: "moat", state.LabelInstance: "fixture", state.LabelTenant: "acme",
			state.LabelKind: state.KindSecret, state.LabelSecret: secret}
	}
	want := []state.SecretSpec{
		{Name: tok, Source: "/var/lib/moat/secrets/acme/api-token", Digest: tokDigest, Labels: labels("api-token")},
		{Name: db, Source: "/var/lib/moat/secrets/acme/db-password", Digest: dbDigest, Labels: labels("db-password")},
	}
	if !reflect.DeepEqual(d.Secrets, want) {
		t.Errorf("Secrets\n got %+v\nwant %+v", d.Secrets, want)
	}
	api := findContainer(d, "fixture--acme--api--1")
	wantMounts := []state.Mount{
		{Type: "volume", Source: "fixture--acme--cache", Target: "/cache"},
		{Type: "volume", Source: "fixture--shared--masterdata", Target: "/master", ReadOnly: true},
		{Type: state.MountSecret, Source: tok, Target: "/run/secrets/api-token", ReadOnly: true},
		{Type: state.MountSecret, Source: db, Target: "/run/secrets/db-password", ReadOnly: true},
	}
	if !reflect.DeepEqual(api.Mounts, wantMounts) {
		t.Errorf("api mounts\n got %+v\nwant %+v", api.Mounts, wantMounts)
	}
	for _, c := range d.Containers {
		for _, m := range c.Mounts {
			if m.Type == "bind" {
				t.Errorf("%s: a bind mount on Swarm: %+v", c.Name, m)
			}
		}
	}
	out := string(marshal(t, d))
	for _, v := range secretValues {
		if strings.Contains(out, v) {
			t.Fatalf("a secret value is in the Swarm output")
		}
	}

	// Rotation: a new version name, and only the secrets part of the
	// services that mount it changes (the mount's source is not hashed).
	rot := testOptions()
	rot.SecretDigests["acme/db-password"] = digest("rotated")
	d2 := mustCompile(t, r, rot)
	if d2.Secrets[1].Name == db || d2.Secrets[0].Name != tok {
		t.Errorf("rotation: secrets %+v", d2.Secrets)
	}
	for i, c := range d2.Containers {
		ch := ChangedParts(d.Containers[i].Labels[state.LabelSpecParts], c.Labels[state.LabelSpecParts])
		mounts := c.Name == "fixture--acme--api--1" || strings.HasPrefix(c.Name, "fixture--acme--web--")
		if mounts && !slices.Equal(ch, []string{"secrets"}) || !mounts && len(ch) != 0 {
			t.Errorf("rotation: %s changed parts %v", c.Name, ch)
		}
	}

	// A pull-request check without the store: the same hashes but for the
	// secrets part, and a secret list it does not act on.
	pr := mustCompile(t, r, Options{UnknownSecrets: true})
	for i, c := range pr.Containers {
		ch := ChangedParts(d.Containers[i].Labels[state.LabelSpecParts], c.Labels[state.LabelSpecParts])
		if len(ch) > 1 || len(ch) == 1 && ch[0] != "secrets" {
			t.Errorf("unknown secrets: %s changed parts %v", c.Name, ch)
		}
	}
	// The store's location is not hashed either.
	moved := testOptions()
	moved.SecretsDir = "/elsewhere"
	for i, c := range mustCompile(t, r, moved).Containers {
		if c.Labels[state.LabelSpecHash] != d.Containers[i].Labels[state.LabelSpecHash] {
			t.Errorf("%s: hash depends on the store's location", c.Name)
		}
	}
}

func TestSwarmErrors(t *testing.T) {
	r := swarmRepo()
	r.Platform.Network.Driver = DriverBridge
	if _, err := Compile(r, testOptions()); err == nil || !strings.Contains(err.Error(), "engine swarm needs driver overlay") {
		t.Errorf("swarm on bridge: %v", err)
	}
	r = smallRepo()
	r.Platform.Network.Driver = DriverOverlay
	if _, err := Compile(r, testOptions()); err == nil || !strings.Contains(err.Error(), "driver overlay needs engine swarm") {
		t.Errorf("overlay on one host: %v", err)
	}
	r = swarmRepo()
	r.Platform.Engine = "kubernetes"
	if _, err := Compile(r, testOptions()); err == nil || !strings.Contains(err.Error(), "unknown engine") {
		t.Errorf("unknown engine: %v", err)
	}
	r = swarmRepo()
	r.Platform.Meta.Name = "a-platform-name-of-30-letters0"
	r.Apps[0].Name = "an-app-name-of-thirty-letters0"
	if _, err := Compile(r, testOptions()); err == nil || !strings.Contains(err.Error(), "longer than 63") {
		t.Errorf("long names: %v", err)
	}
}
