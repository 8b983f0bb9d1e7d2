package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/state"
)

var update = flag.Bool("update", false, "rewrite the goldens of test/fixtures/plans")

const fixtures = "../test/fixtures/plans"

// fixtureOptions is options.json of a fixture (absent: all false).
type fixtureOptions struct {
	EvictUnmanaged  bool `json:"evictUnmanaged"`
	PruneVolumes    bool `json:"pruneVolumes"`
	AllowMassDelete bool `json:"allowMassDelete"`
	UnknownSecrets  bool `json:"unknownSecrets"`
}

type fixture struct {
	desired  *state.Desired
	observed *state.Observed
	opts     Options
	guard    GuardOptions
}

func decodeStrict(t *testing.T, path string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return true
}

func loadFixture(t *testing.T, dir string) fixture {
	t.Helper()
	var f fixture
	f.desired, f.observed = new(state.Desired), new(state.Observed)
	if !decodeStrict(t, filepath.Join(dir, "desired.json"), f.desired) ||
		!decodeStrict(t, filepath.Join(dir, "observed.json"), f.observed) {
		t.Fatalf("%s: desired.json and observed.json are required", dir)
	}
	var o fixtureOptions
	decodeStrict(t, filepath.Join(dir, "options.json"), &o)
	f.opts = Options{EvictUnmanaged: o.EvictUnmanaged, PruneVolumes: o.PruneVolumes, UnknownSecrets: o.UnknownSecrets}
	f.guard = GuardOptions{AllowMassDelete: o.AllowMassDelete}
	return f
}

// golden compares got with the file, or rewrites it with -update; an empty
// got means the file must not exist.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && got == "" {
		return
	}
	if err != nil {
		t.Fatalf("%v (run go test ./reconcile -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test ./reconcile -update and review the diff)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// dagText lists every operation's dependencies, one line each.
func dagText(p *Plan) string {
	var b strings.Builder
	for _, op := range p.Operations {
		b.WriteString(op.ID + "\n")
		for _, d := range op.DependsOn {
			b.WriteString("    after " + d + "\n")
		}
	}
	return b.String()
}

// TestFixtures runs every case of test/fixtures/plans: plan.golden is
// Plan.String(), dag.golden the dependencies, error.golden the error of a
// refused computation, guard.golden Guard's refusal.
func TestFixtures(t *testing.T) {
	dirs, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "config" { // config: controller's cases
			continue
		}
		dir := filepath.Join(fixtures, d.Name())
		t.Run(d.Name(), func(t *testing.T) {
			f := loadFixture(t, dir)
			p, err := Compute(f.desired, f.observed, f.opts)
			errText, planText, dag, guardText := "", "", "", ""
			if err != nil {
				errText = err.Error() + "\n"
			} else {
				checkPlan(t, p, f.desired, f.observed)
				planText, dag = p.String(), dagText(p)
				if gerr := Guard(p, f.observed, f.guard); gerr != nil {
					guardText = gerr.Error() + "\n"
				}
			}
			golden(t, filepath.Join(dir, "error.golden"), errText)
			golden(t, filepath.Join(dir, "plan.golden"), planText)
			golden(t, filepath.Join(dir, "dag.golden"), dag)
			golden(t, filepath.Join(dir, "guard.golden"), guardText)
		})
	}
}

// TestShuffledInput: the plan does not depend on the order of any input
// slice, including each container's network list.
func TestShuffledInput(t *testing.T) {
	dirs, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "config" { // config: controller's cases
			continue
		}
		dir := filepath.Join(fixtures, d.Name())
		f := loadFixture(t, dir)
		want, wantErr := Compute(f.desired, f.observed, f.opts)
		for range 20 {
			shuffle(rng, f.desired.Networks)
			shuffle(rng, f.desired.Volumes)
			shuffle(rng, f.desired.Containers)
			shuffle(rng, f.observed.Networks)
			shuffle(rng, f.observed.Containers)
			shuffle(rng, f.observed.Volumes)
			shuffle(rng, f.desired.Secrets)
			shuffle(rng, f.observed.Secrets)
			for i := range f.desired.Containers {
				shuffle(rng, f.desired.Containers[i].Networks)
			}
			for i := range f.observed.Containers {
				shuffle(rng, f.observed.Containers[i].Networks)
			}
			got, err := Compute(f.desired, f.observed, f.opts)
			if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("%s: error %v after shuffling, want %v", d.Name(), err, wantErr)
			}
			if err != nil {
				continue
			}
			// Only the desired spec copies differ (their network order).
			if a, b := stripSpecs(got), stripSpecs(want); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: plan differs after shuffling:\n%s\nvs\n%s\n%s\nvs\n%s", d.Name(), got, want, dagText(got), dagText(want))
			}
		}
	}
}

func shuffle[T any](rng *rand.Rand, s []T) {
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func stripSpecs(p *Plan) []Operation {
	ops := slices.Clone(p.Operations)
	for i := range ops {
		ops[i].ContainerSpec = nil
	}
	return ops
}

// checkPlan asserts the invariants of a plan's DAG that apply relies on.
func checkPlan(t *testing.T, p *Plan, d *state.Desired, o *state.Observed) {
	t.Helper()
	idx := map[string]int{}
	for i, op := range p.Operations {
		idx[op.ID] = i
		if want := OpID(op.Verb, op.Resource, op.Network); op.ID != want {
			t.Errorf("op id %s, want %s", op.ID, want)
		}
		if op.Cause == "" {
			t.Errorf("%s has no cause", op.ID)
		}
	}
	// before[a][b]: a must finish before b, transitively.
	reach := func(from string) map[string]bool {
		seen := map[string]bool{}
		var walk func(id string)
		walk = func(id string) {
			for _, dep := range p.Operations[idx[id]].DependsOn {
				if !seen[dep] {
					seen[dep] = true
					walk(dep)
				}
			}
		}
		walk(from)
		return seen
	}
	ancestors := map[string]map[string]bool{}
	for _, op := range p.Operations {
		a := reach(op.ID)
		if a[op.ID] {
			t.Fatalf("%s depends on itself", op.ID)
		}
		ancestors[op.ID] = a
	}
	oCon := map[string]*state.Container{}
	for i := range o.Containers {
		oCon[o.Containers[i].Name] = &o.Containers[i]
	}
	dCon := map[string]*state.ContainerSpec{}
	for i := range d.Containers {
		dCon[d.Containers[i].Name] = &d.Containers[i]
	}
	mustPrecede := func(first, then string) {
		if _, ok := idx[first]; ok && !ancestors[then][first] {
			t.Errorf("%s must run after %s", then, first)
		}
	}
	for _, op := range p.Operations {
		switch op.Verb {
		case VerbCreate, VerbRecreate, VerbUpdate:
			for _, ep := range op.ContainerSpec.Networks {
				mustPrecede(OpID(VerbCreateNetwork, ResourceID{KindNetwork, ep.Network}, ""), op.ID)
			}
			for _, m := range op.ContainerSpec.Mounts {
				mustPrecede(OpID(VerbCreateVolume, ResourceID{KindVolume, m.Source}, ""), op.ID)
				mustPrecede(OpID(VerbCreateSecret, ResourceID{KindSecret, m.Source}, ""), op.ID)
			}
		case VerbRemoveSecret:
			// No service may still mount it: every container op first.
			for _, other := range p.Operations {
				if other.Resource.Kind == KindContainer && other.Action != Report {
					mustPrecede(other.ID, op.ID)
				}
			}
		case VerbConnect:
			mustPrecede(OpID(VerbCreateNetwork, ResourceID{KindNetwork, op.Network}, ""), op.ID)
		case VerbRemoveNetwork:
			// Every live container on it must be off it first.
			for _, c := range oCon {
				if !slices.Contains(c.Networks, op.Resource.Name) {
					continue
				}
				res := ResourceID{KindContainer, c.Name}
				off := []string{OpID(VerbDisconnect, res, op.Resource.Name), OpID(VerbRemove, res, "")}
				if spec := dCon[c.Name]; spec == nil || onNetwork(spec, op.Resource.Name) < 0 {
					off = append(off, OpID(VerbRecreate, res, ""))
				}
				if !slices.ContainsFunc(off, func(id string) bool { return ancestors[op.ID][id] }) {
					t.Errorf("%s: container %s may still be attached", op.ID, c.Name)
				}
			}
		}
	}
}

// TestNoop: a live state that matches gives an empty plan, also for a
// large instance.
func TestNoop(t *testing.T) {
	d, o := synth(2000, 0)
	p, err := Compute(d, o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Operations) != 0 || p.String() != "No changes.\n" {
		t.Fatalf("want an empty plan, got\n%s", p)
	}
}

func TestComputeRefusesBadInput(t *testing.T) {
	d, o := synth(2, 0)
	for name, mutate := range map[string]func(*state.Desired, *state.Observed){
		"no instance":    func(d *state.Desired, _ *state.Observed) { d.Instance = "" },
		"no spec hash":   func(d *state.Desired, _ *state.Observed) { delete(d.Containers[0].Labels, state.LabelSpecHash) },
		"unknown net":    func(d *state.Desired, _ *state.Observed) { d.Containers[0].Networks[0].Network = "elsewhere" },
		"duplicate":      func(d *state.Desired, _ *state.Observed) { d.Containers[1].Name = d.Containers[0].Name },
		"duplicate live": func(_ *state.Desired, o *state.Observed) { o.Networks = append(o.Networks, o.Networks[0]) },
	} {
		dd, oo := clone(t, d), clone(t, o)
		mutate(dd, oo)
		if _, err := Compute(dd, oo, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Compute(nil, o, Options{}); err == nil {
		t.Error("nil desired: no error")
	}
}

func clone[T any](t *testing.T, v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSpecCause(t *testing.T) {
	for _, tc := range []struct{ want, have, cause string }{
		{"env=1,image=2", "env=9,image=2", "spec changed: env"},
		{"env=1,image=2", "env=9,image=3", "spec changed: env, image"},
		{"env=1,ports=4", "env=1", "spec changed: ports"},
		{"env=1", "env=1,ports=4", "spec changed: ports"},
		{"env=1", "", "spec changed"},
		{"env=1", "garbage", "spec changed"},
		{"env=1", "env=1", "spec changed"},
	} {
		if got := specCause(tc.want, tc.have, false); got != tc.cause {
			t.Errorf("specCause(%q, %q) = %q, want %q", tc.want, tc.have, got, tc.cause)
		}
	}
	// Planned without the secret store: the secrets part alone is no
	// change; with others it is left out of the cause.
	for _, tc := range []struct{ want, have, cause string }{
		{"env=1,secrets=2", "env=1,secrets=9", ""},
		{"env=1,secrets=2", "env=8,secrets=9", "spec changed: env"},
		{"env=1", "", "spec changed"},
	} {
		if got := specCause(tc.want, tc.have, true); got != tc.cause {
			t.Errorf("specCause(%q, %q, unknown secrets) = %q, want %q", tc.want, tc.have, got, tc.cause)
		}
	}
}

func TestGuardThreshold(t *testing.T) {
	d, o := synth(10, 0)
	// Remove 5 of 10 across tenants: exactly half is allowed.
	d.Containers = d.Containers[5:]
	p, err := Compute(d, o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Guard(p, o, GuardOptions{}); err != nil {
		t.Fatalf("half: %v", err)
	}
	d.Containers = d.Containers[1:]
	p, _ = Compute(d, o, Options{})
	err = Guard(p, o, GuardOptions{})
	var ge *GuardError
	if !errors.As(err, &ge) || len(ge.Removed) != 6 || !strings.Contains(err.Error(), "--allow-mass-delete") {
		t.Fatalf("more than half: %v", err)
	}
	if err := Guard(p, o, GuardOptions{AllowMassDelete: true}); err != nil {
		t.Fatalf("allowed: %v", err)
	}
}
