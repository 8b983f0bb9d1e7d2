package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moat-platform/moat/internal/faultproxy"
)

// engineSocket is the real engine's unix socket, for the fault proxy.
func engineSocket(t *testing.T) string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			t.Fatalf("the fault proxy needs a unix socket engine, not %s", h)
		}
		return p
	}
	return "/var/run/docker.sock"
}

// isWrite says whether a proxied request changes engine state.
func isWrite(call string) bool {
	method, path, _ := strings.Cut(call, " ")
	return method != "GET" && method != "HEAD" && !strings.HasSuffix(path, "/_ping")
}

// TestWatchGit is the acceptance run of moat watch on the real engine: a
// local bare repository pushed to with the git CLI, the watcher's engine
// behind a fault proxy the test controls. The numbers it logs are those
// of docs/BENCHMARKS.md ("Watch").
func TestWatchGit(t *testing.T) {
	e := newEnv(t)
	g := newGitRepo(t, e)
	proxy, err := faultproxy.Start(t.TempDir(), engineSocket(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	viaProxy := []string{"DOCKER_HOST=" + proxy.Host()}
	w := e.startWatch(viaProxy, "--git", g.bare, "--poll", "1h", "--resync", "10m", "--backoff-min", "200ms", "--backoff-max", "1s")
	head := g.git(g.work, "rev-parse", "HEAD")
	took := until(t, 3*time.Minute, "the first revision applied", func() bool { return w.applied() == head && w.get("/readyz") == 200 })
	t.Logf("first apply of the examples: %v", took.Round(time.Millisecond))
	web1 := e.instance + ".acme.web.1"

	t.Run("webhook: a pushed commit is applied (10 commits)", func(t *testing.T) {
		// Each commit moves acme/worker onto or off the frontend LAN: one
		// connect or disconnect, so the number measures moat, not how
		// long the engine takes to recreate a container.
		var lat []time.Duration
		lans := []string{"lans: [backend]", "lans: [backend, frontend]"}
		for i := range 10 {
			g.edit("tenants/acme/worker.yaml", lans[i%2], lans[(i+1)%2])
			h := g.commit(fmt.Sprintf("worker %s", lans[(i+1)%2]))
			start := time.Now()
			if code := w.hook(true); code != http.StatusAccepted {
				t.Fatalf("webhook: %d", code)
			}
			until(t, 60*time.Second, "commit applied", func() bool { return w.applied() == h })
			lat = append(lat, time.Since(start))
		}
		t.Logf("webhook to applied, 10 commits (each one connect or disconnect): median %v, all %v", median(lat).Round(time.Millisecond), lat)
	})

	t.Run("a commit that changes nothing makes no engine write", func(t *testing.T) {
		g.edit("tenants/acme/web.yaml", "kind: App", "# a comment only\nkind: App")
		h := g.commit("comment only")
		before := len(proxy.Calls())
		w.hook(true)
		until(t, 30*time.Second, "commit applied", func() bool { return w.applied() == h })
		var writes []string
		for _, c := range proxy.Calls()[before:] {
			if isWrite(c) {
				writes = append(writes, c)
			}
		}
		t.Logf("no-op commit: %d engine calls, %d writes", len(proxy.Calls())-before, len(writes))
		if len(writes) != 0 {
			t.Errorf("engine writes for a no-op commit: %v", writes)
		}
	})

	t.Run("bad webhook signature: 401, nothing triggered; 10 MB body refused", func(t *testing.T) {
		s0, _ := w.status()
		if code := w.hook(false); code != http.StatusUnauthorized {
			t.Errorf("bad signature: %d, want 401", code)
		}
		time.Sleep(300 * time.Millisecond)
		if s1, _ := w.status(); s1.Rounds != s0.Rounds {
			t.Errorf("a badly signed webhook triggered %d rounds", s1.Rounds-s0.Rounds)
		}
		big := io.LimitReader(zeros{}, 10<<20)
		req, _ := http.NewRequest(http.MethodPost, "http://"+w.addr+"/hooks/git", big)
		req.ContentLength = 10 << 20
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("10 MB body: %d, want 413", resp.StatusCode)
			}
		} // a connection closed mid-upload is a refusal too
	})

	t.Run("an invalid commit is not applied; the next valid one is", func(t *testing.T) {
		good := w.applied()
		g.edit("tenants/acme/web.yaml", "kind: App", "kind: App\nprivileged: true")
		bad := g.commit("make web privileged")
		w.hook(true)
		until(t, 30*time.Second, "invalid revision seen", func() bool {
			s, _ := w.status()
			return s.LastSeen != nil && s.LastSeen.Revision == bad && !s.LastSeen.Valid
		})
		s, _ := w.status()
		if s.LastApplied.Revision != good {
			t.Errorf("in force %s, want the last good %s", s.LastApplied.Revision, good)
		}
		if len(s.LastSeen.Diagnostics) == 0 || !strings.Contains(s.LastSeen.Diagnostics[0], "tenants/acme/web.yaml:") {
			t.Errorf("diagnostics without file:line: %q", s.LastSeen.Diagnostics)
		}
		t.Logf("status of the invalid revision: %q", s.LastSeen.Diagnostics)
		g.edit("tenants/acme/web.yaml", "kind: App\nprivileged: true", "kind: App")
		fixed := g.commit("fix web")
		w.hook(true)
		until(t, 30*time.Second, "fixed revision applied", func() bool { return w.applied() == fixed })
	})

	t.Run("drift is reverted through the event stream (resync 10 min)", func(t *testing.T) {
		running := func(name string) func() bool {
			return func() bool {
				out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output()
				return err == nil && strings.TrimSpace(string(out)) == "true"
			}
		}
		docker(t, "stop", "-t", "0", web1)
		d1 := until(t, 60*time.Second, "stopped container restarted", running(web1))
		docker(t, "rm", "-f", web1)
		d2 := until(t, 60*time.Second, "removed container re-created", running(web1))
		// Another tenant's container attached by hand to acme's LAN.
		intruder := e.instance + ".globex.shop.1"
		lan := e.instance + ".acme.frontend"
		docker(t, "network", "connect", lan, intruder)
		d3 := until(t, 60*time.Second, "hand-made attachment removed", func() bool {
			out, _ := exec.Command("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", intruder).Output()
			return len(out) > 0 && !strings.Contains(string(out), `"`+lan+`"`)
		})
		t.Logf("drift reverted: stopped %v, removed %v, attached to another tenant's LAN %v", d1.Round(time.Millisecond), d2.Round(time.Millisecond), d3.Round(time.Millisecond))
	})

	t.Run("a second moat watch or apply for the instance exits at once", func(t *testing.T) {
		for _, args := range [][]string{
			{"watch", "--once", "--git", g.bare, "--secrets", e.secrets, "--cache-dir", e.work + "/cache2"},
			{"apply", e.config, "--secrets", e.secrets},
		} {
			cmd := exec.Command(moatBin, args...)
			// Through the real socket: the lock is the engine's, whatever
			// path reaches it.
			cmd.Env = append(os.Environ(), "MOAT_LOCK_DIR="+e.lockDir())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			cmd.Run()
			took := time.Since(start)
			code := cmd.ProcessState.ExitCode()
			msg := fmt.Sprintf("moat process %d", w.cmd.Process.Pid)
			if code != 1 || !strings.Contains(out.String(), msg) {
				t.Errorf("moat %s: exit %d, want 1 naming %q:\n%s", args[0], code, msg, out.String())
			}
			t.Logf("moat %s while watch holds the lock: exit %d after %v: %s", args[0], code, took.Round(time.Millisecond), strings.TrimSpace(out.String()))
		}
	})

	t.Run("engine connection cut: not ready, keeps running, converges after", func(t *testing.T) {
		proxy.Add(faultproxy.Rule{Action: faultproxy.Blackhole})
		proxy.CutAll()
		start := time.Now()
		notReady := until(t, 30*time.Second, "not ready", func() bool { return w.get("/readyz") == http.StatusServiceUnavailable })
		// Drift while moat cannot see the engine.
		docker(t, "stop", "-t", "0", web1)
		time.Sleep(time.Second)
		select {
		case <-w.done:
			t.Fatalf("moat watch exited while the engine was unreachable (exit %d)", w.code)
		default:
		}
		proxy.Reset()
		back := time.Now()
		conv := until(t, 60*time.Second, "ready and converged", func() bool {
			out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", web1).Output()
			return w.get("/readyz") == 200 && err == nil && strings.TrimSpace(string(out)) == "true"
		})
		t.Logf("engine cut: not ready after %v; after the connection came back (%v later), converged in %v",
			notReady.Round(time.Millisecond), back.Sub(start).Round(time.Millisecond), conv.Round(time.Millisecond))
	})

	t.Run("without a webhook a push is applied within the poll interval plus 2s", func(t *testing.T) {
		if code := w.stop(); code != 0 {
			t.Fatalf("moat watch exit %d after SIGTERM, want 0", code)
		}
		poll := 3 * time.Second
		w2 := e.startWatch(viaProxy, "--git", g.bare, "--poll", poll.String(), "--resync", "10m")
		until(t, 60*time.Second, "restarted watcher ready", func() bool { return w2.get("/readyz") == 200 })
		g.edit("tenants/acme/web.yaml", "kind: App", "# polled\nkind: App")
		h := g.commit("polled change")
		d := until(t, poll+10*time.Second, "polled commit applied", func() bool { return w2.applied() == h })
		t.Logf("push to applied by polling (--poll %v, jittered ±10%%): %v", poll, d.Round(time.Millisecond))
		if d > poll*11/10+2*time.Second {
			t.Errorf("polled commit applied after %v, want within the poll interval plus 2s", d)
		}
		w2.stop()
	})

	t.Run("200 reconcile rounds in one process: RSS flat", func(t *testing.T) {
		w3 := e.startWatch(nil, "--git", g.bare, "--poll", "1h", "--resync", "20ms", "--no-events")
		until(t, 60*time.Second, "ready", func() bool { return w3.get("/readyz") == 200 })
		s0, _ := w3.status()
		start := rss(t, w3.cmd.Process.Pid)
		until(t, 5*time.Minute, "200 rounds", func() bool { s, _ := w3.status(); return s.Rounds >= s0.Rounds+200 })
		end := rss(t, w3.cmd.Process.Pid)
		s1, _ := w3.status()
		t.Logf("RSS over %d reconcile rounds: start %d KiB, end %d KiB (%+.1f%%)", s1.Rounds-s0.Rounds, start, end, 100*float64(end-start)/float64(start))
		if float64(end) > 1.1*float64(start) {
			t.Errorf("RSS grew from %d to %d KiB over 200 rounds", start, end)
		}
		if s1.LastError != "" {
			t.Errorf("last error: %s", s1.LastError)
		}
	})
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
