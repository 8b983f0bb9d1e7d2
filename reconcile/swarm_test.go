package reconcile

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// swarmFixture loads a Swarm case of test/fixtures/plans (see gen.py).
func swarmFixture(t *testing.T, name string) fixture {
	t.Helper()
	return loadFixture(t, filepath.Join(fixtures, name))
}

// TestSwarmUpdateCarriesFullSpec: on Swarm a spec change is one update per
// service with the whole desired spec (networks included) and the live id,
// and no connect or disconnect of its own; the plan records the engine.
func TestSwarmUpdateCarriesFullSpec(t *testing.T) {
	f := swarmFixture(t, "swarm-env-change")
	p, err := Compute(f.desired, f.observed, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.Engine != state.EngineSwarm {
		t.Errorf("plan engine %q, want %q", p.Engine, state.EngineSwarm)
	}
	want := map[string]*state.ContainerSpec{}
	for i := range f.desired.Containers {
		want[f.desired.Containers[i].Name] = &f.desired.Containers[i]
	}
	updates := 0
	for _, op := range p.Operations {
		if op.Verb != VerbUpdate {
			t.Errorf("unexpected %s (%s)", op.ID, op.Cause)
			continue
		}
		updates++
		if op.Action != Update || op.LiveID != "id-"+op.Resource.Name || op.Cause != "spec changed: env" || op.StopTimeout != 0 {
			t.Errorf("%s: action %s, live id %q, cause %q, stop timeout %d", op.ID, op.Action, op.LiveID, op.Cause, op.StopTimeout)
		}
		if op.ContainerSpec == nil || len(op.ContainerSpec.Networks) != 2 ||
			!slices.Equal(op.ContainerSpec.Env, want[op.Resource.Name].Env) || op.ContainerSpec.Swarm == nil {
			t.Errorf("%s: spec %+v is not the full desired spec", op.ID, op.ContainerSpec)
		}
	}
	if updates != 2 {
		t.Errorf("%d updates, want 2 (the web replicas)", updates)
	}
}

// TestSingleHostUnchanged: the same spec change on one host is still a
// recreate, the plan has no engine, and the overlay flags are not compared
// there (the single-host list does not report them).
func TestSingleHostUnchanged(t *testing.T) {
	f := swarmFixture(t, "swarm-env-change")
	f.desired.Engine = ""
	for i := range f.observed.Networks {
		f.observed.Networks[i].Attachable = true
	}
	p, err := Compute(f.desired, f.observed, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.Engine != "" {
		t.Errorf("plan engine %q, want none", p.Engine)
	}
	for _, op := range p.Operations {
		if op.Verb != VerbRecreate {
			t.Errorf("single host: unexpected %s (%s)", op.ID, op.Cause)
		}
	}
	f.desired.Engine = state.EngineDocker
	if p, _ := Compute(f.desired, f.observed, f.opts); p.Engine != "" {
		t.Errorf("engine docker: plan engine %q, want none (docker plans stay as they were)", p.Engine)
	}
}

// TestSwarmSecretOps: a secret mounted by nobody that moat does not manage
// is left alone; a desired secret missing on a plan without the store
// plans nothing; an unknown secret mount is an error.
func TestSwarmSecretOps(t *testing.T) {
	f := swarmFixture(t, "swarm-noop")
	f.observed.Secrets = append(f.observed.Secrets, state.Secret{ID: "x", Name: "someone-elses"},
		state.Secret{ID: "y", Name: "prod--acme--old--000000000000", Labels: map[string]string{
			state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "staging"}})
	p, err := Compute(f.desired, f.observed, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Errorf("secrets not ours are touched:\n%s", p)
	}

	f = swarmFixture(t, "swarm-noop")
	f.observed.Secrets = nil
	p, err = Compute(f.desired, f.observed, Options{UnknownSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Errorf("secret ops without the store:\n%s", p)
	}

	f = swarmFixture(t, "swarm-noop")
	f.desired.Secrets = nil
	if _, err := Compute(f.desired, f.observed, f.opts); err == nil || !strings.Contains(err.Error(), "mounts secret") {
		t.Errorf("a mount of an undeclared secret: %v", err)
	}
	f = swarmFixture(t, "swarm-noop")
	f.desired.Secrets = append(f.desired.Secrets, f.desired.Secrets[0])
	if _, err := Compute(f.desired, f.observed, f.opts); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("a secret declared twice: %v", err)
	}
}

// TestCompareSavedSwarm: a saved Swarm plan whose secret source, update
// spec or engine was edited is refused, naming the field.
func TestCompareSavedSwarm(t *testing.T) {
	f := swarmFixture(t, "swarm-secret-rotation")
	fresh := func() *Plan {
		p, err := Compute(f.desired, f.observed, f.opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if d := CompareSaved(fresh(), fresh()); len(d) != 0 {
		t.Fatalf("identical plans differ: %v", d)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*Plan)
	}{
		{"secret source", "secretSpec.source", func(p *Plan) {
			for i := range p.Operations {
				if s := p.Operations[i].SecretSpec; s != nil {
					s.Source = "/etc/shadow"
				}
			}
		}},
		{"update spec", "containerSpec.user", func(p *Plan) {
			for i := range p.Operations {
				if op := &p.Operations[i]; op.Verb == VerbUpdate {
					op.ContainerSpec.User = "0:0"
				}
			}
		}},
		{"update placement", "containerSpec.swarm.placement", func(p *Plan) {
			for i := range p.Operations {
				if op := &p.Operations[i]; op.Verb == VerbUpdate {
					op.ContainerSpec.Swarm = &state.SwarmSpec{UpdateOrder: "start-first"}
				}
			}
		}},
		{"engine", "plan engine", func(p *Plan) { p.Engine = "" }},
		{"dropped secret removal", "remove-secret:secret/prod--acme--db-password--0a1b2c3d4e5f: computed, missing", func(p *Plan) {
			p.Operations = slices.DeleteFunc(p.Operations, func(op Operation) bool { return op.Verb == VerbRemoveSecret })
		}},
	} {
		saved := fresh()
		tc.edit(saved)
		d := CompareSaved(saved, fresh())
		if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), tc.want) {
			t.Errorf("%s: differences %q, want one naming %q", tc.name, d, tc.want)
		}
	}
}

// swarmHostRules is a Swarm world with host protection: the desired rule
// set of the node's docker_gwbridge, a readable firewall that holds none
// of it yet, and the node's bridge as the operator made it (moat-gwbridge,
// ICC off).
func swarmHostRules(t *testing.T, name string) fixture {
	t.Helper()
	f := swarmFixture(t, name)
	spec := state.HostRulesSpec{Network: state.GatewayBridgeNetwork, Bridge: state.GatewayBridgeInterface}
	spec.Hash = firewall.Hash(f.desired.Instance, spec)
	f.desired.HostRules = []state.HostRulesSpec{spec}
	f.observed.HostFirewall = &state.HostFirewall{Jumps: true, Rules: map[string]state.HostRuleSet{}}
	f.observed.GatewayBridge = &state.Network{ID: "gw", Name: state.GatewayBridgeNetwork, Driver: "bridge",
		Subnet: "172.18.0.0/16", Bridge: state.GatewayBridgeInterface, ICC: "false"}
	return f
}

// TestSwarmGatewayBridgeRules: the rules of docker_gwbridge, a network moat
// does not manage, are planned like a LAN's (+ when missing, nothing when
// in place, - when protection is off), and every service operation waits
// for them: Swarm attaches each task with a route out to that bridge.
func TestSwarmGatewayBridgeRules(t *testing.T) {
	f := swarmHostRules(t, "swarm-create-all")
	p, err := Compute(f.desired, f.observed, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ensure := OpID(VerbEnsureRules, ResourceID{KindHostRules, state.GatewayBridgeNetwork}, "")
	i := slices.IndexFunc(p.Operations, func(op Operation) bool { return op.ID == ensure })
	if i < 0 {
		t.Fatalf("no %s in\n%s", ensure, p)
	}
	if op := p.Operations[i]; op.Action != Create || op.Cause != causeMissing || op.Tenant != "" || op.HostRulesSpec == nil ||
		op.HostRulesSpec.Bridge != state.GatewayBridgeInterface {
		t.Errorf("ensure op %+v", op)
	}
	services := 0
	for _, op := range p.Operations {
		if op.Resource.Kind != KindContainer {
			continue
		}
		services++
		if !slices.Contains(op.DependsOn, ensure) {
			t.Errorf("%s does not wait for the gateway bridge's rules (depends on %v)", op.ID, op.DependsOn)
		}
	}
	if services == 0 {
		t.Fatal("no service operations in the create-all plan")
	}

	// An update waits too (a new task is started on the bridge).
	f = swarmHostRules(t, "swarm-env-change")
	if p, err = Compute(f.desired, f.observed, f.opts); err != nil {
		t.Fatal(err)
	}
	for _, op := range p.Operations {
		if op.Verb == VerbUpdate && !slices.Contains(op.DependsOn, ensure) {
			t.Errorf("%s does not wait for the gateway bridge's rules", op.ID)
		}
	}

	// In place: nothing to do.
	f = swarmHostRules(t, "swarm-noop")
	f.observed.HostFirewall.Rules[state.GatewayBridgeNetwork] = state.HostRuleSet{
		Count: len(firewall.Rules(f.desired.Instance, f.desired.HostRules[0])), Hashes: []string{f.desired.HostRules[0].Hash}}
	if p, err = Compute(f.desired, f.observed, f.opts); err != nil || !p.Empty() {
		t.Errorf("rules in place: err %v, plan\n%s", err, p)
	}

	// Host protection turned off: the rules go, with no dependency on a
	// network removal (the bridge is not moat's), and the bridge's name
	// no longer matters.
	f.desired.HostRules = nil
	f.observed.GatewayBridge.Bridge = "docker_gwbridge"
	if p, err = Compute(f.desired, f.observed, f.opts); err != nil {
		t.Fatal(err)
	}
	if len(p.Operations) != 1 || p.Operations[0].Verb != VerbRemoveRules || p.Operations[0].Resource.Name != state.GatewayBridgeNetwork ||
		p.Operations[0].Cause != causeGone || len(p.Operations[0].DependsOn) != 0 {
		t.Errorf("protection off: plan\n%s", p)
	}
}

// TestSwarmGatewayBridgeRefused: a node whose docker_gwbridge the rules
// would not match (Docker's default name, no bridge at all, ICC on) is
// refused with the fix, before any operation; a snapshot without the
// firewall cannot plan host rules and is not refused.
func TestSwarmGatewayBridgeRefused(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(*state.Observed)
	}{
		{"default name", "host interface is docker_gwbridge, not moat-gwbridge", func(o *state.Observed) { o.GatewayBridge.Bridge = "docker_gwbridge" }},
		{"no name option", "host interface is docker_gwbridge, not moat-gwbridge", func(o *state.Observed) { o.GatewayBridge.Bridge = "" }},
		{"no bridge", "has no docker_gwbridge network", func(o *state.Observed) { o.GatewayBridge = nil }},
		{"icc on", "enable_icc=\"true\"", func(o *state.Observed) { o.GatewayBridge.ICC = "true" }},
		{"firewall unreadable", "not moat-gwbridge", func(o *state.Observed) {
			o.GatewayBridge.Bridge = "docker_gwbridge"
			o.HostFirewall = &state.HostFirewall{Error: "not root"}
		}},
	} {
		f := swarmHostRules(t, "swarm-create-all")
		tc.edit(f.observed)
		_, err := Compute(f.desired, f.observed, f.opts)
		if err == nil {
			t.Errorf("%s: not refused", tc.name)
			continue
		}
		for _, s := range []string{tc.want, "com.docker.network.bridge.name=moat-gwbridge", "enable_icc=false",
			"before `docker swarm init`", "network.hostProtection: false", "docs/SWARM.md", "Nothing was changed"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, s)
			}
		}
	}
	f := swarmHostRules(t, "swarm-create-all")
	f.observed.GatewayBridge, f.observed.HostFirewall = nil, nil
	if _, err := Compute(f.desired, f.observed, f.opts); err != nil {
		t.Errorf("a snapshot without the firewall: %v", err)
	}
}

// TestUnenforceableAuditChecksAreNotUpdated: an inspected service whose
// only findings are checks the engine cannot enforce (Swarm: swap,
// no-new-privileges before API 1.44) gets no update, which would change
// nothing and be planned again on every apply; any other finding still
// does.
func TestUnenforceableAuditChecksAreNotUpdated(t *testing.T) {
	f := swarmFixture(t, "swarm-noop")
	inspectAll := func(mutate func(*state.Inspect)) {
		for i := range f.observed.Containers {
			have := &f.observed.Containers[i]
			for j := range f.desired.Containers {
				want := &f.desired.Containers[j]
				if want.Name != have.Name {
					continue
				}
				in := &state.Inspect{CapDrop: want.CapDrop, CapAdd: want.CapAdd, ReadOnlyRootfs: want.ReadOnlyRootfs,
					User: want.User, Memory: want.Memory, MemorySwap: 2 * want.Memory, NanoCPUs: want.NanoCPUs,
					PidsLimit: want.PidsLimit, Restart: want.Restart, Sysctls: want.Sysctls, Mounts: want.Mounts}
				mutate(in)
				have.Inspect = in
			}
		}
	}
	inspectAll(func(*state.Inspect) {})
	f.observed.Unenforceable = map[string]string{"memory": "no swap limit on services", "no-new-privileges": "API 1.41"}
	p, err := Compute(f.desired, f.observed, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatalf("unenforceable findings planned:\n%s", p)
	}
	inspectAll(func(in *state.Inspect) { in.CapAdd = []string{"NET_ADMIN"} })
	if p, err = Compute(f.desired, f.observed, f.opts); err != nil {
		t.Fatal(err)
	}
	if p.Empty() || !strings.Contains(p.String(), "audit failed: capabilities") || strings.Contains(p.String(), "memory") {
		t.Fatalf("an enforceable finding must still update, alone in its cause:\n%s", p)
	}
	f.observed.Unenforceable = nil
	inspectAll(func(*state.Inspect) {})
	if p, err = Compute(f.desired, f.observed, f.opts); err != nil {
		t.Fatal(err)
	}
	if p.Empty() {
		t.Fatal("without the engine's word, swap is a finding to act on")
	}
}
