package e2e

import (
	"strings"
	"testing"
)

// TestHandMadeDamageHeals is issue 6's "hand-made damage must heal in one
// apply" on the real engine: each case breaks something the way an
// operator with the docker CLI would, then one apply must converge (exit
// 0) and the next plan must be empty.
func TestHandMadeDamageHeals(t *testing.T) {
	e := newEnv(t)
	e.apply()

	t.Run("LAN removed by hand", func(t *testing.T) {
		lan := e.instance + ".acme.backend"
		// docker network rm refuses while containers run on it: stop them
		// first (acme's gateway to the shared log sink among them), as the
		// operator did.
		onLan := lines(docker(t, "ps", "--filter", "network="+lan, "--format", "{{.Names}}"))
		if !contains(onLan, e.instance+".acme.logging.gateway") {
			t.Fatalf("acme's gateway to the log sink is not on %s: %v", lan, onLan)
		}
		docker(t, append([]string{"stop", "-t", "1"}, onLan...)...)
		docker(t, "network", "rm", lan)

		out := e.plan(2)
		if !strings.Contains(out, "attached to a removed network") {
			t.Errorf("plan does not see the stale endpoints:\n%s", out)
		}
		applied := e.apply()
		t.Logf("apply:\n%s", applied)
		e.plan(0)
		for _, name := range onLan {
			if st := docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
				t.Errorf("%s is %s after one apply", name, st)
			}
		}
		// The log sink's gateway answers on the LAN again, under the
		// service's alias (any HTTP answer counts: it is write-only, so a
		// GET gets 403 from the gateway).
		if out, code := e.exec(e.instance+".acme.worker.1", "http", "GET", "http://logging:8080/healthz"); code != 0 {
			t.Errorf("logging unreachable from acme's worker after the heal (exit %d): %s", code, out)
		}
	})

	t.Run("paused container is unpaused, not recreated", func(t *testing.T) {
		name := e.instance + ".acme.api.1"
		before := e.containers()[name]
		docker(t, "pause", name)
		out := e.plan(2)
		if !strings.Contains(out, "unpause") || strings.Contains(out, "recreate  #") {
			t.Errorf("plan:\n%s", out)
		}
		e.apply()
		e.plan(0)
		if after := e.containers()[name]; after != before {
			t.Errorf("container was recreated: id %s, was %s", after, before)
		}
		if st := docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Errorf("%s is %s", name, st)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
