package compile

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
)

func findContainer(d *state.Desired, name string) *state.ContainerSpec {
	for i := range d.Containers {
		if d.Containers[i].Name == name {
			return &d.Containers[i]
		}
	}
	return nil
}

func findNetwork(d *state.Desired, name string) *state.NetworkSpec {
	for i := range d.Networks {
		if d.Networks[i].Name == name {
			return &d.Networks[i]
		}
	}
	return nil
}

// TestGateways: the shared service is on no tenant LAN, only on the link
// network of each gateway; acme (whose web uses logging) gets a gateway on
// both of web's LANs answering as "logging"; globex (granted, no app uses
// it) and initech (no grant) get none.
func TestGateways(t *testing.T) {
	d := mustCompile(t, smallRepo(), testOptions())
	svc := findContainer(d, "fixture.shared.logging")
	if svc == nil {
		t.Fatal("no container for the shared service")
	}
	if want := []state.Endpoint{{Network: "fixture.acme.logging.link"}}; !reflect.DeepEqual(svc.Networks, want) {
		t.Errorf("service Networks = %+v\nwant %+v", svc.Networks, want)
	}
	gw := findContainer(d, "fixture.acme.logging.gateway")
	if gw == nil {
		t.Fatal("no gateway for acme/logging")
	}
	wantNets := []state.Endpoint{
		{Network: "fixture.acme.backend", Aliases: []string{"logging"}},
		{Network: "fixture.acme.frontend", Aliases: []string{"logging"}},
		{Network: "fixture.acme.logging.link"},
	}
	if !reflect.DeepEqual(gw.Networks, wantNets) {
		t.Errorf("gateway Networks = %+v\nwant %+v", gw.Networks, wantNets)
	}
	for _, arg := range []string{"gateway", "--tenant=acme", "--service=logging", "--mode=write-only", "--protocol=http",
		"--listen=:8080", "--upstream=fixture.shared.logging:8080", "--max-body=65536", "--rps=100", "--burst=200", "--max-conns=64"} {
		if !slices.Contains(gw.Cmd, arg) {
			t.Errorf("gateway Cmd %v lacks %s", gw.Cmd, arg)
		}
	}
	if gw.Image != config.DefaultGatewayImage || gw.Labels[state.LabelKind] != state.KindGateway ||
		gw.Labels[state.LabelTenant] != "acme" || gw.Labels[state.LabelApp] != "logging" || gw.Labels[state.LabelSpecHash] == "" {
		t.Errorf("gateway image %q labels %v", gw.Image, gw.Labels)
	}
	if !gw.ReadOnlyRootfs || !slices.Equal(gw.CapDrop, []string{"ALL"}) || gw.Memory != 32<<20 || gw.PidsLimit != 64 || gw.Sysctls["net.ipv4.ip_forward"] != "0" {
		t.Errorf("gateway not hardened: %+v", gw)
	}
	link := findNetwork(d, "fixture.acme.logging.link")
	if link == nil {
		t.Fatal("no link network")
	}
	sub := netip.MustParsePrefix(link.Subnet)
	if !link.Internal || sub.Bits() != 29 || !netip.MustParsePrefix("10.95.0.0/16").Contains(sub.Addr()) ||
		link.Labels[state.LabelKind] != state.KindLink || link.Gateway != sub.Addr().Next().String() {
		t.Errorf("link network %+v: want internal, a /29 of the default link pool 10.95.0.0/16", link)
	}
	for _, c := range d.Containers {
		if strings.Contains(c.Name, "globex.logging") || strings.Contains(c.Name, "initech.logging") {
			t.Errorf("unexpected %s: no app of that tenant uses logging", c.Name)
		}
	}
}

// TestGatewayLimitsAndPool: a tenant's limits override the platform's
// field by field; an explicit link pool is used.
func TestGatewayLimitsAndPool(t *testing.T) {
	r := smallRepo()
	r.Platform.Gateways = config.Gateways{LinkPool: "10.200.0.0/24", Limits: config.GatewayLimits{MaxBody: "1KiB", RPS: 7, Burst: 9, Connections: 3}}
	r.Tenants[0].GatewayLimits = config.GatewayLimits{RPS: 2.5, Connections: 1}
	d := mustCompile(t, r, testOptions())
	gw := findContainer(d, "fixture.acme.logging.gateway")
	for _, arg := range []string{"--max-body=1024", "--rps=2.5", "--burst=9", "--max-conns=1"} {
		if !slices.Contains(gw.Cmd, arg) {
			t.Errorf("gateway Cmd %v lacks %s", gw.Cmd, arg)
		}
	}
	if sub := netip.MustParsePrefix(findNetwork(d, "fixture.acme.logging.link").Subnet); !netip.MustParsePrefix("10.200.0.0/24").Contains(sub.Addr()) {
		t.Errorf("link subnet %s outside the pool", sub)
	}
}

// TestEgress: only a service that asks for egress gets a network with a
// route out.
func TestEgress(t *testing.T) {
	r := smallRepo()
	r.Services[0].Egress = true
	d := mustCompile(t, r, testOptions())
	eg := findNetwork(d, "fixture.shared.logging.egress")
	if eg == nil || eg.Internal || eg.Labels[state.LabelKind] != state.KindEgress {
		t.Fatalf("egress network %+v", eg)
	}
	svc := findContainer(d, "fixture.shared.logging")
	if want := []state.Endpoint{{Network: "fixture.acme.logging.link"}, {Network: "fixture.shared.logging.egress"}}; !reflect.DeepEqual(svc.Networks, want) {
		t.Errorf("service Networks = %+v", svc.Networks)
	}
	if findNetwork(mustCompile(t, smallRepo(), testOptions()), "fixture.shared.logging.egress") != nil {
		t.Error("egress network without egress: true")
	}
}

func TestGatewayErrors(t *testing.T) {
	cases := map[string]struct {
		edit func(*config.Repo)
		want string
	}{
		"pool overlaps a tenant block": {func(r *config.Repo) { r.Platform.Gateways.LinkPool = "10.80.4.0/24" }, "block 10.80.4.0/22 overlaps the gateways' link pool"},
		"pool too small":               {func(r *config.Repo) { r.Platform.Gateways.LinkPool = "10.200.0.0/30" }, "smaller than one /29"},
		"pool host bits":               {func(r *config.Repo) { r.Platform.Gateways.LinkPool = "10.200.0.1/24" }, "host bits"},
		"pool full": {func(r *config.Repo) {
			r.Platform.Gateways.LinkPool = "10.200.0.0/29"
			r.Services[0].Egress = true
		}, "holds 1 /29 networks, 2 are needed"},
		"udp service": {func(r *config.Repo) { r.Services[0].Protocol = "udp" }, "gateways carry http and tcp only"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := smallRepo()
			c.edit(r)
			_, err := Compile(r, testOptions())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestGatewayMode(t *testing.T) {
	m := func(modes ...string) map[string]bool {
		out := map[string]bool{}
		for _, x := range modes {
			out[x] = true
		}
		return out
	}
	for _, c := range []struct {
		in   map[string]bool
		want string
	}{
		{m(config.ReadOnly), config.ReadOnly},
		{m(config.WriteOnly), config.WriteOnly},
		{m(config.ReadOnly, config.WriteOnly), config.ReadWrite},
		{m(config.ReadWrite), config.ReadWrite},
	} {
		if got := gatewayMode(c.in); got != c.want {
			t.Errorf("gatewayMode(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestLinkSlotsStable: adding a grant does not renumber the others (which
// would recreate their networks), barring a hash collision.
func TestLinkSlotsStable(t *testing.T) {
	pool := netip.MustParsePrefix("10.95.0.0/16")
	a, err := allocLinks(pool, linkBits, []string{"link/acme/logging", "link/globex/logging"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocLinks(pool, linkBits, []string{"link/acme/logging", "link/globex/logging", "link/initech/logging", "egress/x"})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s moved from %s to %s", k, v, b[k])
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, v := range b {
		if seen[v] || !pool.Contains(v.Addr()) || v.Bits() != 29 {
			t.Errorf("bad or duplicate slot %s", v)
		}
		seen[v] = true
	}
	// A full pool still gives every key its own slot.
	small := netip.MustParsePrefix("10.0.0.0/27")
	full, err := allocLinks(small, linkBits, []string{"a", "b", "c", "d"})
	if err != nil || len(full) != 4 {
		t.Fatalf("%v %v", full, err)
	}
	got := map[netip.Prefix]bool{}
	for _, v := range full {
		got[v] = true
	}
	if len(got) != 4 {
		t.Errorf("slots collide: %v", full)
	}
}
