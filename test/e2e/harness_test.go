// Package e2e runs the real moat binary against the real Docker engine:
// the acceptance scenarios of plan and apply. Every object it makes belongs
// to a per-run instance "moattest-<random>" (names and labels carry it) and
// is removed at the end, also when a test fails. Traffic: only the local
// engine's socket.
package e2e

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
	"strings"
	"testing"
	"time"
)

var moatBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("MOAT_REQUIRE_DOCKER") == "1" {
			fmt.Fprintln(os.Stderr, "e2e: the Docker engine is required (MOAT_REQUIRE_DOCKER=1) but unreachable:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped: no Docker engine (set MOAT_REQUIRE_DOCKER=1 to fail instead)")
		return 0
	}
	dir, err := os.MkdirTemp("", "moat-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	moatBin = filepath.Join(dir, "moat")
	build := exec.Command("go", "build", "-o", moatBin, "../../cmd/moat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build moat:", err)
		return 1
	}
	// Idempotent: skips images whose binary is unchanged.
	img := exec.Command("bash", "../../scripts/build-images.sh")
	img.Stdout, img.Stderr = os.Stderr, os.Stderr
	if err := img.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build example images:", err)
		return 1
	}
	return m.Run()
}

// env is one test's private platform: a copy of the examples renamed to a
// per-run instance with its own address pool.
type env struct {
	t        *testing.T
	instance string
	config   string
	secrets  string
	work     string
}

// newEnv copies examples/platform and examples/platform-secrets into a temp
// dir, renames the instance to moattest-<random> and moves the 10.80.0.0/12
// pool to a random other /12 so parallel runs and the demo never overlap.
func newEnv(t *testing.T) *env {
	t.Helper()
	requireDocker(t)
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, instance: "moattest-" + hex.EncodeToString(b), work: t.TempDir()}
	e.config = filepath.Join(e.work, "config")
	e.secrets = filepath.Join(e.work, "secrets")
	n, _ := rand.Int(rand.Reader, big.NewInt(8))
	octet := fmt.Sprint(96 + 16*n.Int64()) // 96..208, /12-aligned, never 80
	copyTree(t, "../../examples/platform", e.config, func(s string) string {
		s = regexp.MustCompile(`(?m)^name: demo\b`).ReplaceAllString(s, "name: "+e.instance)
		return strings.ReplaceAll(s, "10.80.", "10."+octet+".")
	})
	copyTree(t, "../../examples/platform-secrets", e.secrets, nil)
	t.Cleanup(e.cleanup)
	return e
}

func requireDocker(t *testing.T) {
	if moatBin == "" {
		t.Skip("no Docker engine")
	}
}

// moat runs the binary and returns stdout, stderr and the exit code.
func (e *env) moat(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	return e.mustMoat(0, append([]string{"apply", e.config, "--secrets", e.secrets}, extra...)...)
}

func (e *env) plan(want int, extra ...string) string {
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

// containers returns name -> id of the instance's containers.
func (e *env) containers() map[string]string {
	e.t.Helper()
	out := docker(e.t, "ps", "-a", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Names}} {{.ID}}")
	m := map[string]string{}
	for _, l := range lines(out) {
		name, id, _ := strings.Cut(l, " ")
		if _, dup := m[name]; dup {
			e.t.Fatalf("container name %s twice", name)
		}
		m[name] = id
	}
	return m
}

func (e *env) networks() []string {
	out := docker(e.t, "network", "ls", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Name}}")
	return lines(out)
}

func (e *env) volumes() []string {
	out := docker(e.t, "volume", "ls", "--filter", "label=org.moat.instance="+e.instance, "--format", "{{.Name}}")
	return lines(out)
}

// cleanup removes every object of this run's instance, and the
// unmanaged test containers it started (named with the instance prefix).
func (e *env) cleanup() {
	// The host rules first: they are plain iptables state, not labelled.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, moatBin, "state", "rm-host-rules", e.config).CombinedOutput(); err != nil {
		e.t.Errorf("remove host rules: %v\n%s", err, out)
	}
	byLabel := func(kind string, args ...string) []string {
		out, _ := exec.Command("docker", append([]string{kind, "ls", "-q"}, args...)...).Output()
		return lines(string(out))
	}
	var ids []string
	for _, f := range []string{"label=org.moat.instance=" + e.instance, "name=" + e.instance} {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", f).Output()
		ids = append(ids, lines(string(out))...)
	}
	if len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	if nets := byLabel("network", "--filter", "label=org.moat.instance="+e.instance); len(nets) > 0 {
		exec.Command("docker", append([]string{"network", "rm"}, nets...)...).Run()
	}
	if vols := byLabel("volume", "--filter", "label=org.moat.instance="+e.instance); len(vols) > 0 {
		exec.Command("docker", append([]string{"volume", "rm", "-f"}, vols...)...).Run()
	}
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

func copyTree(t *testing.T, src, dst string, edit func(string) string) {
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
			b = []byte(edit(string(b)))
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edit rewrites a config file of the env.
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
