// Package faults runs the real moat binary against the real Docker engine
// through a socket proxy the test controls (internal/faultproxy), and
// injects the faults of a host in trouble: an engine that stops
// answering, a cut connection, a slow engine, a 500. The machine's engine
// is never stopped or changed; only the proxy misbehaves. Every object a
// test makes belongs to a per-test instance "moattest-<hex>" (names and
// labels carry it) and is removed at the end, also on failure.
package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-platform/moat/internal/faultproxy"
)

var moatBin string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

// parallel is how many tests (and subtests) run at once unless -parallel
// says otherwise: most of a faulted run is waiting for a deadline, so
// running them side by side costs the engine little and the suite much
// less time than GOMAXPROCS (2 here) would.
const parallel = 4

func runMain(m *testing.M) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", fmt.Sprint(parallel))
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("MOAT_REQUIRE_DOCKER") == "1" {
			fmt.Fprintln(os.Stderr, "faults: the Docker engine is required (MOAT_REQUIRE_DOCKER=1) but unreachable:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "faults: skipped: no Docker engine (set MOAT_REQUIRE_DOCKER=1 to fail instead)")
		return 0
	}
	dir, err := os.MkdirTemp("", "moat-faults-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	moatBin = filepath.Join(dir, "moat")
	build := exec.Command("go", "build", "-o", moatBin, "../../cmd/moat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build moat:", err)
		return 1
	}
	img := exec.Command("bash", "../../scripts/build-images.sh", "echo")
	img.Stdout, img.Stderr = os.Stderr, os.Stderr
	if err := img.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build the echo image:", err)
		return 1
	}
	return m.Run()
}

// env is one test's platform: one tenant, two LANs, three apps (app0 on
// both LANs, app1 on lan0, app2 on lan1), so an apply from empty is two
// network creates, three container creates, one connect and three starts.
type env struct {
	t        *testing.T
	instance string
	config   string
	proxy    *faultproxy.Proxy
}

// apps is the number of containers the config asks for.
const apps = 3

var (
	pool16    = randInt(16)
	blockBase = randInt(64)
	blocks    atomic.Int64
)

func randInt(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if moatBin == "" {
		t.Skip("no Docker engine")
	}
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, instance: "moattest-" + hex.EncodeToString(b), config: filepath.Join(t.TempDir(), "config")}
	// A random /16 in 10.224.0.0/12 (clear of the demo's 10.80/12, the
	// benchmark's 10.240/15 and the e2e tests' pools) and a random /22
	// block in it, so parallel runs do not collide.
	// The /16 is drawn once per process and each env takes the next
	// block, so the envs of one run never overlap.
	n := blocks.Add(1)
	net := fmt.Sprintf("10.%d", 224+pool16)
	blk := 4 * ((blockBase + n) % 64)
	files := map[string]string{
		"platform.yaml": fmt.Sprintf(`kind: Platform
name: %s
network: {driver: bridge, pool: %s.0.0/16}
policy: {images: ["localhost/moat-examples/"], publishPorts: false}
runtime: {stopTimeout: 0}
`, e.instance, net),
		"platform/tenants.yaml": fmt.Sprintf(`kind: Tenant
name: t0
block: %s.%d.0/22
quota: {cpus: 2, memory: 512MiB, pids: 512, containers: 8}
`, net, blk),
		"tenants/t0/lans.yaml": fmt.Sprintf(`kind: Lan
name: lan0
subnet: %s.%d.0/24
internet: true
---
kind: Lan
name: lan1
subnet: %s.%d.0/24
internet: false
`, net, blk, net, blk+1),
		"tenants/t0/apps.yaml": `kind: App
name: app0
image: localhost/moat-examples/echo:1
lans: [lan0, lan1]
resources: {cpus: 0.1, memory: 32MiB, pids: 32}
---
kind: App
name: app1
image: localhost/moat-examples/echo:1
lans: [lan0]
resources: {cpus: 0.1, memory: 32MiB, pids: 32}
---
kind: App
name: app2
image: localhost/moat-examples/echo:1
lans: [lan1]
resources: {cpus: 0.1, memory: 32MiB, pids: 32}
`,
	}
	for name, body := range files {
		p := filepath.Join(e.config, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	upstream := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		upstream = strings.TrimPrefix(h, "unix://")
	} else if h != "" {
		t.Skipf("the fault proxy needs a unix socket engine, not DOCKER_HOST=%s", h)
	}
	p, err := faultproxy.Start(t.TempDir(), upstream)
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p
	t.Cleanup(func() {
		p.Close()
		e.cleanupSettled()
	})
	e.cleanup()
	return e
}

// result is one moat run.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// moat runs the binary with DOCKER_HOST at the proxy (viaProxy) or at the
// engine itself. A run that has not ended after 3 minutes is killed and
// fails the test: that is the hang this package exists to rule out.
func (e *env) moat(viaProxy bool, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, moatBin, args...)
	cmd.Env = os.Environ()
	if viaProxy {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+e.proxy.Host())
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		e.t.Fatalf("moat %s did not end within 3 minutes (killed)\n%s", strings.Join(args, " "), r)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("moat %v: %v", args, err)
	}
	return r
}

// converge applies through a healthy path (the proxy with every rule
// dropped) and checks the result: exit 0, an empty next plan, exactly the
// desired containers (no duplicates), all running (none left "created"),
// exactly the two LANs.
func (e *env) converge() result {
	e.t.Helper()
	e.proxy.Reset()
	r := e.moat(true, "apply", e.config)
	if r.code != 0 {
		e.t.Fatalf("the apply after the fault did not succeed: %s", r)
	}
	if p := e.moat(false, "plan", e.config, "--detailed-exitcode"); p.code != 0 {
		e.t.Fatalf("the plan after the re-apply is not empty: %s", p)
	}
	ctrs := e.docker("ps", "-a", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Names}} {{.State}}")
	if len(ctrs) != apps {
		e.t.Errorf("%d containers after the re-apply, want %d: %v", len(ctrs), apps, ctrs)
	}
	for _, c := range ctrs {
		if !strings.HasSuffix(c, " running") {
			e.t.Errorf("container not running after the re-apply: %s", c)
		}
	}
	if nets := e.docker("network", "ls", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Name}}"); len(nets) != 2 {
		e.t.Errorf("networks after the re-apply: %v, want 2", nets)
	}
	return r
}

// docker runs the docker CLI against the engine itself.
func (e *env) docker(args ...string) []string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// cleanupSettled removes every object of this instance and keeps looking
// for a while: a network create that a faulted or killed run left in
// flight becomes visible (and removable) only when the engine is done
// with it, seconds later on a loaded host.
func (e *env) cleanupSettled() {
	deadline := time.Now().Add(90 * time.Second)
	quiet := 0
	for quiet < 3 && time.Now().Before(deadline) {
		if e.cleanup() {
			quiet = 0
		} else {
			quiet++
		}
		time.Sleep(time.Second)
	}
	if quiet < 3 {
		e.t.Errorf("objects of instance %s kept appearing for 90 s after the test", e.instance)
	}
}

// cleanup removes every object of this instance (by label), through the
// engine itself, and says whether there was any.
func (e *env) cleanup() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list := func(args ...string) []string {
		out, _ := exec.CommandContext(ctx, "docker", args...).Output()
		return strings.Fields(string(out))
	}
	// The host rules first: plain iptables state, not labelled. Straight
	// to the engine, never through the proxy.
	if out, err := exec.CommandContext(ctx, moatBin, "state", "rm-host-rules", e.config).CombinedOutput(); err != nil {
		e.t.Errorf("remove host rules: %v\n%s", err, out)
	}
	f := "label=org.moat.instance=" + e.instance
	found := false
	if ids := list("ps", "-aq", "--filter", f); len(ids) > 0 {
		found = true
		exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	if ids := list("network", "ls", "-q", "--filter", f); len(ids) > 0 {
		found = true
		exec.CommandContext(ctx, "docker", append([]string{"network", "rm"}, ids...)...).Run()
	}
	if ids := list("volume", "ls", "-q", "--filter", f); len(ids) > 0 {
		found = true
		exec.CommandContext(ctx, "docker", append([]string{"volume", "rm", "-f"}, ids...)...).Run()
	}
	return found
}
