package faults

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moat-platform/moat/internal/faultproxy"
)

// bound is the generous limit on the time a faulted run may take to end;
// the measured times are logged (docs/DESIGN.md has the worst).
const bound = 60 * time.Second

// short are the deadlines of the faulted runs: the defaults (10 s reads,
// 60 s writes, 10 s grace) would make the suite slow, not different.
var short = []string{"--engine-timeout", "2s", "--engine-write-timeout", "4s", "--grace", "2s"}

func (e *env) apply(viaProxy bool, extra ...string) result {
	e.t.Helper()
	return e.moat(viaProxy, append([]string{"apply", e.config}, extra...)...)
}

// wantFailed checks that a faulted run ended in time, with exit 1 and an
// error that says what happened.
func wantFailed(t *testing.T, what string, r result, says ...string) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("%s: want exit 1: %s", what, r)
	}
	if r.took > bound {
		t.Errorf("%s: took %s, bound %s", what, r.took, bound)
	}
	for _, s := range says {
		if strings.Contains(r.stderr, s) {
			return
		}
	}
	t.Errorf("%s: stderr says none of %q:\n%s", what, says, r.stderr)
}

// times collects time-to-exit per fault and logs them, worst last.
type times struct {
	t     *testing.T
	rows  []string
	worst time.Duration
	which string
}

func (ts *times) add(fault string, r result) {
	ts.rows = append(ts.rows, fmt.Sprintf("%-40s exit %3d after %6.2fs", fault, r.code, r.took.Seconds()))
	if r.took > ts.worst {
		ts.worst, ts.which = r.took, fault
	}
}

func (ts *times) log() {
	ts.t.Logf("time to exit per fault:\n  %s\nworst: %.2fs (%s)", strings.Join(ts.rows, "\n  "), ts.worst.Seconds(), ts.which)
}

// The engine stops answering after N calls, at 10 points spread over an
// apply from empty (N = 0 is the first ping). Each run ends within the
// bound with a clear error, and the next apply converges.
func TestBlackholeAfterN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// How many calls a healthy apply from empty makes through the proxy.
	if r := e.apply(true); r.code != 0 {
		t.Fatalf("healthy apply: %s", r)
	}
	calls := e.proxy.Calls()
	total := len(calls)
	t.Logf("a healthy apply from empty makes %d engine calls: %v", total, calls)
	if total < 10 {
		t.Fatalf("only %d calls: cannot spread 10 points", total)
	}
	ts := &times{t: t}
	var mu sync.Mutex
	t.Cleanup(ts.log) // after the parallel subtests
	for i := 0; i < 10; i++ {
		n := i * total / 10
		fault := fmt.Sprintf("blackhole after %d of %d calls (%s)", n, total, strings.Fields(calls[n])[0]+" "+shortPath(calls[n]))
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.proxy.Add(faultproxy.Rule{After: n, Action: faultproxy.Blackhole})
			r := e.apply(true, short...)
			mu.Lock()
			ts.add(fault, r)
			mu.Unlock()
			wantFailed(t, fault, r, "did not answer within", "cannot reach the Docker engine")
			e.converge()
		})
	}
}

// shortPath is a call's path with ids and names left out.
func shortPath(call string) string {
	f := strings.Fields(call)
	if len(f) < 2 {
		return call
	}
	parts := strings.Split(f[1], "/")
	if len(parts) == 4 {
		parts[2] = "{id}"
	}
	return strings.Join(parts, "/")
}

// A connection cut once (mid-apply) is retried and the apply succeeds; an
// engine whose every connection is cut from some call on ends the run
// with a clear error, and the next apply converges.
func TestCutConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := &times{t: t}
	defer ts.log()

	e.proxy.Add(faultproxy.Rule{Method: "POST", Path: `^/containers/create`, After: 1, Times: 1, Action: faultproxy.Cut})
	r := e.apply(true)
	ts.add("one cut connection (a container create)", r)
	if r.code != 0 || !strings.Contains(r.stderr, "retrying") {
		t.Fatalf("one cut connection: want exit 0 after a logged retry: %s", r)
	}
	e.converge()

	e.cleanup()
	e.proxy.Reset()
	e.proxy.Add(faultproxy.Rule{After: 6, Action: faultproxy.Cut})
	r = e.apply(true, short...)
	ts.add("every connection cut after 6 calls", r)
	wantFailed(t, "every connection cut", r, "EOF", "connection reset", "cannot reach", "did not answer")
	e.converge()
}

// A slow engine (2 s on every call) is slow, not broken: the apply
// succeeds within the bound.
func TestSlowEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.Add(faultproxy.Rule{Action: faultproxy.Pass, Delay: 2 * time.Second})
	r := e.apply(true)
	t.Logf("apply with a 2 s delay on every call: exit %d after %.2fs", r.code, r.took.Seconds())
	if r.code != 0 {
		t.Fatalf("apply with a 2 s delay on every call: %s", r)
	}
	if r.took > bound {
		t.Errorf("took %s, bound %s", r.took, bound)
	}
	e.converge()
}

// One 500 on a container create, and one on a start: each is retried
// (and the retry logged), and the apply succeeds.
func TestOne500(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := &times{t: t}
	defer ts.log()
	for _, c := range []struct{ what, path string }{
		{"one 500 on container create", `^/containers/create`},
		{"one 500 on container start", `^/containers/[^/]+/start`},
	} {
		e.cleanup()
		e.proxy.Reset()
		e.proxy.Add(faultproxy.Rule{Method: "POST", Path: c.path, Times: 1, Action: faultproxy.Status, Code: 500})
		r := e.apply(true)
		ts.add(c.what, r)
		if r.code != 0 {
			t.Fatalf("%s: want exit 0 after a retry: %s", c.what, r)
		}
		if !strings.Contains(r.stderr, "retrying") || !strings.Contains(r.stderr, "injected status 500") {
			t.Errorf("%s: the retry is not logged with its error:\n%s", c.what, r.stderr)
		}
		e.converge()
	}
}

// The first SIGTERM ends an apply within the grace period plus one
// cleanup deadline even when the engine stopped answering and the call
// deadlines are the defaults (60 s writes); the exit code says
// "interrupted" (130), and the next apply converges.
func TestSIGTERMWhileEngineHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		e.cleanup()
		e.proxy.Reset()
		before := len(e.proxy.Calls())
		const after = 6 // past observe: creates are in flight
		e.proxy.Add(faultproxy.Rule{After: after, Action: faultproxy.Blackhole})
		cmd := exec.Command(moatBin, "apply", e.config, "--grace", "2s")
		cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+e.proxy.Host())
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for len(e.proxy.Calls())-before <= after && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // let more calls pile up on the hole
		sent := time.Now()
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(bound):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v: moat did not exit within %s of the first signal\nstderr:\n%s", sig, bound, errb.String())
		}
		took := time.Since(sent)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		t.Logf("%v with the engine hanging: exit %d %.2fs after the signal", sig, code, took.Seconds())
		if code != 130 || !strings.Contains(errb.String(), "interrupted") {
			t.Fatalf("%v: exit %d, want 130 and \"interrupted\"\nstdout:\n%s\nstderr:\n%s", sig, code, out.String(), errb.String())
		}
		e.converge()
	}
}

// kill -9 at 20 points from 50 to 450 ms into an apply from empty: each
// time, one apply converges (no "Pool overlaps" from a network create the
// engine finished after moat died, no duplicate, nothing left over). Four
// instances side by side, five rounds each.
func TestKill9Converges(t *testing.T) {
	t.Parallel()
	var killed atomic.Int32
	t.Cleanup(func() {
		t.Logf("%d of 20 applies were killed mid-run", killed.Load())
		if killed.Load() < 10 {
			t.Errorf("only %d of 20 applies were killed mid-run; the test interrupted too little", killed.Load())
		}
	})
	for w := 0; w < 4; w++ {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for j := 0; j < 5; j++ {
				i := j*4 + w // rounds 0..19, spread over the workers
				d := 50*time.Millisecond + time.Duration(i)*400*time.Millisecond/19
				e.cleanup()
				cmd := exec.Command(moatBin, "apply", e.config)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(d)
				cmd.Process.Signal(syscall.SIGKILL)
				if err := cmd.Wait(); err != nil && strings.Contains(err.Error(), "killed") {
					killed.Add(1)
				}
				r := e.converge()
				t.Logf("round %2d: killed at %3d ms; re-apply exit %d after %.2fs", i+1, d.Milliseconds(), r.code, r.took.Seconds())
				if t.Failed() {
					t.Fatalf("round %d (kill at %s) did not converge in one apply", i+1, d)
				}
			}
		})
	}
}
