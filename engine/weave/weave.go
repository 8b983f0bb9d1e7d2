// Package weave talks to a Weave Net router's HTTP API: it observes the
// router's live state (one GET /report) and connects or forgets peers. It
// is separate from engine/docker because the router API is not Docker's:
// the Docker networks of a Weave platform are still created through
// engine/docker, with the router's plugin as their driver.
//
// Observing never calls an endpoint that changes state: GET /ring primes
// the allocator and every POST acts, so only GET /report (with exactly
// "Accept: application/json", which selects the JSON view) is used.
package weave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// DefaultTimeout bounds every call to the router.
const DefaultTimeout = 10 * time.Second

// maxReport bounds what moat reads from /report (a mesh of thousands of
// DNS entries is a few MiB).
const maxReport = 32 << 20

// Options configure a Client.
type Options struct {
	// API is the router's HTTP address, "host:port" (loopback only is
	// enforced by validation) or an absolute unix socket path.
	API string
	// Bridge is the router's bridge on this host; its addresses are the
	// exposed CIDRs. "" skips reading them (a router on another host).
	Bridge string
	// Timeout per call; DefaultTimeout when zero.
	Timeout time.Duration
	// BridgeAddrs reads an interface's addresses; nil uses the host's.
	BridgeAddrs func(name string) ([]string, error)
}

// Client is a router API client. Safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	bridge  string
	timeout time.Duration
	addrs   func(string) ([]string, error)
}

// New returns a client for the router at opts.API.
func New(opts Options) (*Client, error) {
	if opts.API == "" {
		return nil, errors.New("weave: no router API address")
	}
	c := &Client{bridge: opts.Bridge, timeout: opts.Timeout, addrs: opts.BridgeAddrs}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.addrs == nil {
		c.addrs = interfaceAddrs
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if strings.HasPrefix(opts.API, "/") {
		sock := opts.API
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		c.base = "http://weave"
	} else {
		if _, _, err := net.SplitHostPort(opts.API); err != nil {
			return nil, fmt.Errorf("weave: router API address %q: %w", opts.API, err)
		}
		c.base = "http://" + opts.API
	}
	c.http = &http.Client{Transport: tr, Timeout: c.timeout,
		// The router never redirects; following one would send moat's
		// request somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// Observe reads the router's state: one GET /report, plus the bridge's
// addresses from the host.
func (c *Client) Observe(ctx context.Context) (*state.Weave, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/report", nil)
	if err != nil {
		return nil, fmt.Errorf("weave report: %w", err)
	}
	// Exactly this value: the router's route matches the header verbatim,
	// and anything else selects the template view (which wants ?format=).
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("weave report from %s: %w: %w", c.base, engine.ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReport+1))
	if err != nil {
		return nil, fmt.Errorf("weave report: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("weave report: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if len(body) > maxReport {
		return nil, fmt.Errorf("weave report: larger than %d MiB", maxReport>>20)
	}
	w, err := ParseReport(body)
	if err != nil {
		return nil, err
	}
	if c.bridge != "" {
		if w.Exposed, err = c.addrs(c.bridge); err != nil {
			return nil, fmt.Errorf("weave bridge %s: %w", c.bridge, err)
		}
	}
	return w, nil
}

// Connect tells the router to connect to a peer address (POST /connect).
// The router keeps the address as a target and retries it.
func (c *Client) Connect(ctx context.Context, addr string) error {
	if err := c.post(ctx, "/connect", url.Values{"peer": {addr}}); err != nil {
		return fmt.Errorf("weave connect %s: %w", addr, err)
	}
	return nil
}

// Forget removes a peer address from the router's targets and drops its
// connection (POST /forget).
func (c *Client) Forget(ctx context.Context, addr string) error {
	if err := c.post(ctx, "/forget", url.Values{"peer": {addr}}); err != nil {
		return fmt.Errorf("weave forget %s: %w", addr, err)
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, form url.Values) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", engine.ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// interfaceAddrs lists an interface's IPv4 CIDRs. A missing bridge has
// none (the router has not made it yet, or runs elsewhere).
func interfaceAddrs(name string) ([]string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		var nerr *net.OpError
		if errors.As(err, &nerr) || strings.Contains(err.Error(), "no such network interface") {
			return []string{}, nil
		}
		return nil, err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			out = append(out, ipn.String())
		}
	}
	return out, nil
}

// WithRouter joins a container engine and a Weave router into one engine:
// Observe adds the router's state to the container engine's snapshot (one
// more call), and plan operations on peers go to the router.
func WithRouter(eng engine.Engine, router *Client) engine.Engine {
	return &withRouter{Engine: eng, r: router}
}

type withRouter struct {
	engine.Engine
	r *Client
}

func (w *withRouter) Observe(ctx context.Context, instance string, volumes bool) (*state.Observed, error) {
	obs, err := w.Engine.Observe(ctx, instance, volumes)
	if err != nil {
		return nil, err
	}
	if obs.Weave, err = w.r.Observe(ctx); err != nil {
		return nil, err
	}
	return obs, nil
}

func (w *withRouter) ConnectPeer(ctx context.Context, addr string) error {
	return w.r.Connect(ctx, addr)
}

func (w *withRouter) ForgetPeer(ctx context.Context, addr string) error {
	return w.r.Forget(ctx, addr)
}

// CheckPasswordFile checks the mesh password file the platform names: it
// must exist, be a regular non-empty file, and be readable by its owner
// only (the password decrypts the mesh's traffic).
func CheckPasswordFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("weave password file: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("weave password file %s: not a regular file", path)
	case fi.Size() == 0:
		return fmt.Errorf("weave password file %s: empty", path)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("weave password file %s: mode %v lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	return nil
}

// InspectContainers forwards to the container engine (moat apply's audit
// needs it; the router has nothing to inspect).
func (w *withRouter) InspectContainers(ctx context.Context, obs *state.Observed) error {
	in, ok := w.Engine.(engine.Inspector)
	if !ok {
		return errors.New("this engine cannot inspect containers")
	}
	return in.InspectContainers(ctx, obs)
}
