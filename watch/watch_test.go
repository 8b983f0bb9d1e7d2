package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine/fake"
)

// fixture is the example platform in a temp dir, with its secret store.
type fixture struct {
	t       *testing.T
	dir     string
	secrets string
	eng     *fake.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "config"), secrets: filepath.Join(t.TempDir(), "secrets"), eng: fake.New()}
	if err := os.CopyFS(f.dir, os.DirFS("../examples/platform")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(f.secrets, os.DirFS("../examples/platform-secrets")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) edit(rel, old, new string) {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, rel))
	if err != nil {
		f.t.Fatal(err)
	}
	s := strings.Replace(string(b), old, new, 1)
	if s == string(b) {
		f.t.Fatalf("edit of %s changed nothing", rel)
	}
	f.write(rel, s)
}

func (f *fixture) watcher(opts Options) *Watcher {
	f.t.Helper()
	src, err := NewDirSource(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	src.Quiet, src.MaxDelay = 50*time.Millisecond, 500*time.Millisecond
	if opts.Source == nil {
		opts.Source = src
	}
	opts.Engine = f.eng
	opts.Load = controller.LoadOptions{SecretsDir: f.secrets}
	return New(opts)
}

func once(t *testing.T, w *Watcher, reasons ...string) Result {
	t.Helper()
	m := map[string]bool{}
	for _, r := range reasons {
		m[r] = true
	}
	if len(m) == 0 {
		m["start"] = true
	}
	return w.Round(context.Background(), m)
}

func TestInvalidRevisionKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{})
	if res := once(t, w); res != Applied {
		t.Fatalf("first round: %s (%s)", res, w.Status().LastError)
	}
	good := w.Status().LastApplied.Revision
	if res := once(t, w, "resync"); res != Converged {
		t.Fatalf("second round: %s", res)
	}

	// An invalid edit: privileged is refused by the schema.
	f.edit("tenants/acme/web.yaml", "kind: App", "kind: App\nprivileged: true")
	f.eng.ResetCalls()
	if res := once(t, w, "source"); res != Invalid {
		t.Fatalf("invalid revision: %s", res)
	}
	s := w.Status()
	if s.LastApplied.Revision != good || s.LastSeen == nil || s.LastSeen.Valid || len(s.LastSeen.Diagnostics) == 0 {
		t.Fatalf("status after invalid: %+v %+v", s.LastApplied, s.LastSeen)
	}
	if d := s.LastSeen.Diagnostics[0]; !strings.Contains(d, "tenants/acme/web.yaml:") {
		t.Errorf("diagnostic without file:line: %q", d)
	}
	if calls := f.eng.Calls(); len(calls) != 1 || calls["Observe"] != 1 {
		t.Errorf("engine calls for an invalid revision: %v (want one Observe, no writes)", calls)
	}
	// Drift is still reverted against the last good revision.
	if err := f.eng.Stop("demo.acme.web.1"); err != nil {
		t.Fatal(err)
	}
	if res := once(t, w, "event"); res != Invalid {
		t.Fatalf("drift round: %s", res)
	}
	if c, _ := f.eng.Container("demo.acme.web.1"); c.State != "running" {
		t.Errorf("drift not reverted: %s", c.State)
	}
	if w.Status().DriftCorrected == 0 {
		t.Error("drift not counted")
	}
	// The next valid revision is applied.
	f.edit("tenants/acme/web.yaml", "kind: App\nprivileged: true", "kind: App")
	f.edit("tenants/acme/web.yaml", "APP_NAME: web", "APP_NAME: web2")
	if res := once(t, w, "source"); res != Applied {
		t.Fatalf("fixed revision: %s (%s)", res, w.Status().LastError)
	}
	if s := w.Status(); s.LastApplied.Revision == good || !s.LastSeen.Valid {
		t.Errorf("fixed revision not in force: %+v", s)
	}
}

func TestResyncOfUnchangedRevisionIsOneObserve(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{})
	if res := once(t, w); res != Applied {
		t.Fatalf("first round: %s", res)
	}
	f.eng.ResetCalls()
	for range 3 {
		if res := once(t, w, "resync"); res != Converged {
			t.Fatalf("resync: %s", res)
		}
	}
	if calls := f.eng.Calls(); len(calls) != 1 || calls["Observe"] != 3 {
		t.Errorf("engine calls for 3 resyncs: %v, want 3 Observe only", calls)
	}
	if len(w.repos) != 1 {
		t.Errorf("validation cache: %d entries", len(w.repos))
	}
}

func TestGuardRefusalNotRetriedUntilRevisionChanges(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{})
	if res := once(t, w); res != Applied {
		t.Fatalf("first round: %s", res)
	}
	good := w.Status().LastApplied.Revision
	// Removing two of the three tenants removes most containers.
	os.RemoveAll(filepath.Join(f.dir, "tenants/acme"))
	os.RemoveAll(filepath.Join(f.dir, "tenants/globex"))
	if res := once(t, w, "source"); res != Refused {
		t.Fatalf("mass delete: %s (%s)", res, w.Status().LastError)
	}
	if w.Status().LastApplied.Revision != good {
		t.Fatal("refused revision in force")
	}
	f.eng.ResetCalls()
	if res := once(t, w, "resync"); res != Refused {
		t.Fatalf("resync after refusal: %s", res)
	}
	if calls := f.eng.Calls(); calls["Observe"] != 1 || len(calls) != 1 {
		t.Errorf("refused revision retried: %v", calls)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	w := New(Options{Source: &DirSource{}, BackoffMin: time.Second, BackoffMax: 8 * time.Second})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		w.failures = n
		for range 20 {
			if d := w.backoff(); d < want*8/10 || d > want*12/10 {
				t.Fatalf("failures %d: backoff %v, want %v ±20%%", n, d, want)
			}
		}
	}
}

func TestRunRevertsDriftFromEventsAndCoalesces(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{Resync: time.Hour})
	runInBackground(t, w)
	waitFor(t, 5*time.Second, "first apply", func() bool { return w.Ready() })
	time.Sleep(300 * time.Millisecond) // the event stream is open
	rounds := w.Status().Rounds
	if err := f.eng.Remove("demo.acme.web.1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "drift reverted", func() bool {
		c, ok := f.eng.Container("demo.acme.web.1")
		return ok && c.State == "running" && w.Status().DriftCorrected > 0
	})
	// The re-create itself is moat's own doing; at most a couple of rounds.
	time.Sleep(200 * time.Millisecond)
	if n := w.Status().Rounds - rounds; n > 3 {
		t.Errorf("%d rounds for one drift event", n)
	}
	// A lost stream: not ready until a round succeeds again.
	f.eng.CutEvents()
	waitFor(t, 3*time.Second, "reconverged after the stream was cut", func() bool {
		return w.Status().Rounds > rounds+1 && w.Ready()
	})
}

// TestEventBeforeItsChangeIsSeen: Docker logs a network connect before the
// container list shows it, so the round an event starts can find nothing
// to do. The watcher looks once more a moment after the last event of a
// burst; without that the drift waited for the next resync (an hour here).
func TestEventBeforeItsChangeIsSeen(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{Resync: time.Hour})
	runInBackground(t, w)
	waitFor(t, 5*time.Second, "first apply", func() bool { return w.Ready() })
	time.Sleep(300 * time.Millisecond) // the event stream is open
	rounds := w.Status().Rounds
	f.eng.Publish("container", "destroy", "demo.acme.web.1")
	waitFor(t, 3*time.Second, "the event's round", func() bool { return w.Status().Rounds > rounds })
	f.eng.Quietly(func() {
		if err := f.eng.Remove("demo.acme.web.1"); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, 5*time.Second, "drift reverted by the settle round", func() bool {
		c, ok := f.eng.Container("demo.acme.web.1")
		return ok && c.State == "running"
	})
}

// runInBackground runs w until the test ends, and fails the test if Run
// returns an error.
func runInBackground(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
