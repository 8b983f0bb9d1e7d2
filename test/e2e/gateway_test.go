package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedServicesThroughGateways re-runs issue 8's shared-service
// findings as a hostile tenant would, from inside tenant containers (the
// probe image, the tenant's unprivileged uid), each next to its allowed
// control:
//   - write-only is enforced: acme's GET /logs gets 403, its POST 204;
//   - read-only is enforced: acme's POST to master data gets 403, its GET 200;
//   - no grant, no name: initech cannot even resolve masterdata-api;
//   - the service is not a bridge: it is on link networks only (internal,
//     none a tenant LAN), and its own addresses are unreachable from a
//     tenant LAN while its gateway is reachable;
//   - one tenant cannot take the sink down for all: 1,000 posts of 64 KB
//     (acme's rate limit raised so that all of them reach the sink) and
//     1,000 tiny posts leave the sink running, not OOM-killed, not
//     restarted, and initech's entry still there.
func TestSharedServicesThroughGateways(t *testing.T) {
	e := newEnv(t)
	// Let acme's flood through its gateway, so the sink itself is what is
	// tested; the gateway's own limits are unit-tested in gateway/.
	tenants := filepath.Join(e.config, "platform", "tenants.yaml")
	b, err := os.ReadFile(tenants)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "name: acme\n", "name: acme\ngatewayLimits: {rps: 100000, burst: 100000}\n", 1))
	if err := os.WriteFile(tenants, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e.apply()
	worker := e.instance + ".acme.worker.1"    // probe on acme's backend LAN
	ledger := e.instance + ".initech.ledger.1" // probe on initech's batch LAN
	sink := e.instance + ".shared.logging"
	ctr := e.containers()
	for _, n := range []string{worker, ledger, sink, e.instance + ".acme.logging.gateway", e.instance + ".initech.logging.gateway"} {
		if ctr[n] == "" {
			t.Fatalf("container %s missing after apply", n)
		}
	}
	logs, master := "http://logging:8080/logs", "http://masterdata-api:8080/records"

	t.Run("write-only: POST passes, GET /logs is 403", func(t *testing.T) {
		out, _ := e.exec(worker, "http", "POST", logs, "acme line")
		if !strings.Contains(out, "204") {
			t.Errorf("control: acme POST /logs: %s", out)
		}
		out, _ = e.exec(worker, "http", "GET", logs)
		if !strings.Contains(out, "403") || strings.Contains(out, "acme line") {
			t.Errorf("attack: acme GET /logs should be 403 without entries: %s", out)
		}
	})

	t.Run("read-only: GET passes, POST to master data is 403", func(t *testing.T) {
		out, _ := e.exec(worker, "http", "GET", master)
		if !strings.Contains(out, "200") {
			t.Errorf("control: acme GET master data: %s", out)
		}
		out, _ = e.exec(worker, "http", "POST", master, "overwrite")
		if !strings.Contains(out, "403") {
			t.Errorf("attack: acme POST master data should be 403: %s", out)
		}
	})

	t.Run("no grant: initech cannot reach master data", func(t *testing.T) {
		out, code := e.exec(ledger, "http", "POST", logs, "initech line")
		if code != 0 || !strings.Contains(out, "204") {
			t.Errorf("control: initech POST /logs: %s", out)
		}
		if out, code := e.exec(ledger, "dial", "tcp", "masterdata-api:8080"); code == 0 {
			t.Errorf("attack: initech reached masterdata-api: %s", out)
		}
	})

	t.Run("the service is on no tenant LAN and unreachable by address", func(t *testing.T) {
		var nets map[string]struct {
			IPAddress string
		}
		if err := json.Unmarshal([]byte(docker(t, "inspect", "--format", "{{json .NetworkSettings.Networks}}", sink)), &nets); err != nil {
			t.Fatal(err)
		}
		if len(nets) == 0 {
			t.Fatal("the sink has no networks")
		}
		for name, ep := range nets {
			kind := docker(t, "network", "inspect", "--format", `{{index .Labels "org.moat.kind"}} {{.Internal}}`, name)
			if kind != "link true" {
				t.Errorf("sink is on %s (kind, internal = %s): want only internal link networks", name, kind)
			}
			for _, p := range []string{worker, ledger} {
				if out, code := e.exec(p, "dial", "tcp", ep.IPAddress+":8080"); code == 0 {
					t.Errorf("attack: %s reached the sink's own address %s: %s", p, ep.IPAddress, out)
				}
			}
		}
		if out, code := e.exec(worker, "dial", "tcp", "logging:8080"); code != 0 {
			t.Errorf("control: acme cannot reach its gateway: %s", out)
		}
	})

	t.Run("a flood does not take the sink down or evict another tenant", func(t *testing.T) {
		out, code := run(t, "docker", "exec", "-e", "PROBE_TIMEOUT=10s", worker, "/app", "flood", "POST", logs, "1000", "65536")
		if code != 0 || !strings.Contains(out, "204=1000") {
			t.Errorf("acme's 1,000 posts of 64 KB should all reach the sink (204): %s", out)
		}
		t.Logf("1,000 x 64 KB: %s", lastLine(out))
		out, code = run(t, "docker", "exec", "-e", "PROBE_TIMEOUT=10s", worker, "/app", "flood", "POST", logs, "1000", "1")
		if code != 0 || !strings.Contains(out, "204=1000") {
			t.Errorf("acme's 1,000 tiny posts: %s", out)
		}
		t.Logf("1,000 x 1 B: %s", lastLine(out))
		st := docker(t, "inspect", "--format", "{{.State.Status}} oom={{.State.OOMKilled}} restarts={{.RestartCount}}", sink)
		if st != "running oom=false restarts=0" {
			t.Errorf("sink after the flood: %s, want running oom=false restarts=0", st)
		}
		t.Logf("sink after the flood: %s, memory %s", st, docker(t, "stats", "--no-stream", "--format", "{{.MemUsage}}", sink))
		// Read initech's entries as the service would serve them to
		// initech: from a throw-away probe on initech's link network.
		link := e.instance + ".initech.logging.link"
		name := e.instance + "-read-initech"
		out, code = run(t, "docker", "run", "--rm", "--name", name, "--label", "org.moat.test.run="+e.instance,
			"--network", link, "--user", "65534:65534", "--cap-drop", "ALL", "-e", "PROBE_HEADER=X-Moat-Tenant: initech",
			"-e", "PROBE_TIMEOUT=10s", "localhost/moat-examples/probe:1", "http", "GET", "http://"+sink+":8080/logs")
		if code != 0 || !strings.Contains(out, "initech line") || strings.Contains(out, "acme line") {
			t.Errorf("initech's entries after acme's flood: %s", out)
		}
	})
}
