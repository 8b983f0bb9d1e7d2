package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Gateway is one configured gateway, ready to serve.
type Gateway struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	rate *bucket
	http *httpProxy // nil for tcp
	tcp  *tcpProxy  // nil for http
}

// New checks cfg and builds the gateway.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{cfg: cfg, log: log, m: newMetrics(cfg.Tenant, cfg.Service), rate: newBucket(cfg.RPS, cfg.Burst, nil)}
	if cfg.Protocol == ProtoHTTP {
		g.http = newHTTPProxy(cfg, log, g.m, g.rate)
	} else {
		g.tcp = &tcpProxy{cfg: cfg, log: log, m: g.m, rate: g.rate}
	}
	return g, nil
}

// MetricsHandler serves the gateway's Prometheus metrics.
func (g *Gateway) MetricsHandler() http.Handler { return g.m.handler() }

// Serve serves tenants on ln (wrapped in the connection limit) until ctx
// ends, then drains for at most drain.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, drain time.Duration) error {
	ll := newLimitListener(ln, g.cfg.MaxConns, g.rejectConn)
	if g.tcp != nil {
		errc := make(chan error, 1)
		go func() { errc <- g.tcp.serve(ll) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			ll.Close()
			<-errc
			return nil
		}
	}
	srv := &http.Server{
		Handler:           g.http,
		ReadHeaderTimeout: g.cfg.HeaderTimeout,
		// The body is read within the request timeout too: a client that
		// trickles its body cannot hold a connection slot for ever.
		ReadTimeout:    g.cfg.HeaderTimeout + g.cfg.RequestTimeout,
		WriteTimeout:   g.cfg.HeaderTimeout + g.cfg.RequestTimeout + time.Second,
		IdleTimeout:    g.cfg.IdleTimeout,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				g.m.conns.WithLabelValues().Inc()
			case http.StateClosed, http.StateHijacked:
				g.m.conns.WithLabelValues().Dec()
			}
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ll) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// rejectConn answers a connection over the concurrent-connection limit.
func (g *Gateway) rejectConn(c net.Conn) {
	defer c.Close()
	g.m.throttled.WithLabelValues(reasonConns).Inc()
	g.log.Warn("connection limit", "tenant", g.cfg.Tenant, "service", g.cfg.Service, "limit", g.cfg.MaxConns,
		"remote", c.RemoteAddr().String())
	if g.http == nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	const body = "moat gateway: too many connections\n"
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// Run listens on cfg.Listen (and cfg.MetricsListen) and serves until ctx
// ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	g, err := New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", cfg.Listen, err)
	}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: metrics listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", g.MetricsHandler())
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
	}
	g.log.Info("gateway listening", "tenant", cfg.Tenant, "service", cfg.Service, "mode", cfg.Mode,
		"protocol", cfg.Protocol, "listen", cfg.Listen, "upstream", cfg.Upstream, "metrics", cfg.MetricsListen,
		"maxBody", cfg.MaxBody, "rps", cfg.RPS, "burst", cfg.Burst, "maxConns", cfg.MaxConns)
	return g.Serve(ctx, ln, 5*time.Second)
}
