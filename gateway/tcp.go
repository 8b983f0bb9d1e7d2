package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// tcpProxy carries one tenant's TCP connections to the service, each
// direction only where the mode allows it: write-only carries client ->
// service bytes and drops whatever the service sends back; read-only the
// reverse; read-write both.
type tcpProxy struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	rate *bucket
}

func (p *tcpProxy) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go p.handle(c)
	}
}

func (p *tcpProxy) handle(c net.Conn) {
	start := time.Now()
	defer c.Close()
	p.m.conns.WithLabelValues().Inc()
	defer p.m.conns.WithLabelValues().Dec()
	if !p.rate.allow() {
		p.m.throttled.WithLabelValues(reasonRate).Inc()
		return
	}
	up, err := net.DialTimeout("tcp", p.cfg.Upstream, p.cfg.UpstreamTimeout)
	if err != nil {
		p.log.Warn("upstream error", "tenant", p.cfg.Tenant, "service", p.cfg.Service, "err", err)
		p.m.requests.WithLabelValues("tcp", "502").Inc()
		return
	}
	defer up.Close()
	toService := p.cfg.Mode != ReadOnly
	toClient := p.cfg.Mode != WriteOnly

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.pipe(c, up, toService, "in")
	}()
	go func() {
		defer wg.Done()
		p.pipe(up, c, toClient, "out")
	}()
	wg.Wait()
	p.m.requests.WithLabelValues("tcp", "").Inc()
	p.m.latency.WithLabelValues().Observe(time.Since(start).Seconds())
}

// pipe copies src to dst when pass, else reads and drops src (so the
// sender is never stalled, and nothing reaches dst). Each read waits at
// most the idle timeout. At src's end dst's write side is closed, so the
// peer sees EOF; a blocked direction closes dst's write side at once.
func (p *tcpProxy) pipe(src, dst net.Conn, pass bool, dir string) {
	if !pass {
		closeWrite(dst)
	}
	buf := make([]byte, 32<<10)
	dropped := false
	for {
		src.SetReadDeadline(time.Now().Add(p.cfg.IdleTimeout))
		n, err := src.Read(buf)
		if n > 0 {
			if pass {
				p.m.bytes.WithLabelValues(dir).Add(float64(n))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					src.Close()
					return
				}
			} else {
				p.m.bytes.WithLabelValues(dir + "-dropped").Add(float64(n))
				if !dropped && dir == "in" {
					// A client writing on a read-only connection: one denial
					// and one log line per connection, not per read.
					dropped = true
					p.m.denials.WithLabelValues(reasonDirection).Inc()
					p.log.Warn("denied", "tenant", p.cfg.Tenant, "service", p.cfg.Service, "mode", p.cfg.Mode,
						"reason", reasonDirection, "remote", src.RemoteAddr().String())
				}
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle too long: end the whole connection.
				src.Close()
				dst.Close()
				return
			}
			if pass {
				closeWrite(dst)
			}
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	if lc, ok := c.(*limitConn); ok {
		closeWrite(lc.Conn)
	}
}
