package watch

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/state"
)

// toSwarm derives the Swarm variant of the example platform as
// examples/platform/README.md says (engine swarm, overlay, encrypted).
func (f *fixture) toSwarm() {
	f.t.Helper()
	p := filepath.Join(f.dir, "platform.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		f.t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{{`(?m)^network:$`, "engine: swarm\nnetwork:"}, {`(?m)^  driver: bridge .*$`, "  driver: overlay\n  encrypted: true"}} {
		re := regexp.MustCompile(r[0])
		if !re.MatchString(s) {
			f.t.Fatalf("platform.yaml: %q not found", r[0])
		}
		s = re.ReplaceAllString(s, r[1])
	}
	f.write("platform.yaml", s)
}

// engines plays cmd/moat's Connect: one fake per engine kind, as the
// same Docker engine seen as one host or as a Swarm manager.
type engines struct {
	mu     sync.Mutex
	docker *fake.Engine
	swarm  *fake.Engine
	calls  []string // "instance kind", in order
}

func (e *engines) connect(instance, kind string) (engine.Engine, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, instance+" "+kind)
	if kind == state.EngineSwarm {
		return e.swarm, nil
	}
	return e.docker, nil
}

func (e *engines) connects() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// TestWatchOpensThePlatformsEngine: the watcher opens the engine the
// revision's platform chooses, services are created on Swarm, and a
// revision that changes the engine reconnects (the instance stays).
func TestWatchOpensThePlatformsEngine(t *testing.T) {
	f := newFixture(t)
	es := &engines{docker: fake.New(), swarm: fake.NewSwarm()}
	w := f.watcher(Options{Connect: es.connect})
	w.opts.Engine = nil // only what Connect opens
	if res := once(t, w); res != Applied {
		t.Fatalf("first round: %s (%s)", res, w.Status().LastError)
	}
	if _, ok := es.docker.Container("demo.acme.web.1"); !ok || w.Status().Engine != state.EngineDocker {
		t.Fatalf("single host: web not on the docker engine (status engine %q)", w.Status().Engine)
	}

	f.toSwarm()
	if res := once(t, w, "source"); res != Applied {
		t.Fatalf("swarm round: %s (%s)", res, w.Status().LastError)
	}
	if got := es.connects(); !slices.Equal(got, []string{"demo docker", "demo swarm"}) {
		t.Errorf("connects %q, want the docker engine, then the swarm engine", got)
	}
	c, ok := es.swarm.Container("demo--acme--web--1")
	if !ok || c.State != "running" || c.Spec == nil || c.Spec.Swarm == nil {
		t.Fatalf("swarm: service demo--acme--web--1 %+v", c)
	}
	if s := w.Status(); s.Engine != state.EngineSwarm || s.Instance != "demo" {
		t.Errorf("status engine %q instance %q", s.Engine, s.Instance)
	}
	if res := once(t, w, "resync"); res != Converged {
		t.Errorf("next swarm round: %s (%s)", res, w.Status().LastError)
	}
	if got := es.connects(); len(got) != 2 {
		t.Errorf("a round on the same engine reconnected: %q", got)
	}
}

// TestWatchSwarmEventsRevertDrift: after a revision moves the platform
// to Swarm, the event stream follows the new engine (service events), so
// a service removed by hand is put back without a resync.
func TestWatchSwarmEventsRevertDrift(t *testing.T) {
	f := newFixture(t)
	es := &engines{docker: fake.New(), swarm: fake.NewSwarm()}
	w := f.watcher(Options{Connect: es.connect, Resync: time.Hour})
	w.opts.Engine = nil
	runInBackground(t, w)
	waitFor(t, 5*time.Second, "first apply", func() bool { return w.Ready() })
	const svc = "demo--acme--web--1"
	f.toSwarm()
	waitFor(t, 5*time.Second, "the swarm revision applied", func() bool {
		c, ok := es.swarm.Container(svc)
		return ok && c.State == "running" && w.Status().Engine == state.EngineSwarm && w.Ready()
	})
	time.Sleep(300 * time.Millisecond) // the stream on the swarm engine is open
	corrected := w.Status().DriftCorrected
	if err := es.swarm.Remove(svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "drift reverted on Swarm", func() bool {
		c, ok := es.swarm.Container(svc)
		return ok && c.State == "running" && w.Status().DriftCorrected > corrected
	})
	if got := es.connects(); !slices.Equal(got, []string{"demo docker", "demo swarm"}) {
		t.Errorf("connects %q", got)
	}
}

// TestFakeSwarmEvents: the fake in Swarm mode streams what the Swarm
// engine does: network events of its overlays, service events for the
// instance's services, secret events, nothing of another instance.
func TestFakeSwarmEvents(t *testing.T) {
	e := fake.NewSwarm()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := e.CreateNetwork(ctx, state.NetworkSpec{Name: "demo--acme--lan", Driver: "overlay", Subnet: "10.1.0.0/24",
		Labels: map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "demo"}}); err != nil {
		t.Fatal(err)
	}
	ch, _ := e.Events(ctx, "demo")
	if _, err := e.AddContainer("demo--acme--x--1", "img", nil, "demo--acme--lan"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove("demo--acme--x--1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddContainer("other--acme--x--1", "img", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove("other--acme--x--1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateSecret(ctx, state.SecretSpec{Name: "demo--acme--pw--0123456789ab", Source: "/x",
		Labels: map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "demo"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-ch:
			got = append(got, ev.Type+" "+ev.Action+" "+ev.Name)
		case <-time.After(time.Second):
			t.Fatalf("events %q, want three", got)
		}
	}
	want := []string{"network connect demo--acme--lan", "service destroy demo--acme--x--1", "secret create demo--acme--pw--0123456789ab"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected event %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}
