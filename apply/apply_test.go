package apply_test

import (
	"context"
	"encoding/json"
	"github.com/moat-platform/moat/compile"
	"os"
	"strings"
	"testing"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// desired reads the create-all plan case's desired state: a few tenants,
// LANs, volumes and containers.
func desired(t *testing.T) *state.Desired {
	t.Helper()
	b, err := os.ReadFile("../test/fixtures/plans/create-all/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	var d state.Desired
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	// The fixture's hash labels are made up; the executor stamps what it
	// creates with the real ones, so the desired state must carry them.
	for i := range d.Containers {
		d.Containers[i] = compile.Stamped(d.Containers[i])
	}
	return &d
}

func plan(t *testing.T, eng *fake.Engine, d *state.Desired) *reconcile.Plan {
	t.Helper()
	obs, err := eng.Observe(context.Background(), d.Instance, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Compute(d, obs, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyConvergesToEmptyPlan(t *testing.T) {
	eng, d := fake.New(), desired(t)
	p := plan(t, eng, d)
	if p.Empty() {
		t.Fatal("first plan is empty")
	}
	var seen int
	results, err := apply.Run(context.Background(), eng, p, apply.Options{
		Parallel: 3,
		OnResult: func(apply.Result) { seen++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(p.Operations) || len(results) != len(p.Operations) {
		t.Fatalf("OnResult called %d times, %d results, %d operations", seen, len(results), len(p.Operations))
	}
	for _, r := range results {
		if r.Outcome != apply.Created {
			t.Errorf("%s: outcome %s, want created", r.Op.ID, r.Outcome)
		}
	}
	if again := plan(t, eng, d); !again.Empty() {
		t.Fatalf("plan after apply is not empty:\n%s", again)
	}
}

// A failure skips exactly what depends on the failed operation, and a
// fresh plan afterwards converges.
func TestFailureSkipsDependentsAndRerunConverges(t *testing.T) {
	eng, d := fake.New(), desired(t)
	if err := eng.InjectFault(fake.Fault{Op: "CreateNetwork", Nth: 1}); err != nil {
		t.Fatal(err)
	}
	p := plan(t, eng, d)
	results, err := apply.Run(context.Background(), eng, p, apply.Options{Parallel: 1})
	if err == nil || !strings.Contains(err.Error(), "1 operation(s) failed") {
		t.Fatalf("err = %v, want one failure", err)
	}
	failed := ""
	for _, r := range results {
		if r.Outcome == apply.Failed {
			failed = r.Op.ID
		}
	}
	for _, r := range results {
		dependsOnFailed := false
		for _, dep := range r.Op.DependsOn {
			if dep == failed {
				dependsOnFailed = true
			}
		}
		if dependsOnFailed && r.Outcome != apply.Skipped {
			t.Errorf("%s depends on the failed %s but was %s", r.Op.ID, failed, r.Outcome)
		}
	}
	if _, err := apply.Run(context.Background(), eng, plan(t, eng, d), apply.Options{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if again := plan(t, eng, d); !again.Empty() {
		t.Fatalf("plan after rerun is not empty:\n%s", again)
	}
}

// A cancelled context runs nothing more and says so.
func TestCancelled(t *testing.T) {
	eng, d := fake.New(), desired(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	results, err := apply.Run(ctx, eng, plan(t, eng, d), apply.Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v", err)
	}
	for _, r := range results {
		if r.Outcome != apply.Skipped {
			t.Errorf("%s ran after cancel: %s", r.Op.ID, r.Outcome)
		}
	}
	if eng.TotalCalls() != 1 { // the Observe of plan()
		t.Errorf("engine calls after cancel: %v", eng.Calls())
	}
}

func TestCorruptPlansRefused(t *testing.T) {
	eng := fake.New()
	cases := map[string]*reconcile.Plan{
		"cycle": {Operations: []reconcile.Operation{
			{ID: "a", Verb: reconcile.VerbReport, DependsOn: []string{"b"}},
			{ID: "b", Verb: reconcile.VerbReport, DependsOn: []string{"a"}},
		}},
		"unknown dependency": {Operations: []reconcile.Operation{
			{ID: "a", Verb: reconcile.VerbReport, DependsOn: []string{"zzz"}},
		}},
		"duplicate id": {Operations: []reconcile.Operation{
			{ID: "a", Verb: reconcile.VerbReport}, {ID: "a", Verb: reconcile.VerbReport},
		}},
	}
	for name, p := range cases {
		if _, err := apply.Run(context.Background(), eng, p, apply.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if eng.TotalCalls() != 0 {
		t.Errorf("a refused plan made engine calls: %v", eng.Calls())
	}
}

// Cancelling mid-run stops new operations but lets those in flight finish:
// nothing fails half-done, the rest is skipped, and a rerun converges.
func TestCancelMidRunFinishesInFlight(t *testing.T) {
	eng, d := fake.New(), desired(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results, err := apply.Run(ctx, eng, plan(t, eng, d), apply.Options{
		Parallel: 2,
		OnResult: func(apply.Result) { cancel() },
	})
	if err == nil {
		t.Fatal("no error after cancel")
	}
	var done, skipped int
	for _, r := range results {
		switch r.Outcome {
		case apply.Failed:
			t.Errorf("%s failed: %v (in-flight work must finish)", r.Op.ID, r.Err)
		case apply.Skipped:
			skipped++
		default:
			done++
		}
	}
	if done == 0 || skipped == 0 {
		t.Fatalf("done %d, skipped %d: want some of each", done, skipped)
	}
	if _, err := apply.Run(context.Background(), eng, plan(t, eng, d), apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if again := plan(t, eng, d); !again.Empty() {
		t.Fatalf("not converged:\n%s", again)
	}
}
