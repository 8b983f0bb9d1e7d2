// Package faultproxy is a Docker Engine API proxy on a unix socket that a
// test controls: it forwards every request to the real engine's socket
// unless a rule says to hold it forever (blackhole), delay it, answer it
// with an error status, or cut its connection. Tests point moat at it with
// DOCKER_HOST=p.Host() and inject faults without ever touching the
// machine's engine. It is for tests only.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Action is what a matching rule does to a request.
type Action int

const (
	// Pass forwards the request (after Delay, if set).
	Pass Action = iota
	// Blackhole reads the request and never answers; the connection stays
	// open until the client gives up or the proxy is closed.
	Blackhole
	// Status answers with Rule.Code and a Docker-style JSON error body.
	Status
	// Cut closes the client's connection without answering.
	Cut
)

// Rule selects requests and says what to do with them. Rules are checked
// in order; the first whose Match matches and whose window is open wins.
type Rule struct {
	// Method ("" any) and Path, a regexp on the path without the API
	// version prefix ("" any), e.g. `^/containers/create`.
	Method string
	Path   string
	// After lets this many matching requests pass before the rule acts.
	After int
	// Times is how often the rule acts once active (0: every time).
	Times int
	// Action and its parameters.
	Action Action
	Code   int           // for Status
	Delay  time.Duration // for Pass: wait this long before forwarding
	re     *regexp.Regexp
	seen   int
	acted  int
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	sock     string
	upstream string
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy

	mu    sync.Mutex
	rules []*Rule
	calls []string
	held  chan struct{} // closed by Close/Release: frees blackholed requests
	conns map[net.Conn]struct{}
}

// Start listens on a new unix socket in dir and forwards to upstream, a
// unix socket path such as /var/run/docker.sock.
func Start(dir, upstream string) (*Proxy, error) {
	sock := filepath.Join(dir, "engine.sock")
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen %s: %w", sock, err)
	}
	p := &Proxy{sock: sock, upstream: upstream, ln: ln, held: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", upstream)
		},
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
			r.Out.Host = r.In.Host
		},
		Transport:     tr,
		FlushInterval: -1, // stream events and logs as they come
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(p.serve),
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				p.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(p.conns, c)
			}
		},
	}
	go p.srv.Serve(ln) //nolint:errcheck // ends with Close
	return p, nil
}

// Host is the DOCKER_HOST value that reaches the proxy.
func (p *Proxy) Host() string { return "unix://" + p.sock }

// Socket is the proxy's socket path.
func (p *Proxy) Socket() string { return p.sock }

// Add appends a rule. It panics on a bad Path regexp (a test bug).
func (p *Proxy) Add(r Rule) {
	if r.Path != "" {
		r.re = regexp.MustCompile(r.Path)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Reset drops every rule and frees every blackholed request (they are
// answered by cutting their connection): the proxy forwards everything
// again.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	close(p.held)
	p.held = make(chan struct{})
}

// CutAll closes every client connection now, as a network cut would.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	close(p.held)
	p.held = make(chan struct{})
}

// Calls returns "METHOD /path" of every request seen, in order.
func (p *Proxy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// Close stops the proxy and frees everything it holds.
func (p *Proxy) Close() error {
	p.mu.Lock()
	close(p.held)
	p.held = make(chan struct{})
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	_ = os.Remove(p.sock)
	return err
}

// pick returns the acting rule for r (nil: pass through) and the channel
// that frees a blackholed request.
func (p *Proxy) pick(method, path string) (*Rule, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, method+" "+path)
	for _, rule := range p.rules {
		if rule.Method != "" && !strings.EqualFold(rule.Method, method) {
			continue
		}
		if rule.re != nil && !rule.re.MatchString(path) {
			continue
		}
		rule.seen++
		if rule.seen <= rule.After {
			continue
		}
		if rule.Times > 0 && rule.acted >= rule.Times {
			continue
		}
		rule.acted++
		cp := *rule
		return &cp, p.held
	}
	return nil, p.held
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	rule, held := p.pick(r.Method, path)
	if rule == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	switch rule.Action {
	case Pass:
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
			return
		case <-held:
		}
		p.rp.ServeHTTP(w, r)
	case Blackhole:
		select {
		case <-r.Context().Done():
		case <-held:
		}
		hijackClose(w)
	case Status:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rule.Code)
		fmt.Fprintf(w, "{\"message\":\"faultproxy: injected status %d\"}\n", rule.Code)
	case Cut:
		hijackClose(w)
	}
}

// hijackClose closes the connection under w without an answer.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(errors.New("faultproxy: connection cannot be hijacked"))
	}
	c, _, err := hj.Hijack()
	if err == nil {
		c.Close()
	}
}
