package reconcile

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
