package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-platform/moat/firewall"
)

// The isolation matrix: two tenants (ta, tb), each with two LANs (one with
// internet, one internal) and one probe app on each LAN alone plus one on
// both; tb publishes a port on the host's primary address; the test itself
// listens on the host. Every path is tried from inside a tenant container
// (the probe image, the tenant's unprivileged user, as a hostile tenant
// would) and every "blocked" stands next to an "allowed" control of the
// same kind in the same run, so that a blocked path cannot pass because the
// probe or the target is broken. Traffic goes only to the test's own
// containers and to the listener it starts on this host's addresses.
//
// `make isolation` runs it verbosely and prints the table.

// path is one row of the matrix.
type path struct {
	group, from, to, how string
	allowed              bool     // expected
	args                 []string // probe command line inside from
	host                 bool     // run from the host (test process), not a container
	got                  bool
	out                  string
}

const isoPort = "8080" // probe serve listens here in every app

func TestIsolationMatrix(t *testing.T) {
	requireDocker(t)
	primary := primaryIP(t)
	listener, hostPort := hostListener(t)
	defer listener.Close()
	pubPort := freePort(t)
	// Registered before the env, so it runs after the env's cleanup: the
	// host firewall is back to exactly what it was (INPUT and DOCKER-USER
	// without other moat instances' jumps, and nothing of this instance).
	var inst string
	before := hostFirewall(t, "")
	t.Cleanup(func() {
		if after := hostFirewall(t, inst); !slices.Equal(before, after) {
			t.Errorf("the host firewall differs after cleanup:\nbefore %q\nafter  %q", before, after)
		}
	})
	e := newIsolationEnv(t, primary, pubPort)
	inst = e.instance
	e.apply()
	if rules := hostFirewall(t, inst); len(rules) <= len(before) {
		t.Errorf("apply added no host rules for %s", inst)
	}

	ctr := func(tenant, app string) string { return e.instance + "." + tenant + "." + app + ".1" }
	ip := func(tenant, app, lan string) string {
		return docker(t, "inspect", "--format", fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, e.instance+"."+tenant+"."+lan), ctr(tenant, app))
	}
	gw := func(tenant, lan string) string {
		return docker(t, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", e.instance+"."+tenant+"."+lan)
	}
	for _, n := range []string{ctr("ta", "a1"), ctr("ta", "a2"), ctr("ta", "ab"), ctr("tb", "b1"), ctr("tb", "b2"), ctr("tb", "bb")} {
		if ip := docker(t, "inspect", "--format", "{{.State.Running}}", n); ip != "true" {
			t.Fatalf("%s is not running", n)
		}
	}

	// A plain container on a network moat does not manage: the control
	// that the host listener, the published port and raw sockets are
	// reachable/usable at all when moat's protections are not in the way.
	ctl, ctlGW := controlContainer(t, e.instance)

	dial := func(addr, port string) []string { return []string{"dial", "tcp", net.JoinHostPort(addr, port)} }
	var rows []path
	add := func(group, from, to, how string, allowed bool, args []string) {
		rows = append(rows, path{group: group, from: from, to: to, how: how, allowed: allowed, args: args})
	}
	a1, a2, ab := ctr("ta", "a1"), ctr("ta", "a2"), ctr("ta", "ab")
	b1, b2, bb := ctr("tb", "b1"), ctr("tb", "b2"), ctr("tb", "bb")
	short := func(c string) string { return strings.TrimPrefix(c, e.instance+".") }

	// Same LAN: allowed, by name and by IP.
	for _, x := range [][4]string{{a1, "ab", "ta", "one"}, {a2, "ab", "ta", "two"}, {b1, "bb", "tb", "one"}, {b2, "bb", "tb", "two"}} {
		add("same LAN", x[0], short(ctr(x[2], x[1])), "name", true, dial(x[1], isoPort))
		add("same LAN", x[0], short(ctr(x[2], x[1])), "IP", true, dial(ip(x[2], x[1], x[3]), isoPort))
	}
	// A tenant's own LANs: only through the app on both.
	add("own LANs", a1, short(a2), "IP", false, dial(ip("ta", "a2", "two"), isoPort))
	add("own LANs", a1, short(a2), "name", false, dial("a2", isoPort))
	add("own LANs", a2, short(a1), "IP", false, dial(ip("ta", "a1", "one"), isoPort))
	add("own LANs", ab, short(a1), "name (app on both)", true, dial("a1", isoPort))
	add("own LANs", ab, short(a2), "name (app on both)", true, dial("a2", isoPort))
	add("own LANs", b1, short(b2), "IP", false, dial(ip("tb", "b2", "two"), isoPort))
	add("own LANs", bb, short(b2), "IP (app on both)", true, dial(ip("tb", "b2", "two"), isoPort))
	// Tenant to tenant, both directions, by IP and by name.
	for _, x := range []struct{ from, toT, to, lan, name string }{
		{a1, "tb", "b1", "one", "b1"}, {ab, "tb", "b2", "two", "b2"}, {ab, "tb", "bb", "one", "bb"}, {a2, "tb", "bb", "two", "bb"},
		{b1, "ta", "a1", "one", "a1"}, {bb, "ta", "a2", "two", "a2"}, {bb, "ta", "ab", "one", "ab"}, {b2, "ta", "ab", "two", "ab"},
	} {
		add("tenant to tenant", x.from, short(ctr(x.toT, x.to)), "IP", false, dial(ip(x.toT, x.to, x.lan), isoPort))
		add("tenant to tenant", x.from, short(ctr(x.toT, x.to)), "name", false, dial(x.name, isoPort))
	}
	// An internal LAN reaches nothing outside it (its own LAN: the control
	// rows of "same LAN" above).
	add("internal LAN", a2, "host (LAN gateway)", "listener", false, dial(gw("ta", "two"), hostPort))
	add("internal LAN", a2, "host (primary IP)", "listener", false, dial(primary, hostPort))
	add("internal LAN", b2, "host (primary IP)", "tb published port", false, dial(primary, pubPort))
	// The host: neither its LAN gateway address nor its primary address,
	// nor another tenant's published port. Controls: the same listener and
	// port from a container on a network moat does not manage, and from
	// the host itself.
	add("host", ctl, "host (its gateway)", "listener (control)", true, dial(ctlGW, hostPort))
	add("host", ctl, "host (primary IP)", "listener (control)", true, dial(primary, hostPort))
	add("host", ctl, short(b1)+" published", "primary:port (control)", true, dial(primary, pubPort))
	rows = append(rows, path{group: "host", from: "host", to: short(b1) + " published", how: "primary:port (control)", allowed: true, host: true,
		args: []string{net.JoinHostPort(primary, pubPort)}})
	for _, x := range []struct{ from, t, lan string }{{a1, "ta", "one"}, {ab, "ta", "two"}, {b1, "tb", "one"}} {
		add("host", x.from, "host (LAN gateway)", "listener", false, dial(gw(x.t, x.lan), hostPort))
		add("host", x.from, "host (primary IP)", "listener", false, dial(primary, hostPort))
		add("host", x.from, "host (docker0-style gateway)", "listener", false, dial(ctlGW, hostPort))
	}
	add("host", a1, short(b1)+" published", "primary:port", false, dial(primary, pubPort))
	add("host", ab, short(b1)+" published", "primary:port", false, dial(primary, pubPort))
	// A shared service: only through the tenant's gateway, only in the
	// granted mode (ta: write-only); tb has no grant; nobody reaches the
	// service's own address (it is on link networks only).
	post := []string{"http", "POST", "http://logging:8080/logs", "matrix"}
	get := []string{"http", "GET", "http://logging:8080/logs"}
	add("shared service", a1, "logging via gateway", "POST (granted write)", true, post)
	add("shared service", a1, "logging via gateway", "GET (read: not granted)", false, get)
	add("shared service", ab, "logging via gateway", "POST (granted write)", true, post)
	add("shared service", b1, "logging", "POST by name (no grant)", false, post)
	add("shared service", bb, "logging", "dial by name (no grant)", false, dial("logging", isoPort))
	svc := e.instance + ".shared.logging"
	for _, sip := range containerIPs(t, svc) {
		add("shared service", a1, "logging own address", "IP "+sip, false, dial(sip, isoPort))
		add("shared service", b1, "logging own address", "IP "+sip, false, dial(sip, isoPort))
	}
	// Raw sockets: NET_RAW is dropped (control: a root container with
	// Docker's default capabilities can open one).
	add("raw socket", ctl, "-", "raw ICMP (control)", true, []string{"raw"})
	for _, c := range []string{a1, b1} {
		add("raw socket", c, "-", "raw ICMP", false, []string{"raw"})
	}
	// Forwarding is off in every moat container (control: the plain one).
	add("ip_forward", ctl, "-", "ip_forward=1 (control)", true, []string{"read", "/proc/sys/net/ipv4/ip_forward"})
	for _, c := range []string{a1, a2, ab, b1, b2, bb} {
		add("ip_forward", c, "-", "ip_forward=1", false, []string{"read", "/proc/sys/net/ipv4/ip_forward"})
	}

	runMatrix(t, rows)
	printMatrix(t, e.instance, rows)
}

// runMatrix tries every path, a few at a time.
func runMatrix(t *testing.T, rows []path) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := range rows {
		wg.Add(1)
		go func(r *path) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if r.host {
				c, err := net.DialTimeout("tcp", r.args[0], 2*time.Second)
				r.got, r.out = err == nil, fmt.Sprint(err)
				if c != nil {
					c.Close()
				}
				return
			}
			out, code := run(t, "docker", append([]string{"exec", "-e", "PROBE_TIMEOUT=1500ms", r.from, "/app"}, r.args...)...)
			r.out = strings.TrimSpace(out)
			r.got = code == 0
			if r.args[0] == "http" { // allowed: a 2xx answer (a 403 is a refusal)
				m := regexp.MustCompile(`HTTP \S+ \S+: (\d)\d\d`).FindStringSubmatch(out)
				r.got = code == 0 && m != nil && m[1] == "2"
			}
			if r.args[0] == "read" { // ip_forward: "allowed" means forwarding on
				r.got = code == 0 && lastLine(out) == "1"
			}
		}(&rows[i])
	}
	wg.Wait()
	for _, r := range rows {
		if r.got != r.allowed {
			t.Errorf("%s: %s -> %s (%s): want %s, got %s:\n%s", r.group, r.from, r.to, r.how, verdict(r.allowed), verdict(r.got), r.out)
		}
	}
}

func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "blocked"
}

// printMatrix prints the table (go test -v shows it; make isolation runs
// verbosely).
func printMatrix(t *testing.T, instance string, rows []path) {
	var b strings.Builder
	pass, blocked := 0, 0
	fmt.Fprintf(&b, "\nisolation matrix (instance %s)\n", instance)
	fmt.Fprintf(&b, "%-17s %-22s %-28s %-24s %-8s %-8s %s\n", "GROUP", "FROM", "TO", "PATH", "WANT", "GOT", "")
	for _, r := range rows {
		from := strings.TrimPrefix(r.from, instance+".")
		mark := "ok"
		if r.got != r.allowed {
			mark = "FAIL"
		} else {
			pass++
		}
		if !r.allowed {
			blocked++
		}
		fmt.Fprintf(&b, "%-17s %-22s %-28s %-24s %-8s %-8s %s\n", r.group, from, r.to, r.how, verdict(r.allowed), verdict(r.got), mark)
	}
	fmt.Fprintf(&b, "%d paths tried (%d expected blocked, %d allowed controls): %d as expected, %d not\n",
		len(rows), blocked, len(rows)-blocked, pass, len(rows)-pass)
	t.Log(b.String())
	if p := os.Getenv("MOAT_ISOLATION_REPORT"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

// newIsolationEnv writes the matrix's own platform: two tenants, two LANs
// each, probe apps, tb publishing pubPort on the host's primary address.
func newIsolationEnv(t *testing.T, primary, pubPort string) *env {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, instance: "moattest-" + hex.EncodeToString(b), work: t.TempDir()}
	e.config = filepath.Join(e.work, "config")
	e.secrets = filepath.Join(e.work, "secrets")
	n, _ := rand.Int(rand.Reader, big.NewInt(8))
	o := fmt.Sprint(96 + 16*n.Int64())
	files := map[string]string{
		"platform.yaml": fmt.Sprintf(`kind: Platform
name: %s
network: {driver: bridge, pool: 10.%s.0.0/12}
policy:
  images: ["localhost/moat-examples/"]
  publishPorts: true
  publishAddress: %s
runtime: {stopTimeout: 1}
`, e.instance, o, primary),
		"platform/tenants.yaml": fmt.Sprintf(`kind: Tenant
name: ta
block: 10.%[1]s.0.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 8}
grants:
  logging: [write-only]
---
kind: Tenant
name: tb
block: 10.%[1]s.4.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 8}
`, o),
		"tenants/ta/lans.yaml": fmt.Sprintf("kind: Lan\nname: one\nsubnet: 10.%[1]s.0.0/24\ninternet: true\n---\nkind: Lan\nname: two\nsubnet: 10.%[1]s.1.0/24\ninternet: false\n", o),
		"tenants/tb/lans.yaml": fmt.Sprintf("kind: Lan\nname: one\nsubnet: 10.%[1]s.4.0/24\ninternet: true\n---\nkind: Lan\nname: two\nsubnet: 10.%[1]s.5.0/24\ninternet: false\n", o),
		"shared/logging.yaml": `kind: SharedService
name: logging
image: localhost/moat-examples/logsink:1
protocol: http
port: 8080
offers: [write-only]
env: {LISTEN: ":8080"}
resources: {cpus: 0.2, memory: 64MiB, pids: 64}
`,
		"tenants/ta/apps.yaml": strings.Replace(probeApps("a1", "a2", "ab", ""), "lans: [one]\n", "lans: [one]\nuses: [{service: logging, mode: write-only}]\n", 1),
		"tenants/tb/apps.yaml": probeApps("b1", "b2", "bb", pubPort),
	}
	for rel, body := range files {
		p := filepath.Join(e.config, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(e.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

// probeApps: one app on LAN one, one on LAN two, one on both; the first
// publishes pub when set.
func probeApps(one, two, both, pub string) string {
	app := func(name, lans, extra string) string {
		return fmt.Sprintf("kind: App\nname: %s\nimage: localhost/moat-examples/probe:1\nlans: %s\nresources: {cpus: 0.1, memory: 32MiB, pids: 32}\n%s", name, lans, extra)
	}
	ports := ""
	if pub != "" {
		ports = "ports: [{container: " + isoPort + ", host: " + pub + "}]\n"
	}
	return app(one, "[one]", ports) + "---\n" + app(two, "[two]", "") + "---\n" + app(both, "[one, two]", "")
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

// hostListener is the host service a tenant must not reach: it listens on
// every host address and accepts (then closes) connections.
func hostListener(t *testing.T) (net.Listener, string) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return l, port
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// hostFirewall is the part of the filter table host protection may touch:
// INPUT and DOCKER-USER without the jumps of moat instances running in
// parallel tests, plus every line of instance's own chains.
func hostFirewall(t *testing.T, instance string) []string {
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var c firewall.Chains
	if instance != "" {
		c = firewall.ChainsOf(instance)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		mine := instance != "" && (strings.Contains(l, c.Input) || strings.Contains(l, c.User))
		builtin := strings.HasPrefix(l, "-A INPUT ") || strings.HasPrefix(l, "-A DOCKER-USER ")
		if mine || (builtin && !strings.Contains(l, "-j MOAT-")) {
			keep = append(keep, l)
		}
	}
	return keep
}

// containerIPs lists a container's addresses on all its networks.
func containerIPs(t *testing.T, name string) []string {
	out := docker(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name)
	ips := strings.Fields(out)
	if len(ips) == 0 {
		t.Fatalf("%s has no address", name)
	}
	return ips
}

// controlContainer starts a probe on a plain network of the test's own
// (not moat's), as root with Docker's default capabilities; it returns the
// container and its network's gateway.
func controlContainer(t *testing.T, instance string) (string, string) {
	name := instance + "-control"
	t.Cleanup(func() {
		run(t, "docker", "rm", "-f", name)
		run(t, "docker", "network", "rm", name)
	})
	docker(t, "network", "create", "--label", "org.moat.test.run="+instance, name)
	docker(t, "run", "-d", "--name", name, "--label", "org.moat.test.run="+instance, "--network", name, "--user", "0:0", "localhost/moat-examples/probe:1")
	gw := docker(t, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", name)
	return name, gw
}
