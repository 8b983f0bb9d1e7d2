package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// swarmTarget is the Swarm plan fixture's desired state (three overlays,
// a secret mounted by db and both web replicas) with real hash labels,
// as compile makes them: a hand-made target until the Swarm compile
// produces one from config.
func swarmTarget(t *testing.T) *controller.Target {
	t.Helper()
	b, err := os.ReadFile("../test/fixtures/plans/swarm-create-all/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	var d state.Desired
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	restamp(&d)
	return &controller.Target{Repo: &config.Repo{}, Desired: &d, Revision: "r1"}
}

func restamp(d *state.Desired) {
	for i := range d.Containers {
		d.Containers[i] = compile.Stamped(d.Containers[i])
	}
}

// swarmRound observes the fake, plans tg and applies the plan; it
// returns the plan.
func swarmRound(t *testing.T, eng *fake.Engine, tg *controller.Target) *reconcile.Plan {
	t.Helper()
	ctx := context.Background()
	obs, err := eng.Observe(ctx, tg.Desired.Instance, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := controller.Plan(tg, obs, controller.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{}); err != nil {
		t.Fatalf("apply:\n%s\n%v", p, err)
	}
	return p
}

// opLines is the plan's operations as "verb name", sorted.
func opLines(p *reconcile.Plan) []string {
	var out []string
	for _, op := range p.Operations {
		out = append(out, string(op.Verb)+" "+op.Resource.Name)
	}
	slices.Sort(out)
	return out
}

// TestSwarmLifecycle: a Swarm desired state applies to the (Swarm mode)
// fake and the next plan is empty; an env change of one app is exactly
// one update per replica of it, in place (the service keeps its id); a
// secret rotation is one create-secret, updates of exactly the services
// that mount it and one remove-secret of the old version, after which
// only the new version exists.
func TestSwarmLifecycle(t *testing.T) {
	eng, tg := fake.NewSwarm(), swarmTarget(t)
	first := swarmRound(t, eng, tg)
	if first.Engine != state.EngineSwarm || first.Summary().Create != 9 {
		t.Fatalf("first plan (engine %q):\n%s", first.Engine, first)
	}
	if p := swarmRound(t, eng, tg); !p.Empty() {
		t.Fatalf("plan after apply is not empty:\n%s", p)
	}

	// One app's env: only its service changes.
	const api = "prod--globex--api--1"
	before, _ := eng.Container(api)
	for i := range tg.Desired.Containers {
		if c := &tg.Desired.Containers[i]; c.Name == api {
			c.Env = append(c.Env, "FEATURE_X=on")
		}
	}
	restamp(tg.Desired)
	eng.ResetCalls()
	p := swarmRound(t, eng, tg)
	if got := opLines(p); !slices.Equal(got, []string{"update-container " + api}) || p.Operations[0].Cause != "spec changed: env" {
		t.Fatalf("env change plan:\n%s", p)
	}
	after, _ := eng.Container(api)
	if after.ID != before.ID || !slices.Contains(after.Spec.Env, "FEATURE_X=on") || after.State != "running" {
		t.Errorf("service after update: id %s (was %s), env %v, state %s", after.ID, before.ID, after.Spec.Env, after.State)
	}
	if calls := eng.Calls(); calls["UpdateContainer"] != 1 || calls["CreateContainer"]+calls["RemoveContainer"] != 0 {
		t.Errorf("engine calls of the env change: %v", calls)
	}
	if p := swarmRound(t, eng, tg); !p.Empty() {
		t.Fatalf("plan after the update is not empty:\n%s", p)
	}

	// Rotation of acme's db-password.
	old := tg.Desired.Secrets[0]
	rotated := old
	rotated.Digest = "hmac-sha256:ffeeddccbbaa99887766554433221100"
	rotated.Name = strings.TrimSuffix(old.Name, old.Name[strings.LastIndex(old.Name, "--")+2:]) + "ffeeddccbbaa"
	tg.Desired.Secrets = []state.SecretSpec{rotated}
	var mounting []string
	for i := range tg.Desired.Containers {
		c := &tg.Desired.Containers[i]
		for j := range c.Mounts {
			if c.Mounts[j].Type == state.MountSecret && c.Mounts[j].Source == old.Name {
				c.Mounts[j].Source = rotated.Name
				c.SecretDigests["db-password"] = rotated.Digest
				mounting = append(mounting, "update-container "+c.Name)
			}
		}
	}
	restamp(tg.Desired)
	p = swarmRound(t, eng, tg)
	want := append([]string{"create-secret " + rotated.Name, "remove-secret " + old.Name}, mounting...)
	slices.Sort(want)
	if got := opLines(p); len(mounting) != 3 || !slices.Equal(got, want) {
		t.Fatalf("rotation plan: got %q, want %q:\n%s", got, want, p)
	}
	for _, op := range p.Operations {
		// Not "mounts": a secret mount's source (the version) is not
		// hashed, the secrets part covers it (decision 5).
		if op.Verb == reconcile.VerbUpdate && op.Cause != "spec changed: secrets" {
			t.Errorf("%s: cause %q", op.ID, op.Cause)
		}
	}
	if got := eng.Secrets(); !slices.Equal(got, []string{rotated.Name}) {
		t.Errorf("secrets after the rotation: %q", got)
	}
	if p := swarmRound(t, eng, tg); !p.Empty() {
		t.Fatalf("plan after the rotation is not empty:\n%s", p)
	}
}

// TestSwarmDriftReverted: an overlay made attachable by hand, a service
// with no running task and a service taken off its LAN are reverted, and
// the next plan is empty.
func TestSwarmDriftReverted(t *testing.T) {
	eng, tg := fake.NewSwarm(), swarmTarget(t)
	swarmRound(t, eng, tg)
	must(t, eng.SetNetworkFlags("prod--globex--lan", true, false))
	must(t, eng.SetState("prod--acme--db--1", "failed"))
	p := swarmRound(t, eng, tg)
	got := p.String()
	for _, want := range []string{"network/prod--globex--lan create  # attachable by hand", "container/prod--acme--db--1 start  # no running task (failed)"} {
		if !strings.Contains(got, want) {
			t.Errorf("drift plan lacks %q:\n%s", want, got)
		}
	}
	if p := swarmRound(t, eng, tg); !p.Empty() {
		t.Fatalf("plan after reverting is not empty:\n%s", p)
	}
}

// TestSwarmSnapshotPlan: a snapshot of a Swarm engine (state export) keeps
// the secrets and the overlay flags, so that plan --live FILE, with no
// engine, plans what the live engine would: here a rotation and an
// overlay made attachable.
func TestSwarmSnapshotPlan(t *testing.T) {
	eng, tg := fake.NewSwarm(), swarmTarget(t)
	swarmRound(t, eng, tg)
	must(t, eng.SetNetworkFlags("prod--acme--lan", true, true))
	tg.Desired.Secrets[0].Name = "prod--acme--db-password--ffeeddccbbaa"
	for i := range tg.Desired.Containers {
		for j, m := range tg.Desired.Containers[i].Mounts {
			if m.Type == state.MountSecret {
				tg.Desired.Containers[i].Mounts[j].Source = tg.Desired.Secrets[0].Name
			}
		}
	}
	restamp(tg.Desired)
	live, err := eng.Observe(context.Background(), "prod", true)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	must(t, state.WriteSnapshot(&file, &state.Snapshot{Instance: "prod", Observed: live}))
	snap, err := state.ReadSnapshot(&file)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Observed.Secrets) != 1 || state.Fingerprint(snap.Observed) != state.Fingerprint(live) {
		t.Fatalf("snapshot secrets %v, fingerprint %s vs live %s", snap.Observed.Secrets, state.Fingerprint(snap.Observed), state.Fingerprint(live))
	}
	fromLive, err := controller.Plan(tg, live, controller.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := controller.Plan(tg, snap.Observed, controller.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.String() != fromLive.String() || !strings.Contains(fromFile.String(), "attachable by hand") ||
		!strings.Contains(fromFile.String(), "secret/prod--acme--db-password--0a1b2c3d4e5f remove") {
		t.Errorf("plan from the snapshot:\n%s\nfrom the live engine:\n%s", fromFile, fromLive)
	}
}

// TestSwarmHostProtection: with host protection on, the first Swarm apply
// ensures the rules of the node's docker_gwbridge before any service and
// the next plan is empty; on a node whose bridge is Docker's default the
// plan is refused and nothing is created.
func TestSwarmHostProtection(t *testing.T) {
	ctx := context.Background()
	eng, tg := fake.NewSwarm(), swarmTarget(t)
	spec := state.HostRulesSpec{Network: state.GatewayBridgeNetwork, Bridge: state.GatewayBridgeInterface}
	spec.Hash = firewall.Hash(tg.Desired.Instance, spec)
	tg.Desired.HostRules = []state.HostRulesSpec{spec}
	fw := eng.Firewall()
	round := func() (*reconcile.Plan, error) {
		obs, err := controller.Observe(ctx, eng, fw, tg.Desired.Instance, true)
		if err != nil {
			return nil, err
		}
		p, err := controller.Plan(tg, obs, controller.PlanOptions{})
		if err != nil {
			return nil, err
		}
		_, err = controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{Firewall: fw})
		return p, err
	}

	bad := fake.NewSwarm()
	must(t, bad.SetGatewayBridge("docker_gwbridge", "false"))
	obs, err := controller.Observe(ctx, bad, bad.Firewall(), tg.Desired.Instance, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Plan(tg, obs, controller.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "not moat-gwbridge") {
		t.Errorf("a node with Docker's default docker_gwbridge: %v", err)
	}
	if calls := bad.Calls(); calls["CreateNetwork"]+calls["CreateContainer"] != 0 {
		t.Errorf("refused plan changed the engine: %v", calls)
	}

	p, err := round()
	if err != nil {
		t.Fatalf("apply:\n%s\n%v", p, err)
	}
	if !slices.Contains(opLines(p), string(reconcile.VerbEnsureRules)+" "+state.GatewayBridgeNetwork) {
		t.Fatalf("first plan has no rules for the gateway bridge:\n%s", p)
	}
	if p, err := round(); err != nil || !p.Empty() {
		t.Fatalf("next plan (err %v):\n%s", err, p)
	}
}
