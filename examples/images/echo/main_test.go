package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func fakeEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func newTestServer(t *testing.T, cfg config) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newHandler(cfg, newCallClient()))
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestHealthz(t *testing.T) {
	ts := newTestServer(t, config{})
	code, body := get(t, ts.URL+"/healthz")
	if code != http.StatusOK || string(body) != "ok" {
		t.Fatalf("got %d %q, want 200 \"ok\"", code, body)
	}
}

func TestSelectEnvOnlyAllowListed(t *testing.T) {
	env := fakeEnv(map[string]string{
		"APP_NAME":      "demo",
		"ECHO_ENV_KEYS": " COLOR , ,UNSET,TEAM",
		"COLOR":         "blue",
		"TEAM":          "a",
		"SECRET":        "do-not-leak",
	})
	cfg := loadConfig(env)
	if cfg.app != "demo" {
		t.Errorf("app = %q", cfg.app)
	}
	want := map[string]string{"COLOR": "blue", "TEAM": "a"}
	if len(cfg.env) != len(want) {
		t.Fatalf("env = %v, want %v", cfg.env, want)
	}
	for k, v := range want {
		if cfg.env[k] != v {
			t.Errorf("env[%s] = %q, want %q", k, cfg.env[k], v)
		}
	}
}

func TestEcho(t *testing.T) {
	cfg := config{app: "demo", host: "h1", env: map[string]string{"COLOR": "blue"}}
	ts := newTestServer(t, cfg)

	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/some/path?x=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["app"] != "demo" || got["host"] != "h1" || got["method"] != "POST" || got["path"] != "/some/path" {
		t.Errorf("unexpected echo: %v", got)
	}
	env, _ := got["env"].(map[string]any)
	if len(env) != 1 || env["COLOR"] != "blue" {
		t.Errorf("env = %v", got["env"])
	}
}

func TestEchoEmptyEnvIsObject(t *testing.T) {
	ts := newTestServer(t, loadConfig(fakeEnv(nil)))
	_, body := get(t, ts.URL+"/")
	var got map[string]json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if string(got["env"]) != "{}" {
		t.Errorf("env = %s, want {}", got["env"])
	}
}

func TestCallSuccess(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "hello from upstream")
	}))
	defer upstream.Close()
	ts := newTestServer(t, config{})

	code, body := get(t, ts.URL+"/call?url="+url.QueryEscape(upstream.URL+"/x"))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got callResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != http.StatusTeapot || got.Body != "hello from upstream" || got.Error != "" {
		t.Errorf("unexpected call response: %+v", got)
	}
}

func TestCallDoesNotFollowRedirects(t *testing.T) {
	upstream := httptest.NewServer(http.RedirectHandler("http://192.0.2.1/", http.StatusFound))
	defer upstream.Close()
	ts := newTestServer(t, config{})

	_, body := get(t, ts.URL+"/call?url="+url.QueryEscape(upstream.URL))
	var got callResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != http.StatusFound {
		t.Errorf("status = %d, want 302 (redirect not followed): %+v", got.Status, got)
	}
}

func TestCallUnreachableIs502(t *testing.T) {
	// Grab a free port and close it again, so nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ts := newTestServer(t, config{})
	code, body := get(t, ts.URL+"/call?url="+url.QueryEscape("http://"+addr+"/"))
	if code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", code, body)
	}
	var got callResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Error == "" {
		t.Errorf("missing error: %+v", got)
	}
}

func TestCallTimeoutIs502(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer upstream.Close()
	defer close(release)
	ts := newTestServer(t, config{})

	start := time.Now()
	code, _ := get(t, ts.URL+"/call?url="+url.QueryEscape(upstream.URL))
	if code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", code)
	}
	if d := time.Since(start); d > callTimeout+time.Second {
		t.Errorf("call took %s, want about %s", d, callTimeout)
	}
}

func TestCallRejectsBadURL(t *testing.T) {
	ts := newTestServer(t, config{})
	for _, u := range []string{"", "file:///etc/passwd", "/relative", "http://"} {
		code, _ := get(t, ts.URL+"/call?url="+url.QueryEscape(u))
		if code != http.StatusBadRequest {
			t.Errorf("url %q: status %d, want 400", u, code)
		}
	}
}
