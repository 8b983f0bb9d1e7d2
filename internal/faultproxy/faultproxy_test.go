package faultproxy

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeEngine answers every request with 200 "ok" on a unix socket, so the
// proxy is tested without a real engine.
func fakeEngine(t *testing.T) string {
	sock := t.TempDir() + "/up.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func client(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func get(c *http.Client, path string) (int, error) {
	resp, err := c.Get("http://docker" + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestRules(t *testing.T) {
	p, err := Start(t.TempDir(), fakeEngine(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.Host(), "unix://") {
		t.Fatalf("host %q", p.Host())
	}
	c := client(p.Socket(), 500*time.Millisecond)

	if code, err := get(c, "/v1.41/_ping"); err != nil || code != 200 {
		t.Fatalf("pass: %d %v", code, err)
	}
	// One 500 on the second create, then pass.
	p.Add(Rule{Method: "POST", Path: `^/containers/create`, After: 1, Times: 1, Action: Status, Code: 500})
	for i, want := range []int{200, 500, 200} {
		req, _ := http.NewRequest("POST", "http://docker/v1.41/containers/create?name=x", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("create %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	// Blackhole: the client times out.
	p.Add(Rule{Path: `^/containers/json`, Action: Blackhole})
	if _, err := get(c, "/v1.41/containers/json"); err == nil {
		t.Fatal("blackholed request answered")
	}
	// Cut: the connection closes with no answer.
	p.Add(Rule{Path: `^/networks`, Action: Cut})
	if _, err := get(c, "/v1.41/networks"); err == nil {
		t.Fatal("cut request answered")
	}
	// Reset: everything passes again.
	p.Reset()
	if code, err := get(c, "/v1.41/containers/json"); err != nil || code != 200 {
		t.Fatalf("after reset: %d %v", code, err)
	}
	if n := len(p.Calls()); n != 7 {
		t.Fatalf("calls: %d %v", n, p.Calls())
	}
	p.Close()
	if _, err := os.Stat(p.Socket()); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
