package e2e

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestAudit: moat audit on the applied examples finds nothing; it finds
// each of four hand-made changes; the next apply repairs the forged and
// the updated container (and the cross-tenant connect), and the audit is
// clean again once the intruder is gone.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	e.apply()
	audit := func(extra ...string) (string, int) {
		out, errs, code := e.moat(append([]string{"audit", e.config, "--secrets", e.secrets}, extra...)...)
		if code != 0 && code != 3 {
			t.Fatalf("moat audit: exit %d\n%s\n%s", code, out, errs)
		}
		return out, code
	}
	if out, code := audit(); code != 0 || !strings.Contains(out, "; 0 findings") {
		t.Fatalf("audit of the freshly applied examples: exit %d, want 0 and no findings:\n%s", code, out)
	}

	web := e.instance + ".acme.web.1"
	worker := e.instance + ".acme.worker.1"
	api := e.instance + ".acme.api.1"
	intruder := e.instance + "-intruder"
	globexLAN := e.instance + ".globex.storefront"
	backend := e.instance + ".acme.backend"

	// 1. A hand-made connect across tenants.
	docker(t, "network", "connect", globexLAN, web)
	// 2. An unmanaged privileged container on a tenant LAN.
	docker(t, "run", "-d", "--name", intruder, "--privileged", "--network", backend, "localhost/moat-examples/probe:1")
	// 3. A managed container recreated by hand with moat's labels, but
	// privileged and without limits.
	var labels map[string]string
	if err := json.Unmarshal([]byte(docker(t, "inspect", "--format", "{{json .Config.Labels}}", worker)), &labels); err != nil {
		t.Fatal(err)
	}
	docker(t, "rm", "-f", worker)
	args := []string{"run", "-d", "--name", worker, "--privileged", "--network", backend}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+labels[k])
	}
	docker(t, append(args, "localhost/moat-examples/probe:1")...)
	// 4. docker update --memory on a managed container.
	docker(t, "update", "--memory", "256m", "--memory-swap", "256m", api)

	out, code := audit()
	if code != 3 {
		t.Fatalf("audit after tampering: exit %d, want 3:\n%s", code, out)
	}
	for _, want := range []string{
		web + "  networks: attached to " + globexLAN,
		intruder + "  unmanaged-container: ",
		worker + "  privileged: runs privileged",
		worker + "  memory: ",
		api + "  memory: memory 268435456",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("audit does not report %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(regexp.QuoteMeta(intruder) + `  unmanaged-container: .*privileged`).MatchString(out) {
		t.Errorf("the intruder is not reported as privileged:\n%s", out)
	}
	jsonOut, _ := audit("-o", "json")
	var rep struct {
		Findings []struct{ Check, Severity, Resource string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &rep); err != nil || len(rep.Findings) < 5 {
		t.Fatalf("audit -o json: %v, %d findings:\n%s", err, len(rep.Findings), jsonOut)
	}

	// The plain plan cannot see 3 and 4 (same labels); plan --audit can.
	plain := e.plan(2)
	if strings.Contains(plain, "audit failed") {
		t.Errorf("plan without --audit inspected:\n%s", plain)
	}
	audited, errs, code := e.moat("plan", e.config, "--secrets", e.secrets, "--detailed-exitcode", "--audit", "--stats")
	if code != 2 {
		t.Fatalf("plan --audit: exit %d\n%s\n%s", code, audited, errs)
	}
	for _, c := range []string{worker, api} {
		if !regexp.MustCompile(`-/\+\s+container\s+` + regexp.QuoteMeta(c) + `\s+recreate\s+# audit failed: `).MatchString(audited) {
			t.Errorf("plan --audit does not recreate %s:\n%s", c, audited)
		}
	}
	if m := regexp.MustCompile(`engine API calls: (\d+)`).FindStringSubmatch(errs); m != nil {
		n, _ := strconv.Atoi(m[1])
		t.Logf("plan --audit made %d engine API calls for %d containers", n, len(e.containers())+1)
	}

	// The next apply repairs the forged and the updated container, and
	// the cross-tenant connect; the intruder stays reported.
	e.apply()
	out, code = audit()
	if code != 3 || strings.Contains(out, worker) || strings.Contains(out, api) || strings.Contains(out, web) || !strings.Contains(out, intruder) {
		t.Errorf("after apply, only the intruder should be reported (exit 3):\n%s", out)
	}
	if got := docker(t, "inspect", "--format", "{{.HostConfig.Privileged}} {{.HostConfig.Memory}}", worker); got != "false 33554432" {
		t.Errorf("worker after apply: privileged/memory %q, want false 33554432", got)
	}
	docker(t, "rm", "-f", intruder)
	if out, code := audit(); code != 0 {
		t.Errorf("audit after the repair: exit %d:\n%s", code, out)
	}
}
