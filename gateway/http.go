package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// methodOverrideHeaders are the headers frameworks (Rails, Laravel, Express
// method-override, Spring's HiddenHttpMethodFilter behind proxies, Google
// APIs) read to treat a POST as another method. Behind a write-only gateway
// "POST + X-HTTP-Method-Override: GET" would be a read; so in a restricted
// mode a request carrying one is refused outright.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// methodOverrideParams are the query parameters with the same effect.
var methodOverrideParams = []string{"_method", "method"}

// allowed is the set of methods each mode passes.
var allowed = map[string]map[string]bool{
	ReadOnly:  {http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true},
	WriteOnly: {http.MethodPost: true, http.MethodPut: true},
}

// headerKey normalises a header name the way the laxest server behind the
// gateway might read it: case-insensitive, and '_' equal to '-' (CGI,
// nginx with underscores_in_headers, some frameworks). Headers are compared
// in this form so that "x_moat_tenant" cannot pass as the identity.
func headerKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// httpProxy serves one tenant's HTTP requests to the service.
type httpProxy struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	rate   *bucket
	proxy  *httputil.ReverseProxy
	target *url.URL
}

func newHTTPProxy(cfg Config, log *slog.Logger, m *metrics, rate *bucket) *httpProxy {
	h := &httpProxy{cfg: cfg, log: log, m: m, rate: rate,
		target: &url.URL{Scheme: "http", Host: cfg.Upstream}}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.UpstreamTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		MaxConnsPerHost:       cfg.MaxConns,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		// Accept-Encoding is passed through as the client sent it; the
		// gateway never decompresses what it only relays.
		DisableCompression: true,
	}
	h.proxy = &httputil.ReverseProxy{
		// Rewrite, not Director: ReverseProxy removes the hop-by-hop headers
		// (including every header the client names in Connection) BEFORE
		// Rewrite runs, so "Connection: X-Moat-Tenant" cannot strip the
		// identity header the gateway sets here.
		Rewrite:        h.rewrite,
		Transport:      tr,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return h
}

// rewrite points the request at the service and sets the identity.
func (h *httpProxy) rewrite(pr *httputil.ProxyRequest) {
	// SetURL replaces scheme and host whatever the request line said: an
	// absolute-form URI ("GET http://elsewhere/ HTTP/1.1") still goes to
	// the service and nowhere else.
	pr.SetURL(h.target)
	pr.Out.URL.User = nil
	pr.Out.Host = h.cfg.Service
	for k := range pr.Out.Header {
		if strings.HasPrefix(headerKey(k), "x-moat-") {
			delete(pr.Out.Header, k)
		}
	}
	pr.Out.Header.Set(TenantHeader, h.cfg.Tenant)
}

// modifyResponse meters the response and, in write-only mode, drops
// everything but the status: the body and every header could carry data
// back to a tenant that may only write.
func (h *httpProxy) modifyResponse(resp *http.Response) error {
	if h.cfg.Mode == WriteOnly {
		// Drain a little so the upstream connection can be reused, then
		// drop the rest with the connection.
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		h.m.bytes.WithLabelValues("out-dropped").Add(float64(n))
		resp.Body.Close()
		resp.Body = http.NoBody
		resp.ContentLength = 0
		resp.Header = http.Header{"Content-Length": {"0"}}
		resp.Trailer = nil
		return nil
	}
	resp.Body = &countingReader{r: resp.Body, add: h.m.bytes.WithLabelValues("out").Add}
	return nil
}

func (h *httpProxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	h.log.Warn("upstream error", "tenant", h.cfg.Tenant, "service", h.cfg.Service, "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "moat gateway: service unavailable", http.StatusBadGateway)
}

func (h *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		h.m.requests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
		h.m.latency.WithLabelValues().Observe(time.Since(start).Seconds())
	}()

	// Every request costs a token, denied ones too: a tenant cannot flood
	// the service, nor the gateway's own denial log.
	if !h.rate.allow() {
		h.m.throttled.WithLabelValues(reasonRate).Inc()
		sw.Header().Set("Retry-After", "1")
		http.Error(sw, "moat gateway: too many requests", http.StatusTooManyRequests)
		return
	}
	if reason, why := h.check(r); reason != "" {
		h.m.denials.WithLabelValues(reason).Inc()
		h.log.Warn("denied", "tenant", h.cfg.Tenant, "service", h.cfg.Service, "mode", h.cfg.Mode,
			"method", r.Method, "path", r.URL.Path, "reason", reason, "remote", r.RemoteAddr)
		http.Error(sw, fmt.Sprintf("moat gateway: %s: tenant %s has %s access to %s", why, h.cfg.Tenant, h.cfg.Mode, h.cfg.Service),
			http.StatusForbidden)
		return
	}

	// The body is read whole (it is bounded) before anything reaches the
	// service: an oversized chunked body is refused with 413 rather than cut
	// off half-way, and the service always gets a Content-Length framed
	// request, whatever framing tricks the client tried.
	if r.ContentLength > h.cfg.MaxBody {
		h.tooLarge(sw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	h.m.bytes.WithLabelValues("in").Add(float64(len(body)))
	if err != nil {
		http.Error(sw, "moat gateway: reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > h.cfg.MaxBody {
		h.tooLarge(sw, r)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	if len(body) == 0 && r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		r.Body = http.NoBody
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	h.proxy.ServeHTTP(sw, r.WithContext(ctx))
}

func (h *httpProxy) tooLarge(w http.ResponseWriter, r *http.Request) {
	h.m.throttled.WithLabelValues(reasonBody).Inc()
	h.log.Warn("body too large", "tenant", h.cfg.Tenant, "service", h.cfg.Service, "method", r.Method,
		"path", r.URL.Path, "limit", h.cfg.MaxBody, "remote", r.RemoteAddr)
	// The rest of the body is not read: close the connection after this.
	w.Header().Set("Connection", "close")
	http.Error(w, fmt.Sprintf("moat gateway: request body larger than %d bytes", h.cfg.MaxBody), http.StatusRequestEntityTooLarge)
}

// check returns a reason (a metrics label) and an explanation when the mode
// does not allow r, or "" when it does.
func (h *httpProxy) check(r *http.Request) (string, string) {
	// A tunnel or a protocol switch would carry bytes in both directions
	// past every check below, so no mode passes one.
	if r.Method == http.MethodConnect {
		return reasonUpgrade, "CONNECT is not allowed"
	}
	if r.Header.Get("Upgrade") != "" || hasToken(r.Header.Values("Connection"), "upgrade") {
		return reasonUpgrade, "protocol upgrades are not allowed"
	}
	if h.cfg.Mode == ReadWrite {
		return "", ""
	}
	for k := range r.Header {
		for _, o := range methodOverrideHeaders {
			if headerKey(k) == o {
				return reasonOverride, "method override header " + k + " is not allowed"
			}
		}
	}
	q := r.URL.Query()
	for _, p := range methodOverrideParams {
		if q.Has(p) {
			return reasonOverride, "method override parameter " + p + " is not allowed"
		}
	}
	if !allowed[h.cfg.Mode][r.Method] {
		return reasonMethod, r.Method + " is not allowed"
	}
	return "", ""
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// statusWriter records the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streamed responses streaming through the proxy.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// countingReader meters bytes as they are read.
type countingReader struct {
	r   io.ReadCloser
	add func(float64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(float64(n))
	}
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
