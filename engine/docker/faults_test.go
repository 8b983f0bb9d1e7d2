package docker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/internal/faultproxy"
	"github.com/moat-platform/moat/state"
)

// syncBuffer is a log sink safe for the driver's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// viaProxy starts a fault proxy in front of the engine e talks to and
// returns a second engine that goes through it, with short deadlines and
// its retry log in the returned buffer.
func viaProxy(t *testing.T, e *Engine, timeouts Timeouts) (*Engine, *faultproxy.Proxy, *syncBuffer) {
	t.Helper()
	upstream, ok := strings.CutPrefix(e.Host(), "unix://")
	if !ok {
		t.Skipf("the fault proxy needs a unix socket engine, not %s", e.Host())
	}
	p, err := faultproxy.Start(t.TempDir(), upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	var log syncBuffer
	e2 := connect(t, Options{Host: p.Host(), Instance: e.instance, Timeouts: timeouts,
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	return e2, p, &log
}

// A read the engine never answers ends at the read deadline, as
// ErrUnreachable, with a message naming the deadline.
func TestReadDeadline(t *testing.T) {
	e := connect(t, Options{})
	e2, p, _ := viaProxy(t, e, Timeouts{Read: time.Second})
	p.Add(faultproxy.Rule{Method: "GET", Path: `^/containers/json`, Action: faultproxy.Blackhole})
	start := time.Now()
	_, err := e2.Observe(context.Background(), "moattest-deadline", false)
	took := time.Since(start)
	if !errors.Is(err, engine.ErrUnreachable) || !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Fatalf("err = %v, want ErrUnreachable naming the 1s deadline", err)
	}
	if took > 5*time.Second {
		t.Fatalf("Observe took %s with a 1s read deadline", took)
	}
}

// One 500 on a create and one cut connection on a start are retried, and
// each retry is logged with the call and the error.
func TestRetryTransient(t *testing.T) {
	e := connect(t, Options{})
	r := newTestRun(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r.buildImage(ctx)
	e2, p, log := viaProxy(t, e, Timeouts{})
	p.Add(faultproxy.Rule{Method: "POST", Path: `^/containers/create`, Times: 1, Action: faultproxy.Status, Code: 500})
	p.Add(faultproxy.Rule{Method: "POST", Path: `^/containers/[^/]+/start`, Times: 1, Action: faultproxy.Cut})
	name := r.prefix + ".retry"
	id, err := e2.CreateContainer(ctx, state.ContainerSpec{Name: name, Image: r.image, Labels: r.managed()})
	if err != nil {
		t.Fatalf("create with one 500 and one cut: %v\nlog:\n%s", err, log)
	}
	c, err := e.cli.ContainerInspect(ctx, id)
	if err != nil || !c.State.Running {
		t.Fatalf("container after retries: %v, running %v", err, c.State != nil && c.State.Running)
	}
	for _, want := range []string{"op=\"create container " + name + "\"", "injected status 500", "op=\"start container " + id + "\""} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("retry log lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log.String(), "retrying"); n != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", n, log)
	}

	// A 404 is not transient: no retry.
	p.Reset()
	before := strings.Count(log.String(), "retrying")
	if err := e2.StartContainer(ctx, r.prefix+".nonexistent"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("start of a missing container: %v", err)
	}
	if strings.Count(log.String(), "retrying") != before {
		t.Errorf("a 404 was retried:\n%s", log)
	}
}

// A start that gets no answer fails at the write deadline, and the
// half-made container is removed under the cleanup deadline: nothing is
// left in "created".
func TestHalfMadeContainerRemoved(t *testing.T) {
	e := connect(t, Options{})
	r := newTestRun(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r.buildImage(ctx)
	e2, p, _ := viaProxy(t, e, Timeouts{Write: 2 * time.Second, Cleanup: 5 * time.Second})
	p.Add(faultproxy.Rule{Method: "POST", Path: `^/containers/[^/]+/start`, Action: faultproxy.Blackhole})
	name := r.prefix + ".half"
	start := time.Now()
	_, err := e2.CreateContainer(ctx, state.ContainerSpec{Name: name, Image: r.image, Labels: r.managed()})
	took := time.Since(start)
	if !errors.Is(err, engine.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if took > 15*time.Second {
		t.Errorf("CreateContainer took %s with a 2s write deadline", took)
	}
	if _, err := e.cli.ContainerInspect(ctx, name); err == nil || !strings.Contains(strings.ToLower(err.Error()), "no such container") {
		t.Errorf("the half-made container is still there (inspect: %v)", err)
	}
}

// A network of this instance that appeared since the plan (an interrupted
// run's create, finished by the engine) is taken over; one in the way
// that is not ours is a clear error naming it, and so is a subnet
// overlap.
func TestNetworkTakeover(t *testing.T) {
	e := connect(t, Options{Instance: ""})
	r := newTestRun(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec, id := r.createNetwork(ctx, r.prefix+"-lan", true)

	got, err := e.CreateNetwork(ctx, spec)
	if err != nil || got != id {
		t.Fatalf("second create of the same network: id %q, err %v; want the takeover of %s", got, err, id)
	}

	// Same name, other subnet: ours but not what the config says.
	other := spec
	other.Subnet, other.Gateway = "", ""
	other.Internal = false
	if _, err := e.CreateNetwork(ctx, other); err == nil || !strings.Contains(err.Error(), "differs from the config") {
		t.Errorf("takeover of a differing network: %v", err)
	}

	// Same subnet, other name: the overlap names the network in the way.
	clash := spec
	clash.Name = r.prefix + "-clash"
	if _, err := e.CreateNetwork(ctx, clash); err == nil || !strings.Contains(err.Error(), spec.Name) {
		t.Errorf("overlap error does not name %s: %v", spec.Name, err)
	}

	// Same name, not moat's.
	foreign := r.prefix + "-foreign"
	if _, err := e.cli.NetworkCreate(ctx, foreign, network.CreateOptions{Driver: "bridge", Internal: true, Labels: r.labels(nil)}); err != nil {
		t.Fatal(err)
	}
	fspec := state.NetworkSpec{Name: foreign, Driver: "bridge", Internal: true, Labels: r.managed()}
	if _, err := e.CreateNetwork(ctx, fspec); !errors.Is(err, engine.ErrNotManaged) || !strings.Contains(err.Error(), foreign) {
		t.Errorf("create over a foreign network: %v, want ErrNotManaged naming it", err)
	}
}
