// Command echo is a tiny HTTP echo service used as a moat example image.
//
// It is built as a static binary and shipped in a FROM scratch image, so it
// needs no shell, no writable filesystem and no privileges: it runs as
// 65534:65534 with a read-only root filesystem and all capabilities dropped.
//
// Endpoints:
//
//	GET /healthz          200 "ok"
//	GET /call?url=URL     outbound GET (2 s timeout); 200 JSON with the
//	                      upstream status and body, or 502 JSON with the error
//	anything else         200 JSON describing the request:
//	                      {"app","host","method","path","env"}
//
// Configuration (environment):
//
//	LISTEN         listen address (default ":8080")
//	APP_NAME       value reported as "app"
//	ECHO_ENV_KEYS  comma separated list of environment variable names whose
//	               values are reported under "env"; nothing else is exposed
//
// The /call endpoint exists so that isolation tests can prove which
// containers can reach which: it dials directly (proxy variables are
// ignored) and does not follow redirects, so the answer always describes
// the target that was asked for.
package main

import (
	"context"
	"encoding/json"
	"github.com/moat-platform/moat/examples/images/internal/serve"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const (
	// callTimeout bounds the whole outbound request made by /call.
	callTimeout = 2 * time.Second
	// maxCallBody caps how much of the upstream body /call relays.
	maxCallBody = 64 << 10
)

// echoResponse is the JSON document returned for ordinary requests.
type echoResponse struct {
	App    string            `json:"app"`
	Host   string            `json:"host"`
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Env    map[string]string `json:"env"`
}

// callResponse is the JSON document returned by /call.
type callResponse struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// config holds everything the handlers need; it is read once at startup.
type config struct {
	app  string
	host string
	env  map[string]string // only the allow-listed variables
}

// loadConfig reads the process environment. Only variables named in
// ECHO_ENV_KEYS (and actually set) end up in env.
func loadConfig(getenv func(string) (string, bool)) config {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	app, _ := getenv("APP_NAME")
	keys, _ := getenv("ECHO_ENV_KEYS")
	return config{app: app, host: host, env: selectEnv(keys, getenv)}
}

// selectEnv returns the values of the comma separated variable names in
// keys. Blank names and unset variables are skipped.
func selectEnv(keys string, getenv func(string) (string, bool)) map[string]string {
	env := map[string]string{}
	for _, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if v, ok := getenv(k); ok {
			env[k] = v
		}
	}
	return env
}

// newHandler builds the HTTP routes. client is used by /call.
func newHandler(cfg config, client *http.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		handleCall(w, r, client)
	})
	// Catch-all: describe the request (any method, any path).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, echoResponse{
			App:    cfg.app,
			Host:   cfg.host,
			Method: r.Method,
			Path:   r.URL.Path,
			Env:    cfg.env,
		})
	})
	return mux
}

// handleCall performs GET ?url=... and reports the outcome.
func handleCall(w http.ResponseWriter, r *http.Request, client *http.Client) {
	target := r.URL.Query().Get("url")
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeJSON(w, http.StatusBadRequest, callResponse{URL: target,
			Error: "query parameter url must be an absolute http:// or https:// URL"})
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, callResponse{URL: target, Error: err.Error()})
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, callResponse{URL: target, Error: err.Error()})
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCallBody))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, callResponse{URL: target, Status: resp.StatusCode,
			Error: "reading upstream body: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, callResponse{URL: target, Status: resp.StatusCode, Body: string(body)})
}

// newCallClient returns the client used by /call: direct connections only
// (no proxy from the environment), no redirect following, 2 s overall.
func newCallClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{
		Transport: tr,
		Timeout:   callTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		log.Printf("writing response: %v", err)
	}
}

func getenvDefault(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	cfg := loadConfig(os.LookupEnv)
	srv := &http.Server{
		Addr:              getenvDefault("LISTEN", ":8080"),
		Handler:           newHandler(cfg, newCallClient()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("echo app=%q listening on %s", cfg.app, srv.Addr)
	if err := serve.Run(ctx, srv); err != nil {
		log.Printf("echo: %v", err)
		os.Exit(1)
	}
	log.Printf("echo stopped")
}
