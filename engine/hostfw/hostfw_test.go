package hostfw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// requireFirewall skips without root and iptables, unless the run demands
// the real engine (MOAT_REQUIRE_DOCKER=1, as CI does): then it fails.
func requireFirewall(t *testing.T) {
	t.Helper()
	err := New().Check(context.Background())
	if err == nil {
		return
	}
	if os.Getenv("MOAT_REQUIRE_DOCKER") == "1" {
		t.Fatalf("host firewall required (MOAT_REQUIRE_DOCKER=1): %v", err)
	}
	t.Skipf("no host firewall: %v", err)
}

func testInstance(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "moattest-" + hex.EncodeToString(b)
}

// baseline is the part of the filter table moat may ever touch (INPUT and
// DOCKER-USER) without the jumps of other moat instances (other tests run
// at the same time), plus every line naming this instance's chains.
func baseline(t *testing.T, instance string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatal(err)
	}
	c := firewall.ChainsOf(instance)
	var keep []string
	for l := range strings.Lines(string(out)) {
		l = strings.TrimSpace(l)
		mine := strings.Contains(l, c.Input) || strings.Contains(l, c.User)
		builtin := strings.HasPrefix(l, "-A INPUT ") || strings.HasPrefix(l, "-A DOCKER-USER ")
		if mine || (builtin && !strings.Contains(l, "-j MOAT-")) {
			keep = append(keep, l)
		}
	}
	return keep
}

func hostRules(instance, network, subnet string) state.HostRulesSpec {
	s := state.HostRulesSpec{Network: network, Tenant: "acme", Bridge: firewall.BridgeName(network), Subnet: subnet}
	s.Hash = firewall.Hash(instance, s)
	return s
}

// TestEnsureRestoreRemove applies two LANs' rules, deletes one by hand
// (drift), restores it, removes everything, and proves that the firewall
// is back to exactly what it was: nothing added stays, nothing else moved.
func TestEnsureRestoreRemove(t *testing.T) {
	requireFirewall(t)
	inst := testInstance(t)
	fw := New()
	ctx := context.Background()
	before := baseline(t, inst)
	a := hostRules(inst, inst+".acme.lan", "10.250.1.0/24")
	b := hostRules(inst, inst+".globex.lan", "10.250.2.0/24")
	t.Cleanup(func() {
		fw.Remove(ctx, inst, a.Network)
		fw.Remove(ctx, inst, b.Network)
		if after := baseline(t, inst); !slices.Equal(before, after) {
			t.Errorf("the firewall differs after the test:\nbefore %q\nafter  %q", before, after)
		}
	})

	for range 2 { // twice: idempotent
		if err := fw.Ensure(ctx, inst, a); err != nil {
			t.Fatal(err)
		}
		if err := fw.Ensure(ctx, inst, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := fw.Observe(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Jumps || len(got.Rules) != 2 || got.Rules[a.Network].Count != 3 || !slices.Equal(got.Rules[b.Network].Hashes, []string{b.Hash}) {
		t.Fatalf("observed %+v", got)
	}

	// Drift: delete one of a's rules by hand.
	rule := firewall.Rules(inst, a)[1]
	if out, err := exec.Command("iptables", append([]string{"-w", "5", "-D", rule.Chain}, splitRule(rule.Spec)...)...).CombinedOutput(); err != nil {
		t.Fatalf("delete by hand: %v: %s", err, out)
	}
	got, _ = fw.Observe(ctx, inst)
	if got.Rules[a.Network].Count != 2 {
		t.Fatalf("hand deletion not seen: %+v", got.Rules)
	}
	if err := fw.Ensure(ctx, inst, a); err != nil {
		t.Fatal(err)
	}
	got, _ = fw.Observe(ctx, inst)
	if got.Rules[a.Network].Count != 3 || got.Rules[b.Network].Count != 3 {
		t.Fatalf("not restored: %+v", got.Rules)
	}

	// Removing a keeps b and the jumps; removing b removes everything.
	if err := fw.Remove(ctx, inst, a.Network); err != nil {
		t.Fatal(err)
	}
	got, _ = fw.Observe(ctx, inst)
	if _, ok := got.Rules[a.Network]; ok || got.Rules[b.Network].Count != 3 || !got.Jumps {
		t.Fatalf("after removing a: %+v", got)
	}
	if err := fw.Remove(ctx, inst, b.Network); err != nil {
		t.Fatal(err)
	}
	if err := fw.Remove(ctx, inst, b.Network); err != nil { // idempotent
		t.Fatal(err)
	}
	got, _ = fw.Observe(ctx, inst)
	if len(got.Rules) != 0 || got.Jumps {
		t.Fatalf("after removing all: %+v", got)
	}
}

// splitRule splits a rule spec into arguments, keeping a quoted comment
// together.
func splitRule(spec string) []string {
	var out []string
	for len(spec) > 0 {
		spec = strings.TrimLeft(spec, " ")
		if strings.HasPrefix(spec, `"`) {
			end := strings.Index(spec[1:], `"`) + 1
			out = append(out, spec[1:end])
			spec = spec[end+1:]
			continue
		}
		i := strings.IndexByte(spec, ' ')
		if i < 0 {
			out = append(out, spec)
			break
		}
		out = append(out, spec[:i])
		spec = spec[i:]
	}
	return out
}
