// Package gateway is the per-(tenant, shared service) gateway that moat
// puts between a tenant's LANs and a shared service (`moat gateway`). It
// enforces the granted access mode on the wire, tells the service who is
// calling (X-Moat-Tenant, never taken from the client), limits what one
// tenant can do to the service (body size, request rate, concurrent
// connections) and meters it (Prometheus metrics).
//
// One gateway serves one tenant, so every limit is per tenant by
// construction: a tenant that exhausts its own gateway slows down only
// itself. The package imports no Docker code; compile passes the
// configuration as command-line flags.
package gateway

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Access modes, the values of config's grants.
const (
	ReadOnly  = "read-only"
	WriteOnly = "write-only"
	ReadWrite = "read-write"
)

// Protocols a gateway carries.
const (
	ProtoHTTP = "http"
	ProtoTCP  = "tcp"
)

// TenantHeader is the identity header the gateway sets on every request it
// forwards; any copy the client sent is removed first.
const TenantHeader = "X-Moat-Tenant"

// Config is one gateway's configuration.
type Config struct {
	Tenant   string // the calling tenant, sent as X-Moat-Tenant
	Service  string // the shared service's name (metrics labels, logs)
	Mode     string // ReadOnly | WriteOnly | ReadWrite
	Protocol string // ProtoHTTP | ProtoTCP

	Listen        string // address tenants connect to, e.g. ":8080"
	Upstream      string // host:port of the service on the link network
	MetricsListen string // address of /metrics; "" turns it off

	MaxBody  int64   // largest request body in bytes (http); 413 beyond
	RPS      float64 // requests (http) or connections (tcp) per second; 429 beyond
	Burst    int     // token bucket size; at least 1
	MaxConns int     // concurrent client connections; extra ones are refused

	// Timeouts bound what a slow or silent client or service can hold.
	HeaderTimeout   time.Duration // reading a request's headers
	RequestTimeout  time.Duration // one request end to end (http)
	IdleTimeout     time.Duration // an idle keep-alive connection, or an idle tcp stream
	UpstreamTimeout time.Duration // dialing the service
}

// Defaults are the values compile uses when the platform sets none. They
// are also what `moat gateway` assumes for a flag left out.
var Defaults = Config{
	Mode:            ReadWrite,
	Protocol:        ProtoHTTP,
	MetricsListen:   ":9090",
	MaxBody:         64 << 10,
	RPS:             100,
	Burst:           200,
	MaxConns:        64,
	HeaderTimeout:   5 * time.Second,
	RequestTimeout:  30 * time.Second,
	IdleTimeout:     60 * time.Second,
	UpstreamTimeout: 5 * time.Second,
}

// Validate reports the first problem of c, naming the field.
func (c Config) Validate() error {
	var errs []error
	if c.Tenant == "" {
		errs = append(errs, errors.New("tenant: required"))
	}
	if c.Service == "" {
		errs = append(errs, errors.New("service: required"))
	}
	switch c.Mode {
	case ReadOnly, WriteOnly, ReadWrite:
	default:
		errs = append(errs, fmt.Errorf("mode %q: must be %s, %s or %s", c.Mode, ReadOnly, WriteOnly, ReadWrite))
	}
	switch c.Protocol {
	case ProtoHTTP, ProtoTCP:
	default:
		errs = append(errs, fmt.Errorf("protocol %q: must be %s or %s", c.Protocol, ProtoHTTP, ProtoTCP))
	}
	if err := hostPort(c.Listen, true); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if err := hostPort(c.Upstream, false); err != nil {
		errs = append(errs, fmt.Errorf("upstream %q: %w", c.Upstream, err))
	}
	if c.MetricsListen != "" {
		if err := hostPort(c.MetricsListen, true); err != nil {
			errs = append(errs, fmt.Errorf("metrics listen %q: %w", c.MetricsListen, err))
		}
	}
	if c.MaxBody < 1 {
		errs = append(errs, fmt.Errorf("max body %d: must be at least 1 byte", c.MaxBody))
	}
	if !(c.RPS > 0) {
		errs = append(errs, fmt.Errorf("rps %v: must be positive", c.RPS))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d: must be at least 1", c.Burst))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("max conns %d: must be at least 1", c.MaxConns))
	}
	for name, d := range map[string]time.Duration{"header timeout": c.HeaderTimeout, "request timeout": c.RequestTimeout,
		"idle timeout": c.IdleTimeout, "upstream timeout": c.UpstreamTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	return errors.Join(errs...)
}

// hostPort checks "host:port" (host may be empty for a listen address).
func hostPort(s string, listen bool) error {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if h == "" && !listen {
		return errors.New("no host")
	}
	n, err := strconv.Atoi(p)
	lo := 1
	if listen {
		lo = 0 // any free port (tests)
	}
	if err != nil || n < lo || n > 65535 {
		return fmt.Errorf("port %q: must be %d-65535", p, lo)
	}
	return nil
}
