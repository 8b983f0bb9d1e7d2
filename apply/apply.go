// Package apply executes a plan: it walks the operations' dependency graph
// with bounded parallelism and makes one engine call per operation (a
// recreate is the remove and the create of one container, kept together so
// that nothing else can claim the name in between). It decides nothing: what
// to do and in which order is the plan's.
package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/reconcile"
)

// Outcome is the result vocabulary of one operation (after Flux's ssa).
type Outcome string

const (
	Created  Outcome = "created"
	Replaced Outcome = "replaced"
	// Updated: a Swarm service's rolling update completed.
	Updated      Outcome = "updated"
	Started      Outcome = "started"
	Unpaused     Outcome = "unpaused"
	Connected    Outcome = "connected"
	Disconnected Outcome = "disconnected"
	Deleted      Outcome = "deleted"
	Reported     Outcome = "reported"
	Failed       Outcome = "failed"
	// Skipped: not run because an operation it depends on failed or the
	// run was cancelled.
	Skipped Outcome = "skipped"
)

// Result is what happened to one operation.
type Result struct {
	Op       *reconcile.Operation
	Outcome  Outcome
	Err      error
	Duration time.Duration
}

// DefaultParallel operations in flight. The engine is the bottleneck
// (container start dominates); on a quiet 2-core host 4 to 32 in flight
// finish a 50-container apply in the same time, and under load 16 was 27%
// faster than 4 (docs/BENCHMARKS.md), so a wider default costs nothing.
const DefaultParallel = 8

// DefaultGrace is how long operations in flight may go on after ctx is
// cancelled (the first SIGINT/SIGTERM) before their engine calls are
// cancelled too. Long enough for a create to finish its connect and start
// (a container left created but not started is taken over by the next
// apply anyway), short enough that an interrupt is obeyed promptly.
const DefaultGrace = 10 * time.Second

// Options tune the executor.
type Options struct {
	// Parallel is the number of operations in flight (DefaultParallel).
	Parallel int
	// OnResult, if set, is called once per finished operation, from the
	// executor's goroutines (one at a time).
	OnResult func(Result)
	// Grace is how long operations in flight may run on after ctx ends
	// (DefaultGrace; negative: not at all). The engine's own call
	// deadlines bound them in any case.
	Grace time.Duration
	// Firewall carries out host rule operations; a plan with such
	// operations fails them without one.
	Firewall engine.Firewall
}

// Run executes p against eng and returns one Result per operation in plan
// order. The error is non-nil when any operation failed or ctx ended; the
// results then tell which. A rerun of a fresh plan converges after any
// failure, because every engine call is idempotent or guarded.
func Run(ctx context.Context, eng engine.Engine, p *reconcile.Plan, opts Options) ([]Result, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	n := len(p.Operations)
	index := make(map[string]int, n)
	for i := range p.Operations {
		if _, dup := index[p.Operations[i].ID]; dup {
			return nil, fmt.Errorf("plan has operation %s twice", p.Operations[i].ID)
		}
		index[p.Operations[i].ID] = i
	}
	// waiting[i] counts unfinished dependencies; dependents[j] lists the
	// operations that wait for j.
	waiting := make([]int, n)
	dependents := make([][]int, n)
	for i := range p.Operations {
		for _, d := range p.Operations[i].DependsOn {
			j, ok := index[d]
			if !ok {
				return nil, fmt.Errorf("operation %s depends on unknown operation %s", p.Operations[i].ID, d)
			}
			waiting[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	if err := checkAcyclic(waiting, dependents); err != nil {
		return nil, err
	}

	results := make([]Result, n)
	for i := range results {
		results[i] = Result{Op: &p.Operations[i], Outcome: Skipped}
	}
	var (
		mu       sync.Mutex
		failed   = make([]bool, n)
		ready    = make(chan int, n)
		wg       sync.WaitGroup
		finished int
		done     = make(chan struct{})
		// down is set by the first operation that failed because the
		// engine did not answer (or could not be reached): starting more
		// would only wait out one deadline after another.
		down bool
	)
	for i := range waiting {
		if waiting[i] == 0 {
			ready <- i
		}
	}
	// finish records i's outcome and releases its dependents; a failed or
	// skipped operation poisons everything downstream of it.
	var finish func(i int, r Result)
	finish = func(i int, r Result) {
		results[i] = r
		if r.Outcome == Failed || r.Outcome == Skipped {
			failed[i] = true
		}
		if errors.Is(r.Err, engine.ErrUnreachable) {
			down = true
		}
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		finished++
		for _, k := range dependents[i] {
			if failed[i] {
				failed[k] = true
			}
			waiting[k]--
			if waiting[k] == 0 {
				ready <- k
			}
		}
		if finished == n {
			close(done)
		}
	}
	if n == 0 {
		return results, nil
	}
	sem := make(chan struct{}, opts.Parallel)
	// Cancelling ctx stops new operations; those in flight go on for the
	// grace period on a context that ignores it, so that an interrupt does
	// not leave a container created but never started, and are cancelled
	// after it (their engine calls have deadlines too, so even an engine
	// that stopped answering cannot hold the run beyond grace plus one
	// cleanup deadline).
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	stopGrace := context.AfterFunc(ctx, func() {
		if opts.Grace < 0 {
			cancelCalls()
			return
		}
		t := time.AfterFunc(opts.Grace, cancelCalls)
		context.AfterFunc(callCtx, func() { t.Stop() })
	})
	defer stopGrace()
loop:
	for {
		select {
		case <-done:
			break loop
		case i := <-ready:
			// Take a slot first, then decide: the operation that frees it
			// may just have found the engine down.
			sem <- struct{}{}
			mu.Lock()
			skip := failed[i] || down || ctx.Err() != nil
			if skip {
				finish(i, Result{Op: &p.Operations[i], Outcome: Skipped})
				mu.Unlock()
				<-sem
				continue
			}
			mu.Unlock()
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				r := execute(callCtx, eng, opts.Firewall, p.Instance, &p.Operations[i])
				mu.Lock()
				finish(i, r)
				mu.Unlock()
			}(i)
		}
	}
	wg.Wait()
	return results, summarise(ctx, results, down)
}

// execute makes the engine call(s) for one operation.
func execute(ctx context.Context, eng engine.Engine, fw engine.Firewall, instance string, op *reconcile.Operation) Result {
	start := time.Now()
	var (
		outcome Outcome
		err     error
	)
	if op.Resource.Kind == reconcile.KindHostRules {
		outcome, err = callFirewall(ctx, fw, instance, op)
	} else {
		outcome, err = call(ctx, eng, op)
	}
	r := Result{Op: op, Outcome: outcome, Duration: time.Since(start)}
	if err != nil {
		r.Outcome, r.Err = Failed, err
	}
	return r
}

func call(ctx context.Context, eng engine.Engine, op *reconcile.Operation) (Outcome, error) {
	name := op.Resource.Name
	switch op.Verb {
	case reconcile.VerbCreateNetwork:
		if op.NetworkSpec == nil {
			return Failed, fmt.Errorf("%s: no network spec", op.ID)
		}
		_, err := eng.CreateNetwork(ctx, *op.NetworkSpec)
		return Created, err
	case reconcile.VerbRemoveNetwork:
		return Deleted, eng.RemoveNetwork(ctx, name)
	case reconcile.VerbCreateVolume:
		if op.VolumeSpec == nil {
			return Failed, fmt.Errorf("%s: no volume spec", op.ID)
		}
		return Created, eng.CreateVolume(ctx, *op.VolumeSpec)
	case reconcile.VerbRemoveVolume:
		return Deleted, eng.RemoveVolume(ctx, name)
	case reconcile.VerbCreate:
		if op.ContainerSpec == nil {
			return Failed, fmt.Errorf("%s: no container spec", op.ID)
		}
		if err := ensureVolumes(ctx, eng, op); err != nil {
			return Failed, err
		}
		_, err := eng.CreateContainer(ctx, compile.Stamped(*op.ContainerSpec))
		return Created, err
	case reconcile.VerbRecreate:
		if op.ContainerSpec == nil {
			return Failed, fmt.Errorf("%s: no container spec", op.ID)
		}
		if err := ensureVolumes(ctx, eng, op); err != nil {
			return Failed, err
		}
		if err := eng.RemoveContainer(ctx, liveRef(op), op.StopTimeout); err != nil {
			return Failed, err
		}
		_, err := eng.CreateContainer(ctx, compile.Stamped(*op.ContainerSpec))
		return Replaced, err
	case reconcile.VerbUpdate:
		if op.ContainerSpec == nil {
			return Failed, fmt.Errorf("%s: no container spec", op.ID)
		}
		up, ok := eng.(engine.Updater)
		if !ok {
			return Failed, fmt.Errorf("%s: this engine cannot update a container in place (a plan for Swarm applied to a single-host engine?)", op.ID)
		}
		if err := ensureVolumes(ctx, eng, op); err != nil {
			return Failed, err
		}
		return Updated, up.UpdateContainer(ctx, liveRef(op), compile.Stamped(*op.ContainerSpec))
	case reconcile.VerbCreateSecret, reconcile.VerbRemoveSecret:
		return callSecrets(ctx, eng, op)
	case reconcile.VerbRemove:
		return Deleted, eng.RemoveContainer(ctx, liveRef(op), op.StopTimeout)
	case reconcile.VerbStart:
		return Started, eng.StartContainer(ctx, liveRef(op))
	case reconcile.VerbUnpause:
		return Unpaused, eng.UnpauseContainer(ctx, liveRef(op))
	case reconcile.VerbConnect:
		return Connected, eng.Connect(ctx, op.Network, liveRef(op), op.Aliases)
	case reconcile.VerbDisconnect:
		return Disconnected, eng.Disconnect(ctx, op.Network, liveRef(op))
	case reconcile.VerbReport, reconcile.VerbKeepVolume:
		return Reported, nil
	case reconcile.VerbConnectPeer, reconcile.VerbForgetPeer:
		pe, ok := eng.(engine.Peers)
		if !ok {
			return Failed, fmt.Errorf("%s: the engine drives no Weave router", op.ID)
		}
		if op.Verb == reconcile.VerbConnectPeer {
			return Connected, pe.ConnectPeer(ctx, name)
		}
		return Deleted, pe.ForgetPeer(ctx, name)
	}
	return Failed, fmt.Errorf("%s: unknown verb %q", op.ID, op.Verb)
}

// callSecrets makes the secret store call of a secret operation. The
// store reads a value only when it creates its version, from the source
// path; the plan and moat never hold it.
func callSecrets(ctx context.Context, eng engine.Engine, op *reconcile.Operation) (Outcome, error) {
	st, ok := eng.(engine.SecretStore)
	if !ok {
		return Failed, fmt.Errorf("%s: this engine has no secret store (a plan for Swarm applied to a single-host engine?)", op.ID)
	}
	if op.Verb == reconcile.VerbRemoveSecret {
		return Deleted, st.RemoveSecret(ctx, op.Resource.Name)
	}
	if op.SecretSpec == nil {
		return Failed, fmt.Errorf("%s: no secret spec", op.ID)
	}
	_, err := st.CreateSecret(ctx, *op.SecretSpec)
	return Created, err
}

// callFirewall makes the firewall call of a host rule operation.
func callFirewall(ctx context.Context, fw engine.Firewall, instance string, op *reconcile.Operation) (Outcome, error) {
	if fw == nil {
		return Failed, fmt.Errorf("%s: no host firewall to apply host rules with", op.ID)
	}
	switch op.Verb {
	case reconcile.VerbEnsureRules:
		if op.HostRulesSpec == nil {
			return Failed, fmt.Errorf("%s: no host rules spec", op.ID)
		}
		if op.Action == reconcile.Create {
			return Created, fw.Ensure(ctx, instance, *op.HostRulesSpec)
		}
		return Replaced, fw.Ensure(ctx, instance, *op.HostRulesSpec)
	case reconcile.VerbRemoveRules:
		return Deleted, fw.Remove(ctx, instance, op.Resource.Name)
	}
	return Failed, fmt.Errorf("%s: unknown verb %q", op.ID, op.Verb)
}

// NeedsFirewall reports whether p has host rule operations (so that the
// caller checks the firewall permission before anything runs).
func NeedsFirewall(p *reconcile.Plan) bool {
	for i := range p.Operations {
		if p.Operations[i].Resource.Kind == reconcile.KindHostRules {
			return true
		}
	}
	return false
}

// ensureVolumes creates the volumes a container create carries (when the
// snapshot did not list volumes); creating an existing one is a no-op.
func ensureVolumes(ctx context.Context, eng engine.Engine, op *reconcile.Operation) error {
	for _, v := range op.EnsureVolumes {
		if err := eng.CreateVolume(ctx, v); err != nil {
			return fmt.Errorf("ensure volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// liveRef is the engine reference of the live object: its id when the plan
// saw one, else its name.
func liveRef(op *reconcile.Operation) string {
	if op.LiveID != "" {
		return op.LiveID
	}
	return op.Resource.Name
}

// checkAcyclic refuses a plan whose dependencies loop (a corrupt saved
// plan); the executor would otherwise wait forever.
func checkAcyclic(waiting []int, dependents [][]int) error {
	w := append([]int(nil), waiting...)
	var queue []int
	for i, c := range w {
		if c == 0 {
			queue = append(queue, i)
		}
	}
	seen := 0
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		seen++
		for _, k := range dependents[i] {
			if w[k]--; w[k] == 0 {
				queue = append(queue, k)
			}
		}
	}
	if seen != len(w) {
		return errors.New("plan dependencies form a cycle")
	}
	return nil
}

// summarise is the run's error: what failed, and why the rest was not
// started. An interrupt is said first (errors.Is(err, context.Canceled)
// holds), so that the CLI reports it as such even when operations in
// flight failed because of it.
func summarise(ctx context.Context, results []Result, down bool) error {
	var msgs []string
	skipped := 0
	for _, r := range results {
		switch r.Outcome {
		case Failed:
			msgs = append(msgs, fmt.Sprintf("%s: %v", r.Op.ID, r.Err))
		case Skipped:
			skipped++
		}
	}
	var why []string
	if err := ctx.Err(); err != nil {
		why = append(why, fmt.Sprintf("apply interrupted (%v): %d operation(s) not started; run apply again to finish", err, skipped))
	} else if down && skipped > 0 {
		why = append(why, fmt.Sprintf("the engine stopped answering: %d operation(s) not started", skipped))
	}
	if len(msgs) > 0 {
		why = append(why, fmt.Sprintf("%d operation(s) failed:\n  %s", len(msgs), strings.Join(msgs, "\n  ")))
	}
	if len(why) == 0 {
		return nil
	}
	err := errors.New(strings.Join(why, "\n"))
	if ctx.Err() != nil {
		return interrupted{err}
	}
	return err
}

// ErrInterrupted marks (errors.Is) the error of a run whose context ended
// before the plan was done.
var ErrInterrupted = errors.New("interrupted")

type interrupted struct{ error }

func (i interrupted) Unwrap() error        { return i.error }
func (i interrupted) Is(target error) bool { return target == ErrInterrupted }
