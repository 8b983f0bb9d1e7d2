package firewall

import (
	"strings"
	"testing"

	"github.com/moat-platform/moat/state"
)

func spec(instance, network, subnet string) state.HostRulesSpec {
	s := state.HostRulesSpec{Network: network, Tenant: "acme", Bridge: BridgeName(network), Subnet: subnet}
	s.Hash = Hash(instance, s)
	return s
}

func TestNamesFitTheKernelLimits(t *testing.T) {
	if b := BridgeName("a-very-long-instance.a-very-long-tenant.a-very-long-lan"); len(b) > 15 || !strings.HasPrefix(b, BridgePrefix) {
		t.Errorf("bridge name %q: want <= 15 chars starting with %q", b, BridgePrefix)
	}
	c := ChainsOf("a-very-long-platform-name-of-thirty")
	if len(c.Input) > 28 || len(c.User) > 28 || c.Input == c.User {
		t.Errorf("chains %+v: want distinct names of at most 28 chars", c)
	}
	if ChainsOf("a") == ChainsOf("b") {
		t.Error("two instances share chains")
	}
}

// TestParseRoundTrip: what Restore writes, Parse reads back as complete
// rule sets; rules of other chains (Docker's, anyone's) are never seen.
func TestParseRoundTrip(t *testing.T) {
	a, b := spec("demo", "demo.acme.lan", "10.80.1.0/24"), spec("demo", "demo.globex.lan", "10.80.2.0/24")
	in := Restore("demo", Saved{}, map[string][]Rule{a.Network: Rules("demo", a), b.Network: Rules("demo", b)}, func(string) bool { return true })
	// Simulate iptables-save: the restore lines as saved, plus others'.
	var save strings.Builder
	save.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n")
	c := ChainsOf("demo")
	save.WriteString(":" + c.Input + " - [0:0]\n:" + c.User + " - [0:0]\n")
	save.WriteString("-A INPUT " + c.InputJump() + "\n-A INPUT -i lo -j ACCEPT\n-A DOCKER-USER " + c.UserJump() + "\n-A DOCKER-USER -j RETURN\n")
	for l := range strings.Lines(in) {
		if strings.HasPrefix(l, "-A MOAT") {
			save.WriteString(l)
		}
	}
	save.WriteString("COMMIT\n")
	got := Parse(save.String(), "demo")
	if !got.InputJump || !got.UserJump || !got.InputChain || !got.UserChain {
		t.Fatalf("jumps/chains not found: %+v", got)
	}
	fw := got.Observe()
	if !fw.Jumps || len(fw.Rules) != 2 || fw.Rules[a.Network].Count != 3 || fw.Rules[a.Network].Hashes[0] != a.Hash {
		t.Errorf("observed %+v", fw)
	}
	other := Parse(save.String(), "other")
	if other.InputJump || len(other.Lines) != 0 {
		t.Errorf("another instance sees demo's rules: %+v", other)
	}

	// Removing a: only b's rules are rewritten, the jumps stay.
	rm := Restore("demo", got, nil, func(n string) bool { return n != a.Network })
	if strings.Contains(rm, a.Network) || !strings.Contains(rm, b.Network) || strings.Contains(rm, "-I INPUT") {
		t.Errorf("restore removing %s:\n%s", a.Network, rm)
	}
	// Removing both: the jumps and the chains go, nothing else is named.
	all := Restore("demo", got, nil, func(string) bool { return false })
	for _, want := range []string{"-D INPUT " + c.InputJump(), "-D DOCKER-USER " + c.UserJump(), "-X " + c.Input, "-X " + c.User} {
		if !strings.Contains(all, want) {
			t.Errorf("restore removing all lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "-i lo") || strings.Contains(all, "-j RETURN\n") {
		t.Errorf("restore touches a rule that is not moat's:\n%s", all)
	}
}

func TestHashFollowsTheSpec(t *testing.T) {
	a := spec("demo", "demo.acme.lan", "10.80.1.0/24")
	b := spec("demo", "demo.acme.lan", "10.80.2.0/24")
	if a.Hash == b.Hash || a.Hash != spec("demo", "demo.acme.lan", "10.80.1.0/24").Hash {
		t.Errorf("hash %s vs %s", a.Hash, b.Hash)
	}
}

// TestGatewayBridgeRules: the Swarm node's docker_gwbridge, named
// moat-gwbridge by the operator, is matched by the jumps like a LAN
// bridge, cannot be the bridge of any LAN (BridgeName is hex), and its
// rules read back under the network name docker_gwbridge.
func TestGatewayBridgeRules(t *testing.T) {
	iface := state.GatewayBridgeInterface
	if len(iface) > 15 || !strings.HasPrefix(iface, BridgePrefix) {
		t.Fatalf("%q: want <= 15 chars starting with %q (the jumps match %s+)", iface, BridgePrefix, BridgePrefix)
	}
	if strings.Trim(strings.TrimPrefix(iface, BridgePrefix), "0123456789abcdef") == "" {
		t.Fatalf("%q could be the bridge of a LAN", iface)
	}
	gw := state.HostRulesSpec{Network: state.GatewayBridgeNetwork, Bridge: iface}
	gw.Hash = Hash("demo", gw)
	rules := Rules("demo", gw)
	for _, r := range rules {
		if !strings.Contains(r.Spec, "-i "+iface+" ") || !strings.Contains(r.Spec, `"moat docker_gwbridge `+gw.Hash+`"`) {
			t.Errorf("rule %+v", r)
		}
	}
	c := ChainsOf("demo")
	var save strings.Builder
	save.WriteString("*filter\n:" + c.Input + " - [0:0]\n:" + c.User + " - [0:0]\n")
	save.WriteString("-A INPUT " + c.InputJump() + "\n-A DOCKER-USER " + c.UserJump() + "\n")
	for _, r := range rules {
		save.WriteString("-A " + r.Chain + " " + r.Spec + "\n")
	}
	save.WriteString("COMMIT\n")
	fw := Parse(save.String(), "demo").Observe()
	if rs := fw.Rules[state.GatewayBridgeNetwork]; !fw.Jumps || rs.Count != 3 || len(rs.Hashes) != 1 || rs.Hashes[0] != gw.Hash {
		t.Errorf("observed %+v", fw)
	}
}
