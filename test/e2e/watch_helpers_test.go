package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gitRepo is a bare repository the test pushes to with the git CLI, and
// the work tree it pushes from.
type gitRepo struct {
	t          *testing.T
	bare, work string
}

func newGitRepo(t *testing.T, e *env) *gitRepo {
	t.Helper()
	g := &gitRepo{t: t, bare: filepath.Join(e.work, "repo.git"), work: filepath.Join(e.work, "clone")}
	g.git(e.work, "init", "-q", "--bare", "-b", "main", g.bare)
	g.git(e.work, "clone", "-q", g.bare, g.work)
	copyTree(t, e.config, g.work, nil)
	g.git(g.work, "checkout", "-q", "-b", "main")
	g.commit("initial config")
	return g
}

func (g *gitRepo) git(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.test", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits everything and pushes; it returns the new head.
func (g *gitRepo) commit(msg string) string {
	g.t.Helper()
	g.git(g.work, "add", "-A")
	g.git(g.work, "commit", "-q", "--allow-empty", "-m", msg)
	g.git(g.work, "push", "-q", "origin", "main")
	return g.git(g.work, "rev-parse", "HEAD")
}

func (g *gitRepo) edit(rel, old, new string) {
	g.t.Helper()
	p := filepath.Join(g.work, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		g.t.Fatal(err)
	}
	s := strings.Replace(string(b), old, new, 1)
	if s == string(b) {
		g.t.Fatalf("edit of %s changed nothing", rel)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// watchProc is a running moat watch.
type watchProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	secret []byte
	mu     sync.Mutex
	log    bytes.Buffer
	done   chan struct{}
	code   int
}

func (w *watchProc) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Write(b)
}

func (w *watchProc) Log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startWatch runs moat watch with the env's secrets, a webhook secret, a
// private lock dir and cache dir, and extra flags; env adds environment.
func (e *env) startWatch(env []string, args ...string) *watchProc {
	e.t.Helper()
	w := &watchProc{t: e.t, addr: freeAddr(e.t), secret: []byte("s3cret-webhook"), done: make(chan struct{})}
	secretFile := filepath.Join(e.work, "webhook-secret")
	if err := os.WriteFile(secretFile, w.secret, 0o600); err != nil {
		e.t.Fatal(err)
	}
	all := append([]string{"watch", "--secrets", e.secrets, "--listen", w.addr, "--webhook-secret-file", secretFile,
		"--cache-dir", filepath.Join(e.work, "cache")}, args...)
	w.cmd = exec.Command(moatBin, all...)
	w.cmd.Env = append(append(os.Environ(), "MOAT_LOCK_DIR="+e.lockDir()), env...)
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		w.cmd.Wait()
		w.code = w.cmd.ProcessState.ExitCode()
		close(w.done)
	}()
	e.t.Cleanup(func() {
		w.stop()
		if e.t.Failed() {
			e.t.Logf("moat watch log:\n%s", w.Log())
		}
	})
	return w
}

func (e *env) lockDir() string { return filepath.Join(e.work, "locks") }

// stop sends SIGTERM and returns the exit code.
func (w *watchProc) stop() int {
	select {
	case <-w.done:
		return w.code
	default:
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
		w.t.Errorf("moat watch did not stop within 30s of SIGTERM")
	}
	return w.code
}

type watchStatus struct {
	Ready           bool `json:"ready"`
	EngineReachable bool `json:"engineReachable"`
	LastApplied     *struct {
		Revision string `json:"revision"`
	} `json:"lastApplied"`
	LastSeen *struct {
		Revision    string   `json:"revision"`
		Valid       bool     `json:"valid"`
		Diagnostics []string `json:"diagnostics"`
		Refused     string   `json:"refused"`
	} `json:"lastSeen"`
	DriftCorrected int    `json:"driftCorrected"`
	Rounds         int    `json:"rounds"`
	LastError      string `json:"lastError"`
}

func (w *watchProc) status() (watchStatus, error) {
	var s watchStatus
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + w.addr + "/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func (w *watchProc) applied() string {
	s, err := w.status()
	if err != nil || s.LastApplied == nil {
		return ""
	}
	return s.LastApplied.Revision
}

func (w *watchProc) get(path string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + w.addr + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hook posts a push event signed as GitHub does (sign=false: a wrong
// signature).
func (w *watchProc) hook(sign bool) int {
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !sign {
		sig = "sha256=" + strings.Repeat("0", 64)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+w.addr+"/hooks/git", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", sig)
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("webhook: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// until polls cond every 10ms for at most d and returns how long it took.
func until(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// rss is the resident set size of pid in KiB.
func rss(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
