package apply_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// plainEngine hides every optional interface of the engine it wraps: a
// single-host engine as the executor sees it.
type plainEngine struct{ engine.Engine }

// TestSwarmOpsNeedTheirInterfaces: an update or a secret operation on an
// engine without engine.Updater or engine.SecretStore fails with a message
// that says so, and nothing downstream runs.
func TestSwarmOpsNeedTheirInterfaces(t *testing.T) {
	res := func(k reconcile.Kind, n string) reconcile.ResourceID { return reconcile.ResourceID{Kind: k, Name: n} }
	sec := reconcile.Operation{Resource: res(reconcile.KindSecret, "s1"), Action: reconcile.Create, Verb: reconcile.VerbCreateSecret,
		Cause: "missing", SecretSpec: &state.SecretSpec{Name: "s1", Source: "/nowhere"}}
	sec.ID = reconcile.OpID(sec.Verb, sec.Resource, "")
	up := reconcile.Operation{Resource: res(reconcile.KindContainer, "c1"), Action: reconcile.Update, Verb: reconcile.VerbUpdate,
		Cause: "spec changed: env", ContainerSpec: &state.ContainerSpec{Name: "c1", Image: "i"}, DependsOn: []string{sec.ID}}
	up.ID = reconcile.OpID(up.Verb, up.Resource, "")
	rm := reconcile.Operation{Resource: res(reconcile.KindSecret, "s0"), Action: reconcile.Delete, Verb: reconcile.VerbRemoveSecret, Cause: "gone"}
	rm.ID = reconcile.OpID(rm.Verb, rm.Resource, "")
	p := &reconcile.Plan{Instance: "prod", Engine: state.EngineSwarm, Operations: []reconcile.Operation{sec, up, rm}}

	results, err := apply.Run(context.Background(), plainEngine{fake.NewSwarm()}, p, apply.Options{})
	if err == nil {
		t.Fatal("no error")
	}
	want := map[string]struct {
		outcome apply.Outcome
		msg     string
	}{
		sec.ID: {apply.Failed, "has no secret store"},
		rm.ID:  {apply.Failed, "has no secret store"},
		up.ID:  {apply.Skipped, ""},
	}
	for _, r := range results {
		w := want[r.Op.ID]
		if r.Outcome != w.outcome || (w.msg != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), w.msg))) {
			t.Errorf("%s: %s %v, want %s %q", r.Op.ID, r.Outcome, r.Err, w.outcome, w.msg)
		}
	}
	p.Operations = []reconcile.Operation{up}
	p.Operations[0].DependsOn = nil
	results, _ = apply.Run(context.Background(), plainEngine{fake.NewSwarm()}, p, apply.Options{})
	if r := results[0]; r.Outcome != apply.Failed || !strings.Contains(r.Err.Error(), "cannot update a container in place") {
		t.Errorf("update without engine.Updater: %s %v", r.Outcome, r.Err)
	}
}
