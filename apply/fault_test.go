package apply_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/state"
)

// hanging is an engine whose container creates never answer until their
// context ends: an engine that stopped answering, without deadlines of
// its own.
type hanging struct {
	*fake.Engine
	started atomic.Int32
}

func (h *hanging) CreateContainer(ctx context.Context, _ state.ContainerSpec) (string, error) {
	h.started.Add(1)
	<-ctx.Done()
	return "", ctx.Err()
}

// The first interrupt is obeyed within the grace period even when the
// calls in flight never return by themselves: they are cancelled after
// it, and the error says "interrupted".
func TestInterruptBoundedByGrace(t *testing.T) {
	eng := &hanging{Engine: fake.New()}
	d := desired(t)
	p := plan(t, eng.Engine, d)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for eng.started.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	const grace = 200 * time.Millisecond
	start := time.Now()
	_, err := apply.Run(ctx, eng, p, apply.Options{Grace: grace})
	took := time.Since(start)
	if !errors.Is(err, apply.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if took > grace+2*time.Second {
		t.Fatalf("Run took %s after the interrupt, grace %s", took, grace)
	}
}

// unreachable fails every container create as an engine that does not
// answer does (the driver's deadline fired).
type unreachable struct {
	*fake.Engine
	creates atomic.Int32
}

func (u *unreachable) CreateContainer(context.Context, state.ContainerSpec) (string, error) {
	u.creates.Add(1)
	time.Sleep(20 * time.Millisecond)
	return "", fmt.Errorf("create container: %w: no answer within 1s", engine.ErrUnreachable)
}

// Once the engine stopped answering, no new operation is started: each
// would only wait out its own deadline.
func TestEngineDownStopsNewOperations(t *testing.T) {
	eng := &unreachable{Engine: fake.New()}
	d := desired(t)
	p := plan(t, eng.Engine, d)
	creates := 0
	for _, op := range p.Operations {
		if op.ContainerSpec != nil {
			creates++
		}
	}
	if creates < 3 {
		t.Fatalf("fixture plan has %d creates; the test needs more than its parallelism", creates)
	}
	results, err := apply.Run(context.Background(), eng, p, apply.Options{Parallel: 1})
	if err == nil || errors.Is(err, apply.ErrInterrupted) {
		t.Fatalf("err = %v, want a failure that is not an interrupt", err)
	}
	if n := eng.creates.Load(); n != 1 {
		t.Errorf("%d creates sent to an engine that stopped answering, want 1", n)
	}
	skipped := 0
	for _, r := range results {
		if r.Outcome == apply.Skipped {
			skipped++
		}
	}
	if skipped == 0 {
		t.Errorf("nothing skipped")
	}
	t.Log(err)
}
