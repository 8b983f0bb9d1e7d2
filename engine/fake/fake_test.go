package fake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

var ctx = context.Background()

func managed(instance string, extra ...string) map[string]string {
	l := map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: instance}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func netSpec(name, subnet, instance string) state.NetworkSpec {
	return state.NetworkSpec{Name: name, Driver: "bridge", Subnet: subnet, Labels: managed(instance)}
}

func appSpec(name, instance string, nets ...string) state.ContainerSpec {
	s := state.ContainerSpec{Name: name, Image: "echo:1", Labels: managed(instance, state.LabelSpecHash, "h1")}
	for _, n := range nets {
		s.Networks = append(s.Networks, state.Endpoint{Network: n, Aliases: []string{name + "-alias"}})
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustID(t *testing.T) func(string, error) string {
	return func(id string, err error) string {
		t.Helper()
		must(t, err)
		return id
	}
}

func TestObserveFilters(t *testing.T) {
	e := New()
	id := mustID(t)
	id(e.CreateNetwork(ctx, netSpec("b-lan", "10.0.2.0/24", "prod")))
	id(e.CreateNetwork(ctx, netSpec("a-lan", "10.0.1.0/24", "prod")))
	id(e.CreateNetwork(ctx, netSpec("other-lan", "10.0.3.0/24", "staging")))
	web := id(e.CreateContainer(ctx, appSpec("web", "prod", "b-lan", "a-lan")))
	id(e.CreateContainer(ctx, appSpec("stg", "staging", "other-lan")))
	intruder := id(e.AddUnmanagedContainer("intruder", "busybox", "a-lan"))
	id(e.AddUnmanagedContainer("bystander", "busybox", "other-lan"))
	must(t, e.CreateVolume(ctx, state.VolumeSpec{Name: "data", Labels: managed("prod")}))

	obs, err := e.Observe(ctx, "prod", false)
	must(t, err)
	var nets, ctrs []string
	for _, n := range obs.Networks {
		nets = append(nets, n.Name)
	}
	for _, c := range obs.Containers {
		ctrs = append(ctrs, c.Name)
	}
	if !reflect.DeepEqual(nets, []string{"a-lan", "b-lan"}) || !reflect.DeepEqual(ctrs, []string{"intruder", "web"}) {
		t.Fatalf("observed networks %v containers %v", nets, ctrs)
	}
	if obs.Networks[0].Subnet != "10.0.1.0/24" || obs.Networks[0].ID == "" {
		t.Errorf("network = %+v", obs.Networks[0])
	}
	w := obs.Containers[1]
	if w.ID != web || len(w.ID) != 64 || w.State != "running" || !reflect.DeepEqual(w.Networks, []string{"a-lan", "b-lan"}) {
		t.Errorf("web = %+v", w)
	}
	if obs.Containers[0].ID != intruder || state.Managed(obs.Containers[0].Labels, "prod") {
		t.Errorf("intruder = %+v", obs.Containers[0])
	}
	if obs.Volumes != nil {
		t.Error("volumes listed without being asked")
	}
	obs, err = e.Observe(ctx, "prod", true)
	must(t, err)
	if len(obs.Volumes) != 1 || obs.Volumes[0].Name != "data" {
		t.Errorf("volumes = %+v", obs.Volumes)
	}
	// Observed values are copies: changing them does not change the engine.
	obs.Containers[1].Labels[state.LabelSpecHash] = "changed"
	if c, _ := e.Container("web"); c.Labels[state.LabelSpecHash] != "h1" {
		t.Error("Observe leaked internal maps")
	}
	if c, _ := e.Container("web"); c.Spec == nil || c.Networks["a-lan"][0] != "web-alias" {
		t.Errorf("recorded container = %+v", c)
	}
}

func TestCreateConflicts(t *testing.T) {
	e := New()
	id := mustID(t)
	id(e.CreateNetwork(ctx, netSpec("lan", "10.0.1.0/24", "prod")))
	if _, err := e.CreateNetwork(ctx, netSpec("lan", "10.0.9.0/24", "prod")); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate network: %v", err)
	}
	if _, err := e.CreateNetwork(ctx, netSpec("lan2", "10.0.1.128/25", "prod")); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlapping subnet: %v", err)
	}
	if _, err := e.CreateContainer(ctx, appSpec("web", "prod", "missing-lan")); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("missing network: %v", err)
	}

	// A leftover of the same instance is replaced; anything else refused.
	first := id(e.CreateContainer(ctx, appSpec("web", "prod", "lan")))
	second := id(e.CreateContainer(ctx, appSpec("web", "prod", "lan")))
	if first == second {
		t.Error("leftover not replaced")
	}
	id(e.AddUnmanagedContainer("mine", "busybox"))
	id(e.AddContainer("theirs", "busybox", managed("staging")))
	for _, name := range []string{"mine", "theirs"} {
		_, err := e.CreateContainer(ctx, appSpec(name, "prod", "lan"))
		if !errors.Is(err, engine.ErrNotManaged) {
			t.Errorf("create over %s: %v", name, err)
		}
		if c, ok := e.Container(name); !ok || c.Image != "busybox" {
			t.Errorf("%s was touched", name)
		}
	}

	must(t, e.SetImages("echo:1"))
	spec := appSpec("api", "prod", "lan")
	spec.Image = "api:2"
	if _, err := e.CreateContainer(ctx, spec); !errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), "never pulls") {
		t.Errorf("missing image: %v", err)
	}
}

func TestRemoveAndAttach(t *testing.T) {
	e := New()
	id := mustID(t)
	id(e.CreateNetwork(ctx, netSpec("a", "10.0.1.0/24", "prod")))
	id(e.CreateNetwork(ctx, netSpec("b", "10.0.2.0/24", "prod")))
	spec := appSpec("web", "prod", "a")
	spec.Mounts = []state.Mount{{Type: "volume", Source: "data", Target: "/data"}}
	must(t, e.CreateVolume(ctx, state.VolumeSpec{Name: "data", Labels: managed("prod")}))
	web := id(e.CreateContainer(ctx, spec))

	// Connect/Disconnect are idempotent; missing objects are NotFound on
	// connect and success on disconnect.
	for range 2 {
		must(t, e.Connect(ctx, "b", "web", []string{"w"}))
	}
	if c, _ := e.Container(web); !reflect.DeepEqual(c.Networks, map[string][]string{"a": {"web-alias"}, "b": {"w"}}) {
		t.Errorf("networks = %v", c.Networks)
	}
	if err := e.Connect(ctx, "nope", "web", nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("connect to missing network: %v", err)
	}
	if err := e.Connect(ctx, "b", "nope", nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("connect missing container: %v", err)
	}
	for range 2 {
		must(t, e.Disconnect(ctx, "b", web))
	}
	must(t, e.Disconnect(ctx, "nope", "nope"))

	// Stop by hand, start by moat (by id or name).
	must(t, e.Stop("web"))
	if c, _ := e.Container("web"); c.State != "exited" {
		t.Errorf("state = %s", c.State)
	}
	must(t, e.StartContainer(ctx, web[:12]))
	if c, _ := e.Container("web"); c.State != "running" {
		t.Errorf("state = %s", c.State)
	}
	if err := e.StartContainer(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("start missing: %v", err)
	}

	// Removals: in-use and unmanaged refused; missing is success.
	if err := e.RemoveNetwork(ctx, "a"); err == nil || !strings.Contains(err.Error(), "active endpoints") {
		t.Errorf("remove network in use: %v", err)
	}
	if err := e.RemoveVolume(ctx, "data"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("remove volume in use: %v", err)
	}
	id(e.AddUnmanagedContainer("intruder", "busybox"))
	if err := e.RemoveContainer(ctx, "intruder", 1); !errors.Is(err, engine.ErrNotManaged) {
		t.Errorf("remove unmanaged container: %v", err)
	}
	id(e.AddNetwork(state.NetworkSpec{Name: "theirs", Driver: "bridge"}))
	if err := e.RemoveNetwork(ctx, "theirs"); !errors.Is(err, engine.ErrNotManaged) {
		t.Errorf("remove unmanaged network: %v", err)
	}
	for range 2 {
		must(t, e.RemoveContainer(ctx, web, 10))
		must(t, e.RemoveNetwork(ctx, "a"))
		must(t, e.RemoveVolume(ctx, "data"))
	}
	if _, ok := e.Container(web); ok || e.HasVolume("data") {
		t.Error("not removed")
	}
	// Remove by hand works on anything.
	must(t, e.Remove("intruder"))
}

func TestFaults(t *testing.T) {
	e := New()
	id := mustID(t)
	id(e.CreateNetwork(ctx, netSpec("lan", "10.0.1.0/24", "prod")))
	must(t, e.InjectFault(Fault{Op: "CreateContainer", Nth: 2, Err: "boom"}))
	id(e.CreateContainer(ctx, appSpec("one", "prod", "lan")))
	_, err := e.CreateContainer(ctx, appSpec("two", "prod", "lan"))
	if !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := e.Container("two"); ok {
		t.Error("a failed call had an effect")
	}
	id(e.CreateContainer(ctx, appSpec("two", "prod", "lan"))) // fault consumed

	// After: the effect happens, the caller still sees an error.
	must(t, e.InjectFault(Fault{After: true}))
	if err := e.RemoveContainer(ctx, "one", 1); !errors.Is(err, ErrInjected) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := e.Container("one"); ok {
		t.Error("After fault did not apply the effect")
	}

	must(t, e.InjectFault(Fault{Op: "Observe"}))
	if _, err := e.Observe(ctx, "prod", false); !errors.Is(err, ErrInjected) {
		t.Errorf("observe fault: %v", err)
	}
	calls := e.Calls()
	if calls["CreateContainer"] != 3 || calls["RemoveContainer"] != 1 || calls["Observe"] != 1 || e.TotalCalls() != 6 {
		t.Errorf("calls = %v total %d", calls, e.TotalCalls())
	}
	e.ResetCalls()
	if e.TotalCalls() != 0 {
		t.Error("ResetCalls")
	}
}

func TestOpenSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "engine.json")
	e, err := Open(path) // missing file: empty engine
	must(t, err)
	id := mustID(t)
	id(e.CreateNetwork(ctx, netSpec("lan", "10.0.1.0/24", "prod")))
	web := id(e.CreateContainer(ctx, appSpec("web", "prod", "lan")))
	// A fault armed in one process fires in the next.
	must(t, e.InjectFault(Fault{Op: "StartContainer"}))
	must(t, e.Stop("web"))

	e2, err := Open(path)
	must(t, err)
	obs, err := e2.Observe(ctx, "prod", false)
	must(t, err)
	if len(obs.Containers) != 1 || obs.Containers[0].ID != web || obs.Containers[0].State != "exited" {
		t.Fatalf("reloaded = %+v", obs.Containers)
	}
	if err := e2.StartContainer(ctx, web); !errors.Is(err, ErrInjected) {
		t.Errorf("persisted fault did not fire: %v", err)
	}
	e3, err := Open(path)
	must(t, err)
	must(t, e3.StartContainer(ctx, web)) // consumed fault was saved
	// Ids keep counting across processes: no id is reused.
	other := id(e3.CreateContainer(ctx, appSpec("api", "prod", "lan")))
	if other == web {
		t.Error("id reused after reload")
	}
	b1, _ := os.ReadFile(path)
	must(t, e3.Save())
	b2, _ := os.ReadFile(path)
	if string(b1) != string(b2) {
		t.Error("Save of unchanged state changed the file")
	}

	for name, content := range map[string]string{
		"not json":        "nope",
		"wrong format":    `{"format":"moat-state","version":1}`,
		"unknown field":   `{"format":"moat-fake-engine","version":1,"x":1}`,
		"dangling net":    `{"format":"moat-fake-engine","version":1,"networks":{},"containers":{"c":{"id":"1","state":"running","networks":{"n":null}}}}`,
		"container no id": `{"format":"moat-fake-engine","version":1,"containers":{"c":{"state":"running"}}}`,
	} {
		p := filepath.Join(t.TempDir(), "bad.json")
		must(t, os.WriteFile(p, []byte(content), 0o644))
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A hand-written minimal file works (names come from the keys).
	p := filepath.Join(t.TempDir(), "min.json")
	must(t, os.WriteFile(p, []byte(`{"format":"moat-fake-engine","version":1,
		"networks":{"lan":{"id":"n1","driver":"bridge","labels":{"org.moat.managed-by":"moat","org.moat.instance":"prod"}}},
		"containers":{"x":{"id":"c1","image":"busybox","state":"running","networks":{"lan":null}}}}`), 0o644))
	e4, err := Open(p)
	must(t, err)
	obs, err = e4.Observe(ctx, "prod", false)
	must(t, err)
	if len(obs.Containers) != 1 || obs.Containers[0].Name != "x" || obs.Networks[0].Name != "lan" {
		t.Errorf("minimal file = %+v", obs)
	}
}

func TestConcurrentUse(t *testing.T) {
	e, err := Open(filepath.Join(t.TempDir(), "e.json"))
	must(t, err)
	_, err = e.CreateNetwork(ctx, netSpec("lan", "10.0.1.0/24", "prod"))
	must(t, err)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := fmt.Sprintf("app-%02d", i)
			if _, err := e.CreateContainer(ctx, appSpec(name, "prod", "lan")); err != nil {
				t.Error(err)
			}
			if _, err := e.Observe(ctx, "prod", true); err != nil {
				t.Error(err)
			}
			if err := e.RemoveContainer(ctx, name, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if e.Calls()["CreateContainer"] != 16 {
		t.Errorf("calls = %v", e.Calls())
	}
}
