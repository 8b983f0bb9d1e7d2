package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// env returns a getenv func backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func runProbe(t *testing.T, getenv func(string) string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, getenv, &out, &errOut)
	return code, out.String() + errOut.String()
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDial(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	if code, out := runProbe(t, env(nil), "dial", "tcp", l.Addr().String()); code != exitOK || !strings.HasPrefix(out, "OK dial") {
		t.Errorf("dial open port: %d %q", code, out)
	}
	if code, out := runProbe(t, env(nil), "dial", "tcp", closedAddr(t)); code != exitFail || !strings.HasPrefix(out, "FAIL dial") {
		t.Errorf("dial closed port: %d %q", code, out)
	}
	if code, _ := runProbe(t, env(nil), "dial", "udp", l.Addr().String()); code != exitUsage {
		t.Errorf("dial udp: %d, want usage error", code)
	}
}

func TestHTTP(t *testing.T) {
	var gotMethod, gotBody string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotMethod, gotBody = r.Method, string(b)
		http.Error(w, "denied by test", http.StatusForbidden)
	}))
	defer ts.Close()

	// Any HTTP response counts, even a 403.
	code, out := runProbe(t, env(nil), "http", "GET", ts.URL+"/x")
	if code != exitOK || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "denied by test") {
		t.Errorf("GET: %d %q", code, out)
	}
	code, _ = runProbe(t, env(nil), "http", "post", ts.URL+"/logs", "hello")
	if code != exitOK || gotMethod != http.MethodPost || gotBody != "hello" {
		t.Errorf("POST: %d method=%q body=%q", code, gotMethod, gotBody)
	}
	if code, out := runProbe(t, env(nil), "http", "GET", "http://"+closedAddr(t)+"/"); code != exitFail || !strings.HasPrefix(out, "FAIL") {
		t.Errorf("GET closed port: %d %q", code, out)
	}
	if code, _ := runProbe(t, env(nil), "http", "DELETE", ts.URL); code != exitUsage {
		t.Errorf("DELETE: %d, want usage error", code)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)

	start := time.Now()
	code, _ := runProbe(t, env(map[string]string{"PROBE_TIMEOUT": "200ms"}), "http", "GET", ts.URL)
	if code != exitFail {
		t.Errorf("hanging server: %d, want %d", code, exitFail)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s despite PROBE_TIMEOUT=200ms", d)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"dial", "tcp"}, {"http", "GET"}, {"http", "GET", "u", "b", "extra"}} {
		if code, out := runProbe(t, env(nil), args...); code != exitUsage || !strings.Contains(out, "usage:") {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	if code, _ := runProbe(t, env(map[string]string{"PROBE_TIMEOUT": "soon"}), "dial", "tcp", "127.0.0.1:1"); code != exitUsage {
		t.Errorf("bad PROBE_TIMEOUT: %d, want usage error", code)
	}
}

func TestServeHandler(t *testing.T) {
	ts := httptest.NewServer(newHandler())
	defer ts.Close()
	for path, want := range map[string]string{"/healthz": "ok", "/": "probe", "/other": "probe"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
}

func TestReadWriteBind(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/f"
	if code, out := runProbe(t, env(nil), "read", p); code != exitFail || !strings.HasPrefix(out, "FAIL read") {
		t.Errorf("read missing file: %d %q", code, out)
	}
	if code, out := runProbe(t, env(nil), "write", p, "hello"); code != exitOK || !strings.HasPrefix(out, "OK write") {
		t.Errorf("write: %d %q", code, out)
	}
	if code, out := runProbe(t, env(nil), "read", p); code != exitOK || !strings.Contains(out, "hello") {
		t.Errorf("read: %d %q", code, out)
	}
	if code, out := runProbe(t, env(nil), "write", dir+"/no/such/dir", "x"); code != exitFail || !strings.HasPrefix(out, "FAIL write") {
		t.Errorf("write into a missing dir: %d %q", code, out)
	}
	if code, out := runProbe(t, env(nil), "bind", "tcp", "127.0.0.1:0"); code != exitOK || !strings.HasPrefix(out, "OK bind") {
		t.Errorf("bind: %d %q", code, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if code, out := runProbe(t, env(nil), "bind", "tcp", l.Addr().String()); code != exitFail || !strings.HasPrefix(out, "FAIL bind") {
		t.Errorf("bind a taken port: %d %q", code, out)
	}
}

// TestRawSocket: the result depends on CAP_NET_RAW, so only the shape of
// the answer is checked (isolation tests check the outcome in containers).
func TestRawSocket(t *testing.T) {
	var out bytes.Buffer
	code := run([]string{"raw"}, func(string) string { return "" }, &out, &out)
	if (code == exitOK) != strings.HasPrefix(out.String(), "OK raw") || (code != exitOK && code != exitFail) {
		t.Errorf("exit %d with %q", code, out.String())
	}
}
