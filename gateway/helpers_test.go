package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is one request as the service received it.
type seen struct {
	Method string
	URI    string
	Host   string
	Header http.Header
	Body   string
}

// upstream is a fake shared service that records every request and answers
// with a body and a header a write-only tenant must never see.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: string(b)})
		u.mu.Unlock()
		w.Header().Set("X-Secret", "other-tenants-data")
		w.Header().Set("Location", "/logs/other-tenant")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "SECRET other tenant's log line")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// logBuf collects the gateway's log lines.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGateway runs a gateway in front of upstreamAddr; tweak edits the
// test defaults. It returns the gateway's address.
func startGateway(t *testing.T, mode, proto, upstreamAddr string, tweak func(*Config)) (string, *Gateway, *logBuf) {
	t.Helper()
	cfg := Defaults
	cfg.Tenant, cfg.Service, cfg.Mode, cfg.Protocol = "acme", "logging", mode, proto
	cfg.Listen, cfg.Upstream, cfg.MetricsListen = "127.0.0.1:0", upstreamAddr, ""
	cfg.RPS, cfg.Burst = 1000, 1000
	cfg.IdleTimeout = 2 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	logs := &logBuf{}
	g, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	return ln.Addr().String(), g, logs
}

// raw sends bytes as they are on one connection and returns every
// response read until the gateway closes it or goes quiet.
func raw(t *testing.T, addr, req string) []*http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	}
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func do(t *testing.T, method, url, payload string, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if payload != "" {
		rd = strings.NewReader(payload)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = []string{v} // as written: no canonicalisation
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// scrape returns the gateway's metrics in the text format.
func scrape(t *testing.T, g *Gateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	g.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
