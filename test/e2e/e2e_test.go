package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLifecycle walks the acceptance scenarios of plan and apply in order,
// on one instance: first apply, no-op, one-app change, drift, snapshot
// plans, bad input, tenant removal.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)

	// From an empty engine, apply creates everything.
	e.apply()
	first := e.containers()
	if len(first) == 0 {
		t.Fatal("apply created no containers")
	}
	for name := range first {
		if !strings.HasPrefix(name, e.instance+".") {
			t.Errorf("container %s does not carry the instance prefix", name)
		}
	}
	running := docker(t, "ps", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Names}}")
	if got := len(lines(running)); got != len(first) {
		t.Fatalf("%d of %d containers running after apply:\n%s", got, len(first), running)
	}

	t.Run("no-op plan is empty and costs at most 5 API calls", func(t *testing.T) {
		out, errs, code := e.moat("plan", e.config, "--secrets", e.secrets, "--detailed-exitcode", "--stats")
		if code != 0 {
			t.Fatalf("exit %d, want 0 (no changes)\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(out, "No changes") {
			t.Errorf("plan does not say No changes:\n%s", out)
		}
		m := regexp.MustCompile(`engine API calls: (\d+)`).FindStringSubmatch(errs)
		if m == nil {
			t.Fatalf("no stats in stderr:\n%s", errs)
		}
		if n, _ := strconv.Atoi(m[1]); n > 5 {
			t.Errorf("no-op plan made %d API calls, want at most 5 (ping, networks, containers, images, volumes):\n%s", n, errs)
		}
	})

	t.Run("change one app's env: one recreate per replica, others keep their ids", func(t *testing.T) {
		before := e.containers()
		e.edit("tenants/acme/web.yaml", func(s string) string {
			return strings.Replace(s, "  APP_NAME: web", "  APP_NAME: web\n  GREETING: hello", 1)
		})
		out := e.plan(2)
		web := regexp.MustCompile(regexp.QuoteMeta(e.instance) + `\.acme\.web\.\d+`)
		var recreates int
		recreate := regexp.MustCompile(`^\s*-/\+\s+container\s`)
		for _, l := range strings.Split(out, "\n") {
			if recreate.MatchString(l) {
				if !web.MatchString(l) || !strings.Contains(l, "spec changed: env") {
					t.Errorf("unexpected recreate line: %q", l)
				}
				recreates++
			}
		}
		if recreates != 2 {
			t.Fatalf("want 2 recreates (web has 2 replicas), got %d:\n%s", recreates, out)
		}
		if !strings.Contains(out, "2 to recreate") {
			t.Errorf("summary missing:\n%s", out)
		}
		e.apply()
		after := e.containers()
		for name, id := range before {
			changed := after[name] != id
			if web.MatchString(name) != changed {
				t.Errorf("container %s: id changed=%v, want changed only for acme web", name, changed)
			}
		}
		e.plan(0)
	})

	t.Run("drift: stop, rm -f, connect to another tenant's LAN", func(t *testing.T) {
		names := e.containers()
		stopped := e.instance + ".acme.api.1"
		removed := e.instance + ".globex.shop.1"
		intruder := e.instance + ".acme.web.1"
		otherLan := e.instance + ".globex.storefront"
		for _, n := range []string{stopped, removed, intruder} {
			if _, ok := names[n]; !ok {
				t.Fatalf("example container %s not found in %v", n, names)
			}
		}
		docker(t, "stop", "-t", "1", stopped)
		docker(t, "rm", "-f", removed)
		docker(t, "network", "connect", otherLan, intruder)
		out := e.plan(2)
		for _, want := range []string{stopped, "stopped", removed, "missing", otherLan, "attached to a network it must not be on"} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q:\n%s", want, out)
			}
		}
		e.apply()
		e.plan(0)
		nets := docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", intruder)
		if strings.Contains(nets, otherLan) {
			t.Errorf("%s still attached to %s", intruder, otherLan)
		}
	})

	t.Run("unmanaged container on a tenant LAN: reported, evicted on request, never removed", func(t *testing.T) {
		lan := e.instance + ".acme.backend"
		name := e.instance + "-unmanaged"
		docker(t, "run", "-d", "--name", name, "--label", "org.moat.test=true", "--network", lan,
			"--read-only", "--cap-drop", "ALL", "localhost/moat-examples/probe:1")
		out := e.plan(0) // a report is not a change
		if !strings.Contains(out, name) || !strings.Contains(out, "unmanaged") {
			t.Errorf("plan does not report the unmanaged container:\n%s", out)
		}
		e.apply("--evict-unmanaged")
		nets := docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name)
		if strings.Contains(nets, lan) {
			t.Errorf("unmanaged container still on %s", lan)
		}
		if st := docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Errorf("moat changed the unmanaged container's state to %s", st)
		}
	})

	t.Run("plan from a snapshot equals plan from the engine", func(t *testing.T) {
		docker(t, "stop", "-t", "1", e.instance+".initech.ledger.1")
		live := filepath.Join(e.work, "live.json")
		e.mustMoat(0, "state", "export", e.config, "--out", live)
		fromEngine := e.plan(2)
		fromFile := e.plan(2, "--live", live)
		if fromEngine != fromFile {
			t.Errorf("plans differ\n--- engine\n%s--- snapshot\n%s", fromEngine, fromFile)
		}
		b, _ := os.ReadFile(live)
		if strings.Contains(string(b), "demo-not-a-secret") {
			t.Error("snapshot contains a secret value")
		}
	})

	t.Run("bad input: corrupt snapshot, stale saved plan, unreachable engine", func(t *testing.T) {
		bad := filepath.Join(e.work, "corrupt.json")
		os.WriteFile(bad, []byte(`{"format":"moat-state","version":1,"observed":{"containers":[{`), 0o644)
		_, errs, code := e.moat("plan", e.config, "--secrets", e.secrets, "--live", bad)
		if code != 1 || !strings.Contains(errs, "corrupt.json") {
			t.Errorf("corrupt snapshot: exit %d, stderr %q", code, errs)
		}

		saved := filepath.Join(e.work, "plan.json")
		e.plan(2, "--out", saved)
		docker(t, "stop", "-t", "1", e.instance+".acme.api.1") // live state moves on
		before := e.containers()
		_, errs, code = e.moat("apply", e.config, "--secrets", e.secrets, "--plan", saved)
		if code != 1 || !strings.Contains(errs, "stale") {
			t.Errorf("stale plan: exit %d, stderr %q", code, errs)
		}
		if st := docker(t, "inspect", "-f", "{{.State.Status}}", e.instance+".initech.ledger.1"); st == "running" {
			t.Error("a stale plan was applied")
		}
		if after := e.containers(); len(after) != len(before) {
			t.Error("a stale plan changed containers")
		}

		cmd := exec.Command(moatBin, "apply", e.config, "--secrets", e.secrets)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unreachable") {
			t.Errorf("unreachable engine: %v\n%s", err, out)
		}
		e.apply()
		e.plan(0)
	})

	t.Run("remove a tenant: containers and networks go, volumes and unmanaged stay", func(t *testing.T) {
		volsBefore := e.volumes()
		if err := os.RemoveAll(filepath.Join(e.config, "tenants/initech")); err != nil {
			t.Fatal(err)
		}
		e.edit("platform/tenants.yaml", func(s string) string {
			i := strings.Index(s, "name: initech")
			j := strings.LastIndex(s[:i], "---")
			return s[:j]
		})
		// Every container of a tenant going: refused without the flag.
		_, errs, code := e.moat("apply", e.config, "--secrets", e.secrets)
		if code != 1 || !strings.Contains(errs, "--allow-mass-delete") {
			t.Fatalf("mass delete not refused: exit %d\n%s", code, errs)
		}
		e.apply("--allow-mass-delete")
		for name := range e.containers() {
			if strings.Contains(name, ".initech.") {
				t.Errorf("container %s of the removed tenant remains", name)
			}
		}
		for _, n := range e.networks() {
			if strings.Contains(n, ".initech.") {
				t.Errorf("network %s of the removed tenant remains", n)
			}
		}
		volsAfter := e.volumes()
		if strings.Join(volsAfter, ",") != strings.Join(volsBefore, ",") {
			t.Errorf("volumes changed: before %v after %v", volsBefore, volsAfter)
		}
		if st := docker(t, "inspect", "-f", "{{.State.Status}}", e.instance+"-unmanaged"); st != "running" {
			t.Errorf("unmanaged container is %s", st)
		}
		e.plan(0)
	})
}

// TestInterruptedApplyConverges kills moat with SIGKILL at random points of
// an apply, ten times, then applies once more: no duplicates, nothing left
// over, and the next plan is empty.
func TestInterruptedApplyConverges(t *testing.T) {
	e := newEnv(t)
	delays := []time.Duration{50, 150, 300, 500, 700, 900, 1200, 1500, 2000, 2500}
	killed := 0
	for i, d := range delays {
		if i%2 == 0 {
			// Every other round starts from nothing, so that kills land
			// on network and volume creation too; the others resume from
			// what the previous kill left.
			e.cleanup()
		}
		cmd := exec.Command(moatBin, "apply", e.config, "--secrets", e.secrets, "--allow-mass-delete")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil && strings.Contains(err.Error(), "killed") {
			killed++
		}
	}
	if killed < 5 {
		t.Fatalf("only %d of %d applies were killed mid-run; the test did not interrupt anything", killed, len(delays))
	}
	t.Logf("%d of %d applies killed mid-run", killed, len(delays))
	e.apply("--allow-mass-delete")
	// An empty plan means: every desired container exists (once: names
	// are unique), runs, and has its networks; no managed leftover.
	e.plan(0)
	got := e.containers()
	for name := range got {
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(e.instance) + `\.[a-z0-9-]+\.[a-z0-9-]+(\.\d+|\.gateway)?$`).MatchString(name) {
			t.Errorf("leftover container %s", name)
		}
	}
	running := lines(docker(t, "ps", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Names}}"))
	if len(running) != len(got) {
		t.Errorf("%d containers, %d running", len(got), len(running))
	}
}
