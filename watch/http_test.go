package watch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// countingReader counts what the server read of a body.
type countingReader struct {
	n, limit int64
	read     atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	if c.n >= c.limit {
		return 0, io.EOF
	}
	n := int64(len(b))
	if n > c.limit-c.n {
		n = c.limit - c.n
	}
	clear(b[:n])
	c.n += n
	c.read.Add(n)
	return int(n), nil
}

func TestWebhook(t *testing.T) {
	secret := []byte("topsecret")
	w := New(Options{Source: &DirSource{}})
	h := w.Handler(secret)
	body := []byte(`{"ref":"refs/heads/main"}`)
	post := func(r io.Reader, hdr map[string]string, length int64) int {
		req := httptest.NewRequest(http.MethodPost, "/hooks/git", r)
		req.ContentLength = length
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	triggered := func() bool {
		select {
		case <-w.wake:
			w.takeReasons()
			return true
		default:
			return false
		}
	}
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"github signature", map[string]string{"X-Hub-Signature-256": sign(secret, body)}, 202},
		{"gitlab token", map[string]string{"X-Gitlab-Token": "topsecret"}, 202},
		{"unsigned", nil, 401},
		{"bad signature", map[string]string{"X-Hub-Signature-256": sign([]byte("other"), body)}, 401},
		{"signature of another body", map[string]string{"X-Hub-Signature-256": sign(secret, []byte("{}"))}, 401},
		{"not hex", map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 401},
		{"sha1 only", map[string]string{"X-Hub-Signature": "sha1=00"}, 401},
		{"bad gitlab token", map[string]string{"X-Gitlab-Token": "topsecreT"}, 401},
	}
	for _, tc := range cases {
		if got := post(strings.NewReader(string(body)), tc.hdr, int64(len(body))); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if trig := triggered(); trig != (tc.want == 202) {
			t.Errorf("%s: triggered %v", tc.name, trig)
		}
	}
	// 10 MB: refused from its Content-Length without a byte read, or,
	// when the length is not announced, after one byte past the limit.
	big := &countingReader{limit: 10 << 20}
	if got := post(big, map[string]string{"X-Hub-Signature-256": sign(secret, body)}, 10<<20); got != 413 {
		t.Errorf("10 MB with length: %d", got)
	}
	if n := big.read.Load(); n != 0 {
		t.Errorf("read %d bytes of a body announced as 10 MB", n)
	}
	big = &countingReader{limit: 10 << 20}
	if got := post(big, map[string]string{"X-Hub-Signature-256": sign(secret, body)}, -1); got != 413 {
		t.Errorf("10 MB chunked: %d", got)
	}
	if n := big.read.Load(); n > MaxWebhookBody+64<<10 {
		t.Errorf("read %d bytes of a 10 MB chunked body, limit %d", n, MaxWebhookBody)
	}
	big = &countingReader{limit: 10 << 20}
	if got := post(big, map[string]string{"X-Gitlab-Token": "topsecret"}, -1); got != 413 {
		t.Errorf("10 MB chunked with gitlab token: %d", got)
	}
	if triggered() {
		t.Error("an oversized body triggered a round")
	}
	// Off without a secret.
	off := New(Options{Source: &DirSource{}}).Handler(nil)
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader("{}")))
	if rec.Code != 404 {
		t.Errorf("webhook without a secret: %d", rec.Code)
	}
}

func TestHealthReadyStatusMetrics(t *testing.T) {
	f := newFixture(t)
	w := f.watcher(Options{})
	h := w.Handler(nil)
	get := func(p string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		return rec.Code, rec.Body.String()
	}
	if c, _ := get("/healthz"); c != 200 {
		t.Errorf("healthz %d", c)
	}
	if c, _ := get("/readyz"); c != 503 {
		t.Errorf("readyz before the first round: %d", c)
	}
	once(t, w)
	if c, b := get("/readyz"); c != 200 {
		t.Errorf("readyz after a round: %d %s", c, b)
	}
	if c, b := get("/status"); c != 200 || !strings.Contains(b, `"lastApplied"`) || !strings.Contains(b, `"lastPlan"`) {
		t.Errorf("status: %d %s", c, b)
	}
	c, b := get("/metrics")
	for _, m := range []string{"moat_reconciles_total{result=\"applied\"} 1", "moat_plan_operations_total", "moat_revision_info{revision=", "moat_ready 1"} {
		if c != 200 || !strings.Contains(b, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}
