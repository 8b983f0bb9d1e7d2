package docker

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/state"
)

// connectSwarm returns a Swarm engine. The Swarm tests run only with
// MOAT_SWARM=1 (scripts/swarm.sh sets it in make test); then an engine
// that is not a Swarm manager is a failure, not a skip.
func connectSwarm(t *testing.T, opts Options) *Swarm {
	t.Helper()
	if os.Getenv("MOAT_SWARM") != "1" {
		t.Skip("Swarm test: set MOAT_SWARM=1 with a Swarm manager engine (scripts/swarm.sh test)")
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	s, err := NewSwarm(opts)
	if err != nil {
		t.Fatalf("MOAT_SWARM=1 but: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// swarmRun is a testRun that also removes the run's services and secrets
// (registered after the testRun's cleanup, so it runs first: services
// hold the networks and the image).
type swarmRun struct {
	*testRun
	s *Swarm
}

func newSwarmRun(t *testing.T, s *Swarm) *swarmRun {
	r := &swarmRun{testRun: newTestRun(t, s.Engine), s: s}
	r.prefix = strings.Replace(r.prefix, "moattest-", "mt", 1) // short: names must fit 63 characters
	r.image = "localhost/" + r.prefix + ":1"
	t.Cleanup(r.cleanupSwarm)
	return r
}

func (r *swarmRun) cleanupSwarm() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := r.s.cli
	f := filters.NewArgs(filters.Arg("label", labelTestRun+"="+r.prefix))
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		r.t.Logf("cleanup: list services: %v", err)
	}
	for _, svc := range svcs {
		if err := cli.ServiceRemove(ctx, svc.ID); err != nil {
			r.t.Logf("cleanup: remove service %s: %v", svc.Spec.Name, err)
		}
	}
	// Task containers go away asynchronously; networks and secrets wait
	// for them.
	for ctx.Err() == nil {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelSwarmServiceName))})
		if err != nil || !slices.ContainsFunc(cs, func(c container.Summary) bool {
			return strings.HasPrefix(c.Labels[labelSwarmServiceName], r.prefix)
		}) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	secs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		r.t.Logf("cleanup: list secrets: %v", err)
	}
	for _, sec := range secs {
		if err := cli.SecretRemove(ctx, sec.ID); err != nil {
			r.t.Logf("cleanup: remove secret %s: %v", sec.Spec.Name, err)
		}
	}
}

// overlay creates a managed overlay on a random /24 in 10.x.
func (r *swarmRun) overlay(ctx context.Context, name string, attachable bool) state.NetworkSpec {
	r.t.Helper()
	for range 8 {
		b, c := 100+mrand.IntN(150), mrand.IntN(256)
		spec := state.NetworkSpec{
			Name: name, Driver: "overlay", Attachable: attachable,
			Subnet: fmt.Sprintf("10.%d.%d.0/24", b, c), Gateway: fmt.Sprintf("10.%d.%d.1", b, c),
			Labels: r.managed(),
		}
		if _, err := r.s.CreateNetwork(ctx, spec); err == nil {
			return spec
		} else if !strings.Contains(err.Error(), "overlap") {
			r.t.Fatalf("create network %s: %v", name, err)
		}
	}
	r.t.Fatalf("create network %s: no free subnet after 8 tries", name)
	return state.NetworkSpec{}
}

// hardened is a service spec as compile makes it for an app, stamped.
func (r *swarmRun) hardened(name, network, secret string) state.ContainerSpec {
	labels := r.managed()
	labels[state.LabelKind] = state.KindApp
	labels[state.LabelApp] = "web"
	spec := state.ContainerSpec{
		Name: name, Image: r.image, Cmd: []string{"serve"}, Env: []string{"A=1"}, User: "1000:1000",
		Labels:         labels,
		Networks:       []state.Endpoint{{Network: network, Aliases: []string{"web"}}},
		Mounts:         []state.Mount{{Type: state.MountSecret, Source: secret, Target: "/run/secrets/token", ReadOnly: true}},
		Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=16m,mode=1777"},
		ReadOnlyRootfs: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "0"},
		Memory:  64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64,
		Restart: state.Restart{Name: "on-failure", MaxRetries: 3}, StopTimeout: 5,
		Healthcheck: &state.Healthcheck{Test: []string{"CMD", "/sleeper", "health"}, Interval: int64(time.Second), Timeout: int64(time.Second), Retries: 3},
		Swarm:       &state.SwarmSpec{UpdateOrder: swarm.UpdateOrderStartFirst},
	}
	return compile.Stamped(spec)
}

// handUpdate changes a service through the SDK, as docker service update
// does.
func (r *swarmRun) handUpdate(ctx context.Context, id string, change func(*swarm.ServiceSpec)) {
	r.t.Helper()
	svc, _, err := r.s.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	change(&svc.Spec)
	if _, err := r.s.cli.ServiceUpdate(ctx, id, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		r.t.Fatalf("hand update: %v", err)
	}
}

func (r *swarmRun) observeSwarm(ctx context.Context) *state.Observed {
	r.t.Helper()
	obs, err := r.s.Observe(ctx, r.prefix, false)
	if err != nil {
		r.t.Fatalf("observe: %v", err)
	}
	return obs
}

// The Swarm engine end to end on the real Swarm: every operation, the
// mapping back, and each kind of hand edit.
func TestSwarmEngine(t *testing.T) {
	s := connectSwarm(t, Options{})
	r := newSwarmRun(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r.buildImage(ctx)
	lan := r.overlay(ctx, r.prefix+"--acme--lan0", true)

	// A secret version from a file: created with its labels, the value
	// only in the Swarm store.
	dir := t.TempDir()
	src := filepath.Join(dir, "token")
	if err := os.WriteFile(src, []byte("s3cr3t-marker"), 0o600); err != nil {
		t.Fatal(err)
	}
	secName := r.prefix + "--acme--token--0123456789ab"
	secLabels := r.labels(map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: r.prefix,
		state.LabelKind: state.KindSecret, state.LabelSecret: "token", state.LabelTenant: "acme"})
	secID, err := s.CreateSecret(ctx, state.SecretSpec{Name: secName, Source: src, Digest: "x", Labels: secLabels})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	if again, err := s.CreateSecret(ctx, state.SecretSpec{Name: secName, Source: src, Labels: secLabels}); err != nil || again != secID {
		t.Fatalf("create secret again = %s, %v; want the same version %s", again, err, secID)
	}

	spec := r.hardened(r.prefix+"--acme--web--1", lan.Name, secName)
	id, err := s.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("create service: %v", err)
	}

	obs := r.observeSwarm(ctx)
	c := findContainer(obs, spec.Name)
	if c == nil {
		t.Fatalf("observe: service %s missing from %+v", spec.Name, obs.Containers)
	}
	if c.ID != id || c.State != "running" || c.Image != spec.Image || !slices.Equal(c.Networks, []string{lan.Name}) {
		t.Fatalf("observed %+v, want id %s running %s on [%s]", c, id, spec.Image, lan.Name)
	}
	if c.Labels[state.LabelSpecHash] != spec.Labels[state.LabelSpecHash] || c.Labels[state.LabelSpecParts] != spec.Labels[state.LabelSpecParts] {
		t.Fatalf("fresh service looks edited: hash %s parts %s, want %s %s", c.Labels[state.LabelSpecHash], c.Labels[state.LabelSpecParts],
			spec.Labels[state.LabelSpecHash], spec.Labels[state.LabelSpecParts])
	}
	if c.ImageID == "" {
		t.Errorf("observed no image id of the local task")
	}
	if len(obs.Secrets) != 1 || obs.Secrets[0].Name != secName || obs.Secrets[0].ID != secID {
		t.Errorf("observed secrets %+v, want [%s]", obs.Secrets, secName)
	}
	if gb := obs.GatewayBridge; gb == nil || gb.ID == "" || gb.Driver != "bridge" || gb.Subnet == "" {
		t.Errorf("observed gateway bridge %+v, want the node's docker_gwbridge", gb)
	} else {
		t.Logf("gateway bridge: %+v", *gb)
	}
	if len(obs.Networks) != 1 || !obs.Networks[0].Attachable || obs.Networks[0].Driver != "overlay" || obs.Networks[0].Subnet != lan.Subnet {
		t.Errorf("observed networks %+v, want the attachable overlay %s", obs.Networks, lan.Subnet)
	}

	// The audit's view: the spec's settings, and no-new-privileges as
	// the task really has it.
	if err := s.InspectContainers(ctx, obs); err != nil {
		t.Fatalf("inspect: %v", err)
	}
	in := findContainer(obs, spec.Name).Inspect
	if in == nil || in.User != "1000:1000" || !in.ReadOnlyRootfs || !slices.Equal(in.CapDrop, []string{"ALL"}) || in.Memory != 64<<20 ||
		in.Restart != (state.Restart{Name: "on-failure", MaxRetries: 3}) ||
		!slices.Contains(in.Mounts, state.Mount{Type: state.MountSecret, Source: secName, Target: "/run/secrets/token", ReadOnly: true}) {
		t.Fatalf("inspect = %+v", in)
	}
	if u := s.Unenforceable(); s.APIVersion() == "1.41" && (u["memory"] == "" || u["no-new-privileges"] == "") {
		t.Errorf("API 1.41: unenforceable checks %v, want memory and no-new-privileges", u)
	}
	t.Logf("engine API %s: task security options %v (no-new-privileges settable on services: %t)", s.APIVersion(), in.SecurityOpt, s.caps.noNewPrivileges)

	// Hand edits, each detected as its part; moat's update reverts each.
	edits := []struct {
		part   string
		change func(*swarm.ServiceSpec)
	}{
		{"security", func(sp *swarm.ServiceSpec) {
			sp.TaskTemplate.ContainerSpec.CapabilityAdd = append(sp.TaskTemplate.ContainerSpec.CapabilityAdd, "CAP_NET_ADMIN")
		}},
		{"limits", func(sp *swarm.ServiceSpec) { sp.TaskTemplate.Resources.Limits = nil }},
	}
	for _, ed := range edits {
		r.handUpdate(ctx, id, ed.change)
		c := findContainer(r.observeSwarm(ctx), spec.Name)
		if c == nil || c.Labels[state.LabelSpecHash] == spec.Labels[state.LabelSpecHash] {
			t.Fatalf("%s edit: not seen: %+v", ed.part, c)
		}
		if got := compile.ChangedParts(spec.Labels[state.LabelSpecParts], c.Labels[state.LabelSpecParts]); !slices.Equal(got, []string{ed.part}) {
			t.Fatalf("%s edit: changed parts %v", ed.part, got)
		}
		if err := s.UpdateContainer(ctx, id, spec); err != nil {
			t.Fatalf("revert %s edit: %v", ed.part, err)
		}
		if c := findContainer(r.observeSwarm(ctx), spec.Name); c.Labels[state.LabelSpecHash] != spec.Labels[state.LabelSpecHash] {
			t.Fatalf("after the revert of the %s edit: still edited: %s", ed.part, c.Labels[state.LabelSpecParts])
		}
	}

	// A network added by hand shows in Networks (not as a spec edit);
	// Disconnect takes it away again.
	other := r.overlay(ctx, r.prefix+"--beta--lan0", false)
	r.handUpdate(ctx, id, func(sp *swarm.ServiceSpec) {
		sp.TaskTemplate.Networks = append(sp.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: other.Name})
	})
	c = findContainer(r.observeSwarm(ctx), spec.Name)
	if !slices.Equal(c.Networks, []string{lan.Name, other.Name}) || c.Labels[state.LabelSpecHash] != spec.Labels[state.LabelSpecHash] {
		t.Fatalf("after a network was added by hand: networks %v, hash %s", c.Networks, c.Labels[state.LabelSpecHash])
	}
	if err := s.Disconnect(ctx, other.Name, spec.Name); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	if err := s.Disconnect(ctx, other.Name, spec.Name); err != nil {
		t.Fatalf("disconnect again: %v", err)
	}
	if err := s.Connect(ctx, lan.Name, spec.Name, []string{"web"}); err != nil {
		t.Fatalf("connect to a network it is on: %v", err)
	}
	if c := findContainer(r.observeSwarm(ctx), spec.Name); !slices.Equal(c.Networks, []string{lan.Name}) {
		t.Fatalf("after disconnect: networks %v", c.Networks)
	}

	// A rolling update (start-first) never leaves the service without a
	// running task.
	spec2 := spec
	spec2.Env = []string{"A=2"}
	spec2 = compile.Stamped(spec2)
	var minRunning atomic.Int64
	minRunning.Store(1 << 30)
	done := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		defer func() { polled <- n }()
		f := filters.NewArgs(filters.Arg("service", id))
		for {
			select {
			case <-done:
				return
			default:
			}
			tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
			if err != nil {
				continue
			}
			running := 0
			for _, tk := range tasks {
				if tk.Status.State == swarm.TaskStateRunning {
					running++
				}
			}
			n++
			if int64(running) < minRunning.Load() {
				minRunning.Store(int64(running))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	start := time.Now()
	err = s.UpdateContainer(ctx, id, spec2)
	close(done)
	polls := <-polled
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	t.Logf("rolling update took %s; %d task polls, fewest running tasks %d", time.Since(start).Round(time.Millisecond), polls, minRunning.Load())
	if polls < 5 || minRunning.Load() < 1 {
		t.Fatalf("start-first update: %d polls, fewest running tasks %d; want never 0", polls, minRunning.Load())
	}
	c = findContainer(r.observeSwarm(ctx), spec.Name)
	if c.State != "running" || c.Labels[state.LabelSpecHash] != spec2.Labels[state.LabelSpecHash] {
		t.Fatalf("after the update: %s, hash %s, want running %s", c.State, c.Labels[state.LabelSpecHash], spec2.Labels[state.LabelSpecHash])
	}

	// A container started by hand on the attachable overlay is seen as
	// an unmanaged container on it (moat labels from anywhere ignored),
	// and can be evicted.
	hand, err := s.cli.ContainerCreate(ctx, &container.Config{Image: r.image, Labels: r.managed()},
		&container.HostConfig{NetworkMode: container.NetworkMode(lan.Name)}, nil, nil, r.prefix+"-intruder")
	if err != nil {
		t.Fatalf("hand container: %v", err)
	}
	if err := s.cli.ContainerStart(ctx, hand.ID, container.StartOptions{}); err != nil {
		t.Fatalf("hand container: start: %v", err)
	}
	obs = r.observeSwarm(ctx)
	h := findContainer(obs, r.prefix+"-intruder")
	if h == nil || !slices.Equal(h.Networks, []string{lan.Name}) || state.Managed(h.Labels, r.prefix) {
		t.Fatalf("hand-started container: %+v, want unmanaged on %s", h, lan.Name)
	}
	if len(obs.Containers) != 2 {
		t.Fatalf("observed %d containers, want the service and the intruder (task containers are not containers): %+v", len(obs.Containers), obs.Containers)
	}
	if err := s.Disconnect(ctx, lan.Name, hand.ID); err != nil {
		t.Fatalf("evict the intruder: %v", err)
	}
	if h := findContainer(r.observeSwarm(ctx), r.prefix+"-intruder"); h != nil {
		t.Fatalf("intruder still seen after eviction: %+v", h)
	}

	// Removal: the service and its task containers, then its network
	// and secret (which wait for nothing more), then nothing is left.
	if err := s.RemoveContainer(ctx, id, 5); err != nil {
		t.Fatalf("remove service: %v", err)
	}
	if err := s.RemoveContainer(ctx, id, 5); err != nil {
		t.Fatalf("remove a removed service: %v", err)
	}
	if err := s.RemoveSecret(ctx, secName); err != nil {
		t.Fatalf("remove secret: %v", err)
	}
	for _, n := range []string{lan.Name, other.Name} {
		if err := s.RemoveNetwork(ctx, n); err != nil {
			t.Fatalf("remove network %s: %v", n, err)
		}
	}
	obs = r.observeSwarm(ctx)
	if len(obs.Containers) != 0 || len(obs.Networks) != 0 || len(obs.Secrets) != 0 {
		t.Fatalf("left after removal: %+v", obs)
	}
}

// The event stream carries the instance's secret and service events and
// not another instance's.
func TestSwarmEvents(t *testing.T) {
	s := connectSwarm(t, Options{})
	r := newSwarmRun(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs, errc := s.Events(ctx, r.prefix)
	time.Sleep(500 * time.Millisecond) // the stream is open once the engine answered
	src := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(src, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	labels := r.labels(map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: r.prefix})
	for _, name := range []string{"other" + r.prefix, r.prefix + "--acme--v--0123456789ab"} {
		if _, err := s.CreateSecret(ctx, state.SecretSpec{Name: name, Source: src, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("stream ended: %v", <-errc)
			}
			if ev.Type == "secret" && ev.Name == "other"+r.prefix {
				t.Fatalf("event of another instance's secret: %+v", ev)
			}
			if ev.Type == "secret" && ev.Action == "create" && ev.Name == r.prefix+"--acme--v--0123456789ab" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no secret create event")
		}
	}
}

// A service whose task cannot run (no such image: moat never pulls) is
// an error naming the task's error, and leaves no service behind.
func TestSwarmCreateFails(t *testing.T) {
	s := connectSwarm(t, Options{Timeouts: Timeouts{Write: 30 * time.Second}})
	r := newSwarmRun(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := r.hardened(r.prefix+"--acme--web--1", "", "")
	spec.Networks, spec.Mounts = nil, nil
	spec.Image = "localhost/" + r.prefix + "-missing:1"
	_, err := s.CreateContainer(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), "moat never pulls") {
		t.Fatalf("err = %v, want the task's no-such-image error", err)
	}
	t.Logf("create error: %v", err)
	if c := findContainer(r.observeSwarm(ctx), spec.Name); c != nil {
		t.Fatalf("a failed create left %+v", c)
	}
}
