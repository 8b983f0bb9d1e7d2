// Package swarm runs the real moat binary against a real Docker Swarm
// (issue 11's acceptance): the examples on Swarm, a zero-downtime one-app
// update, isolation from inside tenant tasks, secrets that never touch a
// disk, and hand-made drift of services and overlays.
//
// It runs only with MOAT_SWARM=1 (scripts/swarm.sh test sets it, after
// making the engine a single-node Swarm); with MOAT_SWARM=1 and an engine
// that is no Swarm manager it fails instead of skipping. Every object it
// makes belongs to a per-run instance "moatsw-<random>" (names and labels
// carry it) and is removed at the end, also when a test fails. Traffic:
// only the local engine's socket and the test's own containers.
//
// Every test is named TestSwarm*, so that `go test -run Swarm` selects the
// Swarm tests of every package at once.
package swarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var moatBin string

// hostProtection: the node's docker_gwbridge is moat's, so the platforms
// keep host protection on (see runMain).
var hostProtection bool

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv("MOAT_SWARM") != "1" {
		// moatBin stays empty: every test skips (requireSwarm).
		return m.Run()
	}
	out, err := exec.Command("docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "swarm: MOAT_SWARM=1 but the Docker engine is unreachable:", err)
		return 1
	}
	if got := strings.TrimSpace(string(out)); got != "active true" {
		fmt.Fprintf(os.Stderr, "swarm: MOAT_SWARM=1 but the engine is no active Swarm manager (state/manager: %q); run the suite with scripts/swarm.sh test\n", got)
		return 1
	}
	// Host protection on Swarm guards the node's docker_gwbridge, which
	// must have been made for moat before the node joined (docs/SWARM.md;
	// scripts/swarm.sh up does). On a Swarm made otherwise the suite runs
	// only when asked to use it as it is, and then without host protection.
	gw, _ := exec.Command("docker", "network", "inspect", "--format",
		`{{index .Options "com.docker.network.bridge.name"}} icc={{index .Options "com.docker.network.bridge.enable_icc"}}`, "docker_gwbridge").Output()
	switch got := strings.TrimSpace(string(gw)); {
	case got == "moat-gwbridge icc=false":
		hostProtection = true
	case os.Getenv("MOAT_SWARM_USE_EXISTING") == "1":
		fmt.Fprintf(os.Stderr, "swarm: docker_gwbridge is %q, not made for moat (moat-gwbridge, ICC off): MOAT_SWARM_USE_EXISTING=1, so the suite runs with hostProtection: false and does not test host protection\n", got)
	default:
		fmt.Fprintf(os.Stderr, "swarm: docker_gwbridge is %q, not made for moat (moat-gwbridge, ICC off; docs/SWARM.md): run the suite through scripts/swarm.sh test, or set MOAT_SWARM_USE_EXISTING=1 to run it without host protection\n", got)
		return 1
	}
	dir, err := os.MkdirTemp("", "moat-swarm-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	moatBin = filepath.Join(dir, "moat")
	build := exec.Command("go", "build", "-o", moatBin, "../../cmd/moat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "swarm: build moat:", err)
		return 1
	}
	// Idempotent: skips images whose binary is unchanged. The gateways
	// run moat's own image.
	img := exec.Command("bash", "../../scripts/build-images.sh")
	img.Stdout, img.Stderr = os.Stderr, os.Stderr
	if err := img.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "swarm: build images:", err)
		return 1
	}
	return m.Run()
}

func requireSwarm(t *testing.T) {
	t.Helper()
	if moatBin == "" {
		t.Skip("the Swarm suite runs with MOAT_SWARM=1 on a Swarm manager (scripts/swarm.sh test)")
	}
}

// env is one test's private platform on the Swarm.
type env struct {
	t        *testing.T
	instance string
	octet    string // the platform's pool is 10.<octet>.0.0/16
	config   string
	secrets  string // the test's copy of the secret store
	work     string
	tags     []string // the run's own image tags (see pinImages)
}

// with is the env seen from a subtest: its helpers fail t, not the
// parent (a subtest must not FailNow its parent).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// images are the images the tests run; each run tags them for itself.
var images = []string{
	"localhost/moat-examples/echo", "localhost/moat-examples/probe", "localhost/moat-examples/logsink",
	"localhost/moat-examples/masterdata", "localhost/moat/moat",
}

// pinImages tags every image the run uses with the run's instance name
// (":1" -> ":<instance>"), so that another build of the shared ":1" tags
// during the run (others' tests on this engine rebuild them) is not a tag
// that moved under the run's services.
func (e *env) pinImages() {
	e.t.Helper()
	for _, img := range images {
		docker(e.t, "tag", img+":1", img+":"+e.instance)
		e.tags = append(e.tags, img+":"+e.instance)
	}
}

var imageRef = regexp.MustCompile(`\b(localhost/moat(?:-examples)?/[a-z]+):1\b`)

// pin rewrites config text to the run's own image tags.
func (e *env) pin(s string) string {
	return imageRef.ReplaceAllString(s, "${1}:"+e.instance)
}

// newEnv makes an empty env: a per-run instance name and a free /16, on
// a single-node Swarm (it waits while another run's second node is joined).
func newEnv(t *testing.T) *env {
	t.Helper()
	requireSwarm(t)
	waitSingleNode(t)
	return makeEnv(t)
}

// newMultiNodeEnv is newEnv for the two-node test, which needs the second
// node joined (waiting for one node would wait for its own worker to go).
func newMultiNodeEnv(t *testing.T) *env {
	t.Helper()
	requireSwarm(t)
	return makeEnv(t)
}

func makeEnv(t *testing.T) *env {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, instance: "moatsw-" + hex.EncodeToString(b), work: t.TempDir()}
	e.config = filepath.Join(e.work, "config")
	e.secrets = filepath.Join(e.work, "secrets")
	e.octet = freeOctet(t)
	// The instance names every object of the run: a leftover found later
	// (swarm.sh down lists them) is traced to its test by this line.
	t.Logf("env: instance %s, addresses 10.%s.0.0/16", e.instance, e.octet)
	t.Cleanup(e.cleanup)
	e.pinImages()
	return e
}

// waitSingleNode waits while the Swarm has more than one node: the suite
// needs its tasks on this engine (the run's own image tags live here, and
// the helpers exec into task containers through this engine). A second
// node is joined only by the two-node test (scripts/swarm-node.sh), after
// this suite in scripts/swarm.sh test, or by a parallel run of it.
func waitSingleNode(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for logged := false; ; {
		n := docker(t, "info", "--format", "{{.Swarm.Nodes}}")
		if n == "1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Swarm has %s nodes, for 10 minutes; this suite needs one (its tasks must run on this engine)", n)
		}
		if !logged {
			t.Logf("the Swarm has %s nodes (a two-node test runs in parallel?): waiting until it has one", n)
			logged = true
		}
		time.Sleep(5 * time.Second)
	}
}

// newExamplesEnv copies examples/platform and its secrets, derived for
// Swarm as examples/platform/README.md says (engine: swarm, overlay LANs,
// encrypted), renamed to the run's instance and moved to its own /16.
func newExamplesEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	copyTree(t, "../../examples/platform", e.config, func(rel, s string) string {
		if rel == "platform.yaml" {
			s = swarmPlatform(t, s, e.instance, e.octet)
		}
		return e.pin(strings.ReplaceAll(s, "10.80.", "10."+e.octet+"."))
	})
	copyTree(t, "../../examples/platform-secrets", e.secrets, nil)
	return e
}

// swarmPlatform derives the Swarm variant of the example platform.yaml
// as examples/platform/README.md does (engine swarm before network, the
// overlay driver, encrypted LANs), then renames the instance and gives it
// a /16 pool of its own (the link pool is then the pool's last /20).
func swarmPlatform(t *testing.T, s, instance, octet string) string {
	t.Helper()
	for _, r := range []struct{ re, to string }{
		{`(?m)^network:$`, "engine: swarm\nnetwork:"},
		{`(?m)^  driver: bridge .*$`, "  driver: overlay\n  encrypted: true"},
		{`(?m)^name: demo\b`, "name: " + instance},
		{`(?m)^  pool: 10\.80\.0\.0/12`, "  pool: 10." + octet + ".0.0/16"},
		{`(?m)^  hostProtection: true\b`, fmt.Sprintf("  hostProtection: %v", hostProtection)},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(s) {
			t.Fatalf("platform.yaml: %q not found: the examples changed, update swarmPlatform", r.re)
		}
		s = re.ReplaceAllString(s, r.to)
	}
	return s
}

// freeOctet picks x for a pool 10.x.0.0/16 that no Docker network uses,
// from 224-239: clear of the examples (10.80/12), of test/e2e (10.96-10.223),
// of the benchmarks (10.240, 10.241) and of scripts/swarm.sh's default
// address pool (10.250).
func freeOctet(t *testing.T) string {
	t.Helper()
	used := map[string]bool{}
	ids := lines(docker(t, "network", "ls", "-q"))
	if len(ids) > 0 {
		out, _ := exec.Command("docker", append([]string{"network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...).Output()
		for _, f := range strings.Fields(string(out)) {
			if p := strings.Split(f, "."); len(p) > 1 && p[0] == "10" {
				used[p[1]] = true
			}
		}
	}
	for i := 0; i < 64; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(16))
		o := strconv.Itoa(224 + int(n.Int64()))
		if !used[o] {
			return o
		}
	}
	t.Fatal("no free 10.x.0.0/16 in 10.224-10.239")
	return ""
}

// name is an engine name of the instance on Swarm: parts joined by "--".
func (e *env) name(parts ...string) string {
	return e.instance + "--" + strings.Join(parts, "--")
}

// moat runs the binary and returns stdout, stderr and the exit code.
func (e *env) moat(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, moatBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("moat %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustMoat runs moat and fails the test unless it exits with want.
func (e *env) mustMoat(want int, args ...string) string {
	e.t.Helper()
	out, errs, code := e.moat(args...)
	if code != want {
		e.t.Fatalf("moat %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out
}

func (e *env) apply(extra ...string) string {
	e.t.Helper()
	return e.mustMoat(0, append([]string{"apply", e.config, "--secrets", e.secrets}, extra...)...)
}

// plan runs plan --detailed-exitcode: 0 no changes, 2 changes.
func (e *env) plan(want int, extra ...string) string {
	e.t.Helper()
	return e.mustMoat(want, append([]string{"plan", e.config, "--secrets", e.secrets, "--detailed-exitcode"}, extra...)...)
}

// docker runs the docker CLI; it fails the test on error.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// run runs a command and returns its combined output and exit code; only
// a failure to start it fails the test.
func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out), 0
}

// services returns name -> version index of the instance's services.
func (e *env) services() map[string]uint64 {
	e.t.Helper()
	names := lines(docker(e.t, "service", "ls", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Name}}"))
	m := map[string]uint64{}
	if len(names) == 0 {
		return m
	}
	out := docker(e.t, append([]string{"service", "inspect", "--format", "{{.Spec.Name}} {{.Version.Index}}"}, names...)...)
	for _, l := range lines(out) {
		f := strings.Fields(l)
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			e.t.Fatalf("service version %q: %v", l, err)
		}
		m[f[0]] = v
	}
	return m
}

// replicas returns name -> "running/desired" of the instance's services.
func (e *env) replicas() map[string]string {
	e.t.Helper()
	m := map[string]string{}
	for _, l := range lines(docker(e.t, "service", "ls", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Name}} {{.Replicas}}")) {
		f := strings.Fields(l)
		m[f[0]] = f[1]
	}
	return m
}

// waitConverged waits until every service of the instance runs its one
// task (moat waits for that itself; this is the test's own check).
func (e *env) waitConverged(want int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := e.replicas()
		ok := len(r) == want
		for _, v := range r {
			ok = ok && v == "1/1"
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("services not converged: want %d at 1/1, have %v", want, r)
		}
		time.Sleep(time.Second)
	}
}

// task returns the id of the running task container of a service (one
// node: every task runs on this engine).
func task(t *testing.T, service string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ids := lines(docker(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service, "--filter", "status=running"))
		if len(ids) == 1 {
			return ids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: %d running task containers, want 1", service, len(ids))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// taskIP is the address of a service's task on one network.
func taskIP(t *testing.T, service, network string) string {
	t.Helper()
	ip := docker(t, "inspect", "--format", fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, network), task(t, service))
	if ip == "" {
		t.Fatalf("service %s has no address on %s", service, network)
	}
	return ip
}

// cleanup destroys the instance with moat, then removes by label (and by
// the instance's name prefix, for the test's own hand-made objects)
// whatever is left, and fails the test when anything remains.
func (e *env) cleanup() {
	if _, err := os.Stat(filepath.Join(e.config, "platform.yaml")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := exec.CommandContext(ctx, moatBin, "destroy", e.config, "--allow-mass-delete", "--allow-volume-delete").CombinedOutput()
		cancel()
		if err != nil {
			e.t.Errorf("moat destroy: %v\n%s", err, out)
		}
	}
	left := e.leftovers()
	if len(left) > 0 && !e.t.Failed() {
		e.t.Errorf("moat destroy left objects of %s behind: %v", e.instance, left)
	}
	e.removeByCLI()
	if left := e.leftovers(); len(left) > 0 {
		e.t.Errorf("objects of %s remain after cleanup: %v", e.instance, left)
	}
	// Untagging leaves the images (the ":1" tags hold them). A tag
	// already gone is fine: what matters is that none is left.
	for _, tag := range e.tags {
		untag(e.t, "", tag)
	}
	if left := e.leftovers(); len(left) == 0 {
		e.t.Logf("env: instance %s cleaned up, nothing left", e.instance)
	}
}

// untag removes one of the run's image tags from the engine at host
// ("" for the default), idempotently: "No such image" is success, and
// the tag is checked to be gone.
func untag(t *testing.T, host, tag string) {
	t.Helper()
	cmd := exec.Command("docker", "rmi", tag)
	if host != "" {
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
	}
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such image") {
		t.Errorf("docker rmi %s: %v\n%s", tag, err, out)
		return
	}
	check := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", tag)
	check.Env = cmd.Env
	if check.Run() == nil {
		t.Errorf("image tag %s is still there after docker rmi", tag)
	}
}

// leftovers lists every object of the instance still on the engine.
func (e *env) leftovers() []string {
	var all []string
	for _, q := range []struct{ cmd, format string }{
		{"service ls", "service {{.Name}}"},
		{"ps -a", "container {{.Names}}"},
		{"network ls", "network {{.Name}}"},
		{"secret ls", "secret {{.Name}}"},
		{"volume ls", "volume {{.Name}}"},
	} {
		for _, f := range []string{"label=org.moat.instance=" + e.instance, "name=" + e.instance} {
			args := append(strings.Fields(q.cmd), "--filter", f, "--format", q.format)
			out, _ := exec.Command("docker", args...).Output()
			all = append(all, lines(string(out))...)
		}
	}
	return dedupe(all)
}

// removeByCLI removes the instance's objects with the docker CLI:
// services first (their tasks hold the networks), then containers,
// networks, secrets, volumes.
func (e *env) removeByCLI() {
	ids := func(args ...string) []string {
		var all []string
		for _, f := range []string{"label=org.moat.instance=" + e.instance, "name=" + e.instance} {
			out, _ := exec.Command("docker", append(append([]string{}, args...), "--filter", f)...).Output()
			all = append(all, lines(string(out))...)
		}
		return dedupe(all)
	}
	if s := ids("service", "ls", "-q"); len(s) > 0 {
		exec.Command("docker", append([]string{"service", "rm"}, s...)...).Run()
	}
	// Task containers go asynchronously after their service.
	for i := 0; i < 60; i++ {
		if len(ids("ps", "-aq", "--filter", "label=com.docker.swarm.service.name")) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if c := ids("ps", "-aq"); len(c) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, c...)...).Run()
	}
	for i := 0; i < 20; i++ {
		n := ids("network", "ls", "-q")
		if len(n) == 0 {
			break
		}
		exec.Command("docker", append([]string{"network", "rm"}, n...)...).Run()
		time.Sleep(500 * time.Millisecond)
	}
	if s := ids("secret", "ls", "-q"); len(s) > 0 {
		exec.Command("docker", append([]string{"secret", "rm"}, s...)...).Run()
	}
	if v := ids("volume", "ls", "-q"); len(v) > 0 {
		exec.Command("docker", append([]string{"volume", "rm", "-f"}, v...)...).Run()
	}
}

func dedupe(in []string) []string {
	sort.Strings(in)
	var out []string
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// copyTree copies src to dst; edit (when set) rewrites each file, given
// its slash path relative to src.
func copyTree(t *testing.T, src, dst string, edit func(rel, s string) string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if edit != nil {
			b = []byte(edit(filepath.ToSlash(rel), string(b)))
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edit rewrites a config file of the env; it fails when nothing changed.
func (e *env) edit(rel string, f func(string) string) {
	e.t.Helper()
	p := filepath.Join(e.config, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	s := f(string(b))
	if s == string(b) {
		e.t.Fatalf("edit of %s changed nothing", rel)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// writeFiles writes config files (relative path -> content).
func (e *env) writeFiles(files map[string]string) {
	e.t.Helper()
	for rel, body := range files {
		p := filepath.Join(e.config, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(e.pin(body)), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// apiCalls reads moat --stats: the total and the per-endpoint lines.
func apiCalls(t *testing.T, stderr string) (int, string) {
	t.Helper()
	m := regexp.MustCompile(`engine API calls: (\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no stats in stderr:\n%s", stderr)
	}
	n, _ := strconv.Atoi(m[1])
	i := strings.Index(stderr, m[0])
	return n, stderr[i:]
}
