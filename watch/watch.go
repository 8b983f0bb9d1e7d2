package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/reconcile"
)

// Options configure a Watcher.
type Options struct {
	Source Source
	Engine engine.Engine
	// Instance is the platform instance the engine events are filtered on;
	// when empty it is learned from the first valid revision.
	Instance string
	Load     controller.LoadOptions
	// AllowMassDelete and Parallel are apply's flags.
	AllowMassDelete bool
	Parallel        int
	// Poll is how often a source without change notifications (git) is
	// fetched (0: never; default set by the CLI to 60 s). Jittered ±10 %.
	Poll time.Duration
	// Resync is the safety-net period of a full reconcile (0: never).
	Resync time.Duration
	// NoEvents turns off the engine event stream.
	NoEvents bool
	// BackoffMin and BackoffMax bound the exponential retry delay after a
	// failed round (defaults 1 s and 1 min); each delay is jittered.
	BackoffMin, BackoffMax time.Duration
	// RoundTimeout bounds one reconcile round (default 10 min).
	RoundTimeout time.Duration
	// StateFile keeps the last applied revision across restarts ("": not
	// kept): the signature check of the next range starts there.
	StateFile string
	Log       *slog.Logger
	Metrics   *Metrics
	// Connect, when set, is called with the instance and the engine its
	// platform chooses (state.EngineDocker or state.EngineSwarm) before
	// the first engine call for it (both are only known from a valid
	// revision): it takes the instance lock and opens the engine, which
	// replaces Engine. It is called again when a revision chooses another
	// engine (the old one is closed when it is an io.Closer, and the
	// event stream follows the new one). An error with a Held() bool
	// method that says true (the lock is held elsewhere) stops the
	// watcher; others are retried.
	Connect func(instance, engine string) (engine.Engine, error)
	// Lock describes the lock held, for /status.
	Lock LockInfo
	// Firewall is the host firewall for host protection. When nil, an
	// engine with a HostFirewall() engine.Firewall method provides it.
	Firewall engine.Firewall
}

// LockInfo is the lock this process holds.
type LockInfo struct {
	PID  int    `json:"pid"`
	Path string `json:"path"`
}

// Result of one reconcile round.
type Result string

const (
	Converged Result = "converged" // nothing to do
	Applied   Result = "applied"   // a plan was applied without errors
	Invalid   Result = "invalid"   // the newest revision does not validate
	Refused   Result = "refused"   // the newest revision was refused (guard, trust, force push)
	Failed    Result = "error"     // source, engine or apply error
)

// Watcher runs reconcile rounds, one at a time.
type Watcher struct {
	opts Options
	log  *slog.Logger
	m    *Metrics

	wake    chan struct{} // capacity 1: triggers coalesce
	trigMu  sync.Mutex
	reasons map[string]bool

	mu     sync.Mutex // guards status, eng and stopStream
	status Status
	eng    engine.Engine
	// stopStream ends the event stream of the engine in use, so that
	// events follows the engine a reconnect opened.
	stopStream context.CancelFunc

	// Owned by the goroutine running rounds.
	lastApplied string // revision id in force
	good        *revisionTarget
	current     *Revision // newest revision fetched
	repos       map[string]repoEntry
	refused     map[string]string // guard refusals by revision id
	failures    int
	reported    map[string]bool // revisions already counted as invalid/refused
	locked      string          // the instance Acquire was called for
	connected   string          // the engine kind Connect opened
	fatal       error           // stops Run: the lock is held elsewhere
}

type revisionTarget struct {
	rev  *Revision
	repo *config.Repo
}

type repoEntry struct {
	repo *config.Repo
	err  error
}

// New returns a watcher.
func New(opts Options) *Watcher {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.RoundTimeout <= 0 {
		opts.RoundTimeout = 10 * time.Minute
	}
	w := &Watcher{opts: opts, log: opts.Log, m: opts.Metrics, wake: make(chan struct{}, 1), reasons: map[string]bool{},
		repos: map[string]repoEntry{}, refused: map[string]string{}, reported: map[string]bool{}}
	w.eng = opts.Engine
	w.status.Source = opts.Source.String()
	w.status.Lock = opts.Lock
	w.status.EngineReachable = true
	if opts.StateFile != "" {
		if b, err := os.ReadFile(opts.StateFile); err == nil {
			w.lastApplied = strings.TrimSpace(string(b))
		}
	}
	return w
}

// Trigger asks for a round. Triggers that arrive while a round runs
// coalesce into one next round.
func (w *Watcher) Trigger(kind string) {
	w.m.Triggers.WithLabelValues(kind).Inc()
	w.trigMu.Lock()
	w.reasons[kind] = true
	w.trigMu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) takeReasons() map[string]bool {
	w.trigMu.Lock()
	defer w.trigMu.Unlock()
	r := w.reasons
	w.reasons = map[string]bool{}
	return r
}

// Status returns a copy of the status.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.status
	if s.LastSeen != nil {
		seen := *s.LastSeen
		seen.Diagnostics = slices.Clone(seen.Diagnostics)
		s.LastSeen = &seen
	}
	return s
}

// Ready: a round has converged and the engine is reachable.
func (w *Watcher) Ready() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status.Ready
}

func (w *Watcher) update(f func(s *Status)) {
	w.mu.Lock()
	f(&w.status)
	ready := w.status.LastApplied != nil && w.status.EngineReachable
	w.status.Ready = ready
	w.mu.Unlock()
	if ready {
		w.m.Ready.Set(1)
	} else {
		w.m.Ready.Set(0)
	}
}

// Run reconciles until ctx ends: at start, then on every trigger. It
// returns nil after ctx ended and the round in flight (if any) has let
// its operations in flight finish.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.opts.Source.Watch(ctx, func() { w.Trigger("source") }); err != nil {
			w.log.Error("source watch ended", "source", w.opts.Source.String(), "err", err)
		}
	}()
	if !w.opts.NoEvents {
		wg.Add(1)
		go func() { defer wg.Done(); w.events(ctx) }()
	}
	poll := newJitterTimer(w.opts.Poll)
	defer poll.Stop()
	resync := newJitterTimer(w.opts.Resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	w.Trigger("start")
	w.setNextResync(resync)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-poll.C():
			poll.Reset()
			w.Trigger("poll")
			continue
		case <-resync.C():
			resync.Reset()
			w.setNextResync(resync)
			w.Trigger("resync")
			continue
		case <-retry.C:
			w.Trigger("retry")
			continue
		}
		reasons := w.takeReasons()
		res := w.Round(ctx, reasons)
		if w.fatal != nil {
			return w.fatal
		}
		if ctx.Err() != nil {
			return nil
		}
		if res == Failed {
			retry.Reset(w.backoff())
		} else {
			retry.Stop()
		}
	}
}

func (w *Watcher) setNextResync(t *jitterTimer) {
	w.update(func(s *Status) { s.NextResync = t.next })
}

// backoff is the delay before retrying after the n-th failure in a row:
// BackoffMin doubled each time, capped at BackoffMax, with ±20 % jitter so
// that many hosts do not retry in step.
func (w *Watcher) backoff() time.Duration {
	d := w.opts.BackoffMin
	for i := 1; i < w.failures && d < w.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.BackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Once runs a single round (moat watch --once); the error is the round's.
func (w *Watcher) Once(ctx context.Context) (Result, error) {
	res := w.Round(ctx, map[string]bool{"start": true})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fatal != nil {
		return Failed, w.fatal
	}
	if w.status.LastError != "" {
		return res, errors.New(w.status.LastError)
	}
	return res, nil
}

// events follows the engine's event stream and triggers a round on each
// relevant event. A stream that ends is opened again with backoff; the
// engine is reported unreachable meanwhile, and a round runs after a
// reconnect because events may have been missed.
func (w *Watcher) events(ctx context.Context) {
	delay := w.opts.BackoffMin
	// The engine logs some events before its container list shows the
	// change (a network connect is logged before the container's view is
	// saved), so the round an event starts can observe the state just
	// before it and find nothing to do. One more round settleDelay after
	// the last event of a burst sees it; without it such drift waited for
	// the next resync (found by TestWatchGit in CI).
	settle := time.AfterFunc(time.Hour, func() { w.Trigger("event") })
	settle.Stop()
	defer settle.Stop()
	for ctx.Err() == nil {
		instance := w.instance()
		if instance == "" {
			// Not known before the first valid revision.
			if !sleep(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		eng := w.engine()
		if eng == nil {
			if !sleep(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		started := time.Now()
		sctx, stop := context.WithCancel(ctx)
		w.mu.Lock()
		if w.eng != eng { // replaced meanwhile
			w.mu.Unlock()
			stop()
			continue
		}
		w.stopStream = stop
		w.mu.Unlock()
		evs, errc := eng.Events(sctx, instance)
		for ev := range evs {
			w.log.Debug("engine event", "type", ev.Type, "action", ev.Action, "name", ev.Name)
			w.Trigger("event")
			settle.Reset(settleDelay)
		}
		err := <-errc
		replaced := sctx.Err() != nil
		stop()
		if ctx.Err() != nil {
			return
		}
		if replaced {
			continue // the round that switched engines reconciles
		}
		w.m.EngineReconnect.Inc()
		w.log.Warn("engine event stream ended; reconnecting", "err", err, "in", delay)
		w.update(func(s *Status) { s.EngineReachable = false; s.LastError = fmt.Sprintf("event stream: %v", err) })
		if time.Since(started) > time.Minute {
			delay = w.opts.BackoffMin // it had been healthy: start over
		}
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, w.opts.BackoffMax)
		w.Trigger("event")
	}
}

func (w *Watcher) engine() engine.Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.eng
}

// setEngine replaces the engine in use, ends the event stream of the old
// one and closes it.
func (w *Watcher) setEngine(e engine.Engine) {
	w.mu.Lock()
	old, stop := w.eng, w.stopStream
	w.eng, w.stopStream = e, nil
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	if c, ok := old.(io.Closer); ok && old != e {
		c.Close()
	}
}

func (w *Watcher) instance() string {
	if w.opts.Instance != "" {
		return w.opts.Instance
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status.Instance
}

// settleDelay is how long after the last engine event of a burst the
// watcher looks again (see events).
const settleDelay = time.Second

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitterTimer fires every period ±10 %; a zero period never fires.
type jitterTimer struct {
	period time.Duration
	t      *time.Timer
	next   time.Time
}

func newJitterTimer(period time.Duration) *jitterTimer {
	j := &jitterTimer{period: period}
	if period > 0 {
		j.t = time.NewTimer(time.Hour)
		j.Reset()
	}
	return j
}

func (j *jitterTimer) Reset() {
	if j.t == nil {
		return
	}
	d := time.Duration(float64(j.period) * (0.9 + 0.2*rand.Float64()))
	j.next = time.Now().Add(d).UTC()
	j.t.Reset(d)
}

func (j *jitterTimer) C() <-chan time.Time {
	if j.t == nil {
		return nil
	}
	return j.t.C
}

func (j *jitterTimer) Stop() {
	if j.t != nil {
		j.t.Stop()
	}
}

// errGuard marks a guard refusal.
var errGuard = errors.New("guard refused")

func opOutcome(r apply.Result) string { return string(r.Outcome) }

func planCounts(p *reconcile.Plan) map[string]int {
	out := map[string]int{}
	for i := range p.Operations {
		out[string(p.Operations[i].Verb)]++
	}
	return out
}
