package swarm

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-platform/moat/firewall"
)

// TestSwarmIsolation tries every path from inside tenant tasks (the probe
// image, as the tenant's unprivileged user, as a hostile tenant would), on
// a platform of its own: tenants ta and tb, each with an internet LAN
// "one" and an internal LAN "two" and a probe app on each alone (x1, x2)
// and on both (xb); ta is granted the log sink write-only and the master
// data API read-only, tb nothing. Outside moat, the test runs a target
// container on a plain network of its own and a control container beside
// it. Every "blocked" stands next to an "allowed" control of the same
// kind, so that a blocked path cannot pass because a probe or a target is
// broken.
func TestSwarmIsolation(t *testing.T) {
	e := newEnv(t)
	e.writeFiles(isolationPlatform(e))
	if err := os.MkdirAll(e.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	e.apply()
	e.waitConverged(10) // 6 apps, 2 shared services, 2 gateways (ta's)
	e.plan(0)

	token := "moatsw-host-" + randHex(6)
	listener, hostPort := hostListener(t, token)
	defer listener.Close()
	primary := primaryIP(t)
	outside, control := outsideContainers(t, e.instance)
	outsideIP := docker(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", outside)

	svc := func(tenant, app string) string { return e.name(tenant, app, "1") }
	ip := func(tenant, app, lan string) string { return taskIP(t, svc(tenant, app), e.name(tenant, lan)) }
	// Every path is an HTTP request that must get the target's own answer:
	// a TCP connect alone proves nothing where the host's network accepts
	// every connection to an address it does not know (a sandbox's
	// catch-all egress answers 404 for any address): an overlay address
	// is not routed on the host, so a packet that leaves through
	// docker_gwbridge to it would "connect" there.
	health := func(addr, port string) []string {
		return []string{"http", "GET", "http://" + net.JoinHostPort(addr, port) + "/healthz"}
	}
	hostGet := func(addr string) []string {
		return []string{"http", "GET", "http://" + net.JoinHostPort(addr, hostPort) + "/"}
	}
	const port = "8080"

	var rows []probeRow
	add := func(group, from, to, how string, want verdict, args []string) {
		body := "ok" // a probe's, a sink's or the master data's /healthz
		if strings.HasSuffix(args[len(args)-1], ":"+hostPort+"/") {
			body = token
		} else if !strings.HasSuffix(args[2], "/healthz") {
			body = "" // a shared service's own answer (or the gateway's refusal)
		}
		rows = append(rows, probeRow{group: group, from: from, to: to, how: how, want: want, args: args, body: body})
	}
	a1, a2, ab := svc("ta", "a1"), svc("ta", "a2"), svc("ta", "ab")
	b1, b2, bb := svc("tb", "b1"), svc("tb", "b2"), svc("tb", "bb")
	short := func(s string) string { return strings.TrimPrefix(s, e.instance+"--") }

	// Same LAN: allowed, by name (the app's alias) and by address.
	for _, x := range [][4]string{{a1, "ta", "ab", "one"}, {a2, "ta", "ab", "two"}, {b1, "tb", "bb", "one"}, {b2, "tb", "bb", "two"}} {
		add("same LAN", x[0], x[1]+"/"+x[2], "name", allowed, health(x[2], port))
		add("same LAN", x[0], x[1]+"/"+x[2], "IP", allowed, health(ip(x[1], x[2], x[3]), port))
	}
	// A tenant's two LANs are apart; only the app on both reaches both.
	add("own LANs", a1, "ta/a2", "IP", blocked, health(ip("ta", "a2", "two"), port))
	add("own LANs", a1, "ta/a2", "name", blocked, health("a2", port))
	add("own LANs", ab, "ta/a2", "name (app on both)", allowed, health("a2", port))
	add("own LANs", b2, "tb/b1", "IP", blocked, health(ip("tb", "b1", "one"), port))
	add("own LANs", bb, "tb/b1", "IP (app on both)", allowed, health(ip("tb", "b1", "one"), port))
	// Tenant to tenant, both ways, by address and by name.
	for _, x := range []struct{ from, toT, to, lan string }{
		{a1, "tb", "b1", "one"}, {ab, "tb", "bb", "one"}, {ab, "tb", "b2", "two"}, {a2, "tb", "bb", "two"},
		{b1, "ta", "a1", "one"}, {bb, "ta", "ab", "one"}, {bb, "ta", "a2", "two"}, {b2, "ta", "ab", "two"},
	} {
		add("tenant to tenant", x.from, x.toT+"/"+x.to, "IP", blocked, health(ip(x.toT, x.to, x.lan), port))
		add("tenant to tenant", x.from, x.toT+"/"+x.to, "name", blocked, health(x.to, port))
	}
	// An internal LAN reaches nothing outside it: not a container outside
	// moat, not the host. Controls: the same targets from a container
	// outside moat.
	add("internal LAN", control, "outside container", "IP (control)", allowed, health(outsideIP, port))
	add("internal LAN", control, "host listener", "primary IP (control)", allowed, hostGet(primary))
	for _, from := range []string{a2, b2} {
		add("internal LAN", from, "outside container", "IP", blocked, health(outsideIP, port))
		add("internal LAN", from, "host listener", "primary IP", blocked, hostGet(primary))
	}
	// An internet LAN reaches out through the node's docker_gwbridge, whose
	// gateway is the host: host protection keeps the host's own addresses
	// off it (on a Swarm whose bridge is not moat's the suite runs without
	// host protection, and these rows are only printed).
	hostWant := blocked
	if !hostProtection {
		hostWant = info
	}
	gwbridge := docker(t, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "docker_gwbridge")
	add("host", control, "host listener", "docker_gwbridge gateway (control)", allowed, hostGet(gwbridge))
	for _, from := range []string{a1, ab, b1} {
		add("host", from, "host listener", "primary IP", hostWant, hostGet(primary))
		add("host", from, "host listener", "docker_gwbridge gateway", hostWant, hostGet(gwbridge))
	}
	add("internet LAN", a1, "outside container", "IP", info, health(outsideIP, port))

	// Shared services: only through the tenant's gateway, only in the
	// granted mode; tb has no grant; nobody reaches a service's own
	// addresses (on link networks only).
	get := func(u string) []string { return []string{"http", "GET", u} }
	post := func(u string) []string { return []string{"http", "POST", u, "isolation"} }
	md, logs := "http://masterdata-api:8080/records", "http://logging:8080/logs"
	for _, from := range []string{a1, ab} {
		add("shared service", from, "masterdata-api via gateway", "GET (granted read-only)", allowed, get(md))
		add("shared service", from, "masterdata-api via gateway", "POST (write: not granted)", blocked, post(md))
		add("shared service", from, "logging via gateway", "POST (granted write-only)", allowed, post(logs))
		add("shared service", from, "logging via gateway", "GET (read: not granted)", blocked, get(logs))
	}
	add("shared service", b1, "masterdata-api", "GET by name (no grant)", blocked, get(md))
	add("shared service", b1, "logging", "POST by name (no grant)", blocked, post(logs))
	add("shared service", bb, "logging", "GET by name (no grant)", blocked, health("logging", port))
	for _, s := range []string{e.name("shared", "logging"), e.name("shared", "masterdata-api")} {
		for _, sip := range containerIPs(t, task(t, s)) {
			add("shared service", a1, short(s)+" own address", "IP "+sip, blocked, health(sip, port))
			add("shared service", b1, short(s)+" own address", "IP "+sip, blocked, health(sip, port))
		}
	}

	runProbes(t, e, rows)
	printProbes(t, e.instance, rows)

	if !hostProtection {
		return
	}
	// The host rows can fail: the host itself reaches its listener on the
	// bridge's gateway address, and with host protection turned off the
	// same tenant task does too.
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + net.JoinHostPort(gwbridge, hostPort) + "/")
	if err != nil {
		t.Fatalf("control: the host does not reach its own listener on %s: %v", gwbridge, err)
	}
	resp.Body.Close()
	if own, _ := gwbridgeRules(t, e.instance); len(own) == 0 {
		t.Errorf("host protection is on, but instance %s has no rules on moat-gwbridge", e.instance)
	}
	e.edit("platform.yaml", func(s string) string {
		return strings.Replace(s, "hostProtection: true", "hostProtection: false", 1)
	})
	e.apply()
	own, others := gwbridgeRules(t, e.instance)
	if len(own) > 0 {
		t.Errorf("host protection is off, but instance %s still has rules on moat-gwbridge:\n%s", e.instance, strings.Join(own, "\n"))
	}
	// The node's docker_gwbridge is one for every instance on the node:
	// another instance's rules (a parallel run) protect it too, and then
	// the tenant cannot reach the host either way.
	want := allowed
	if len(others) > 0 {
		want = info
		t.Logf("other instances' rules on moat-gwbridge protect this node too (%d rules): the protection-off control is only printed", len(others))
	}
	off := []probeRow{{group: "host (protection off)", from: a1, to: "host listener", how: "docker_gwbridge gateway (control)", want: want, args: hostGet(gwbridge), body: token}}
	runProbes(t, e, off)
	printProbes(t, e.instance, off)
}

// gwbridgeRules splits moat's filter rules on the node's docker_gwbridge
// (interface moat-gwbridge) into the instance's own and others'.
func gwbridgeRules(t *testing.T, instance string) (own, others []string) {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	c := firewall.ChainsOf(instance)
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "-A MOAT-") || !strings.Contains(l, "moat-gwbridge") {
			continue
		}
		if strings.HasPrefix(l, "-A "+c.Input+" ") || strings.HasPrefix(l, "-A "+c.User+" ") {
			own = append(own, l)
		} else {
			others = append(others, l)
		}
	}
	return own, others
}

// TestSwarmHostProtectionRefused: on a node whose docker_gwbridge was not
// made for moat, a platform with host protection is refused before
// anything is created (the suite then runs its other platforms without
// host protection: see runMain).
func TestSwarmHostProtectionRefused(t *testing.T) {
	e := newEnv(t)
	if hostProtection {
		t.Skip("this node's docker_gwbridge is moat's (moat-gwbridge, ICC off): nothing to refuse")
	}
	files := isolationPlatform(e)
	files["platform.yaml"] = strings.Replace(files["platform.yaml"], "hostProtection: false", "hostProtection: true", 1)
	e.writeFiles(files)
	if err := os.MkdirAll(e.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply"} {
		out, errs, code := e.moat(cmd, e.config, "--secrets", e.secrets)
		if code != 1 || !strings.Contains(errs, "not moat-gwbridge") || !strings.Contains(errs, "Nothing was changed") {
			t.Errorf("moat %s with host protection on a node without moat-gwbridge: exit %d, want 1 and the refusal\nstdout:\n%s\nstderr:\n%s", cmd, code, out, errs)
		}
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("a refused apply created %v", left)
	}
}

type verdict int

const (
	blocked verdict = iota
	allowed
	info // printed, not asserted
)

func (v verdict) String() string {
	return [...]string{"blocked", "allowed", "-"}[v]
}

type probeRow struct {
	group, from, to, how string
	want                 verdict
	args                 []string
	body                 string // what the target's answer must contain
	got                  verdict
	out                  string
}

// runProbes tries every row, a few at a time, from the row's service's
// task container (or from a plain container, named as is).
func runProbes(t *testing.T, e *env, rows []probeRow) {
	ctr := map[string]string{}
	for _, r := range rows {
		if _, ok := ctr[r.from]; !ok {
			if strings.HasPrefix(r.from, e.instance+"--") {
				ctr[r.from] = task(t, r.from)
			} else {
				ctr[r.from] = r.from
			}
		}
	}
	status := regexp.MustCompile(`HTTP \S+ \S+: (\d)\d\d`)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range rows {
		wg.Add(1)
		go func(r *probeRow) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, code := run(t, "docker", append([]string{"exec", "-e", "PROBE_TIMEOUT=2s", ctr[r.from], "/app"}, r.args...)...)
			r.out = strings.TrimSpace(out)
			// Allowed: a 2xx answer from the target itself; a 403 (a
			// gateway's refusal), a 404 (not the target) or no answer is
			// blocked.
			m := status.FindStringSubmatch(out)
			ok := code == 0 && m != nil && m[1] == "2" && strings.Contains(out, r.body)
			r.got = blocked
			if ok {
				r.got = allowed
			}
		}(&rows[i])
	}
	wg.Wait()
	for _, r := range rows {
		if r.want != info && r.got != r.want {
			t.Errorf("%s: %s -> %s (%s): want %s, got %s:\n%s", r.group, r.from, r.to, r.how, r.want, r.got, r.out)
		}
	}
}

func printProbes(t *testing.T, instance string, rows []probeRow) {
	var b strings.Builder
	pass, checked := 0, 0
	fmt.Fprintf(&b, "\nisolation on Swarm (instance %s)\n", instance)
	fmt.Fprintf(&b, "%-17s %-22s %-30s %-46s %-8s %-8s %s\n", "GROUP", "FROM", "TO", "PATH", "WANT", "GOT", "")
	for _, r := range rows {
		mark := "ok"
		switch {
		case r.want == info:
			mark = "(info)"
		case r.got != r.want:
			mark = "FAIL"
		default:
			pass++
		}
		if r.want != info {
			checked++
		}
		fmt.Fprintf(&b, "%-17s %-22s %-30s %-46s %-8s %-8s %s\n", r.group, strings.TrimPrefix(r.from, instance+"--"), r.to, r.how, r.want, r.got, mark)
	}
	fmt.Fprintf(&b, "%d paths checked: %d as expected, %d not\n", checked, pass, checked-pass)
	t.Log(b.String())
}

// isolationPlatform is the test's own config repository.
func isolationPlatform(e *env) map[string]string {
	o := e.octet
	app := func(name, lans, extra string) string {
		return fmt.Sprintf("kind: App\nname: %s\nimage: localhost/moat-examples/probe:1\nlans: %s\nresources: {cpus: 0.1, memory: 32MiB, pids: 32}\n%s", name, lans, extra)
	}
	apps := func(one, two, both, uses string) string {
		return app(one, "[one]", uses) + "---\n" + app(two, "[two]", "") + "---\n" + app(both, "[one, two]", uses)
	}
	lans := func(third int) string {
		return fmt.Sprintf("kind: Lan\nname: one\nsubnet: 10.%s.%d.0/24\ninternet: true\n---\nkind: Lan\nname: two\nsubnet: 10.%s.%d.0/24\ninternet: false\n", o, third, o, third+1)
	}
	uses := "uses:\n  - {service: logging, mode: write-only}\n  - {service: masterdata-api, mode: read-only}\n"
	return map[string]string{
		"platform.yaml": testPlatform(e.instance, o, true, hostProtection),
		"platform/tenants.yaml": fmt.Sprintf(`kind: Tenant
name: ta
block: 10.%[1]s.0.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 8}
grants:
  logging: [write-only]
  masterdata-api: [read-only]
---
kind: Tenant
name: tb
block: 10.%[1]s.4.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 8}
`, o),
		"tenants/ta/lans.yaml": lans(0),
		"tenants/tb/lans.yaml": lans(4),
		"tenants/ta/apps.yaml": apps("a1", "a2", "ab", uses),
		"tenants/tb/apps.yaml": apps("b1", "b2", "bb", ""),
		"shared/logging.yaml": `kind: SharedService
name: logging
image: localhost/moat-examples/logsink:1
protocol: http
port: 8080
offers: [write-only]
env: {LISTEN: ":8080"}
resources: {cpus: 0.2, memory: 64MiB, pids: 64}
`,
		"shared/masterdata.yaml": `kind: SharedService
name: masterdata-api
image: localhost/moat-examples/masterdata:1
protocol: http
port: 8080
offers: [read-only]
resources: {cpus: 0.2, memory: 64MiB, pids: 64}
`,
	}
}

// outsideContainers starts, on a plain bridge network of the test's own
// (not moat's), a target serving on 8080 and a control container, both
// the probe image as root with Docker's defaults.
func outsideContainers(t *testing.T, instance string) (target, control string) {
	t.Helper()
	network := instance + "-outside"
	target, control = instance+"-target", instance+"-control"
	t.Cleanup(func() {
		run(t, "docker", "rm", "-f", target, control)
		run(t, "docker", "network", "rm", network)
	})
	docker(t, "network", "create", "--label", "org.moat.test.run="+instance, network)
	for _, c := range []string{target, control} {
		docker(t, "run", "-d", "--name", c, "--label", "org.moat.test.run="+instance, "--network", network, "--user", "0:0", "localhost/moat-examples/probe:1")
	}
	return target, control
}

// primaryIP is the host's address on its default route (no packet is
// sent: a UDP "connection" only picks the source address).
func primaryIP(t *testing.T) string {
	c, err := net.Dial("udp4", "192.0.2.254:9")
	if err != nil {
		t.Fatalf("find the primary address: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// hostListener serves HTTP on every host address, answering token: the
// host service a tenant must not reach.
func hostListener(t *testing.T, token string) (net.Listener, string) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, token) }),
		ReadHeaderTimeout: 2 * time.Second,
	}
	go srv.Serve(l)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return l, port
}

// containerIPs lists a container's addresses on all its networks.
func containerIPs(t *testing.T, id string) []string {
	out := docker(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", id)
	ips := strings.Fields(out)
	if len(ips) == 0 {
		t.Fatalf("%s has no address", id)
	}
	return ips
}

// testPlatform is the platform.yaml of a test instance on Swarm: pool
// 10.<octet>.0.0/16, the example images, moat's gateway image.
func testPlatform(instance, octet string, encrypted, hostProtection bool) string {
	return fmt.Sprintf(`kind: Platform
name: %s
engine: swarm
network: {driver: overlay, encrypted: %v, pool: 10.%s.0.0/16, hostProtection: %v}
policy:
  images: ["localhost/moat-examples/"]
  publishPorts: false
runtime: {stopTimeout: 1}
gateways:
  image: localhost/moat/moat:1
  resources: {cpus: 0.25, memory: 32MiB, pids: 64}
`, instance, encrypted, octet, hostProtection)
}
