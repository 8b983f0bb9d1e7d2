package watch

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxWebhookBody is the largest webhook body accepted. A larger one is
// refused from its Content-Length, or after reading one byte past the
// limit: never read whole.
const MaxWebhookBody = 1 << 20

// Endpoints lists the HTTP paths (docs/WATCH.md documents each).
var Endpoints = []string{"/healthz", "/readyz", "/status", "/metrics", "/hooks/git"}

// ReadSecret reads a secret from a file (webhook secret, https token):
// never from a flag or the environment, where ps or /proc shows it. One
// trailing newline is dropped.
func ReadSecret(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", file)
	}
	return b, nil
}

// Handler serves the watcher's HTTP endpoints. webhookSecret nil turns
// the webhook off (404).
func (w *Watcher) Handler(webhookSecret []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		s := w.Status()
		if !s.Ready {
			why := "no revision applied yet"
			if !s.EngineReachable {
				why = "engine unreachable"
			}
			http.Error(rw, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(rw, "ready\n")
	})
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		enc.Encode(w.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/hooks/git", func(rw http.ResponseWriter, r *http.Request) {
		outcome, code := w.webhook(r, webhookSecret)
		w.m.Webhooks.WithLabelValues(outcome).Inc()
		if code >= 300 {
			w.log.Warn("webhook refused", "outcome", outcome, "remote", r.RemoteAddr)
			http.Error(rw, outcome, code)
			return
		}
		rw.WriteHeader(code)
		io.WriteString(rw, "accepted\n")
	})
	return mux
}

// webhook authenticates a push notification: GitHub and Gitea sign the
// body with HMAC-SHA256 (X-Hub-Signature-256: sha256=<hex>); GitLab sends
// the secret itself (X-Gitlab-Token). Both are compared in constant time.
// The body's content is not trusted for anything: a valid call only
// triggers a fetch of the configured branch.
func (w *Watcher) webhook(r *http.Request, secret []byte) (string, int) {
	if secret == nil {
		return "disabled", http.StatusNotFound
	}
	if r.Method != http.MethodPost {
		return "bad_method", http.StatusMethodNotAllowed
	}
	if r.ContentLength > MaxWebhookBody {
		return "too_large", http.StatusRequestEntityTooLarge
	}
	if tok := r.Header.Get("X-Gitlab-Token"); tok != "" {
		if subtle.ConstantTimeCompare([]byte(tok), secret) != 1 {
			return "unauthorized", http.StatusUnauthorized
		}
		// Drain what is left (bounded) so the connection can be reused.
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(nil, r.Body, MaxWebhookBody)); err != nil {
			return "too_large", http.StatusRequestEntityTooLarge
		}
		w.Trigger("webhook")
		return "accepted", http.StatusAccepted
	}
	sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	if !ok {
		return "unauthorized", http.StatusUnauthorized
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return "unauthorized", http.StatusUnauthorized
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxWebhookBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "too_large", http.StatusRequestEntityTooLarge
	}
	if err != nil {
		return "bad_request", http.StatusBadRequest
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return "unauthorized", http.StatusUnauthorized
	}
	w.Trigger("webhook")
	return "accepted", http.StatusAccepted
}
