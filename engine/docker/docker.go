// Package docker is the real engine driver: it implements engine.Engine on
// the Docker Engine API through the official Go SDK. It is the only package
// of moat that imports the SDK.
//
// The driver is deliberately thin: one plan operation is one method, and
// each method makes the fewest API calls that do the job. Observe costs one
// container list and one network list whatever the number of objects (plus
// the version-negotiation ping on first use).
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// Options configure New. The zero value finds the engine like the docker
// CLI does (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY, else the
// local socket).
type Options struct {
	// Host overrides DOCKER_HOST, e.g. "unix:///run/docker.sock".
	Host string
	// NoCallCount turns off the counting of API requests that Stats
	// reports (moat --stats, tests that pin the cost of a no-op run). The
	// count is on by default: it costs a mutex per request.
	NoCallCount bool
	// ConnectTimeout bounds the ping New makes; 0 means 10 seconds.
	ConnectTimeout time.Duration
	// Instance, when set, is also required on objects that RemoveContainer,
	// RemoveNetwork and RemoveVolume are asked to delete (the managed-by
	// label is always required).
	Instance string
	// Timeouts are the deadlines of engine calls by kind (zero fields take
	// the defaults: DefaultReadTimeout and the others).
	Timeouts Timeouts
	// Retries is how often a call is sent again after a
	// transient engine error (5xx, connection cut): 0 means
	// DefaultRetries, a negative value means never.
	Retries int
	// Log receives one warning per retry (nil: no log).
	Log *slog.Logger
}

// Engine is the Docker driver. It is safe for concurrent use.
type Engine struct {
	cli      *client.Client
	host     string
	instance string
	counter  *countingTransport // nil with Options.NoCallCount
	base     *http.Transport    // to close idle connections when counting
	timeouts Timeouts
	retries  int
	log      *slog.Logger
}

var _ engine.Engine = (*Engine)(nil)

// New connects to the engine and negotiates the API version with one ping,
// so that an unreachable engine is reported here (wrapping
// engine.ErrUnreachable) and not halfway through an apply. That ping is the
// one the SDK would otherwise make lazily before the first call, so it
// adds nothing to the cost of a run.
func New(opts Options) (*Engine, error) {
	e := &Engine{instance: opts.Instance, timeouts: opts.Timeouts.withDefaults(), retries: opts.Retries, log: opts.Log}
	switch {
	case e.retries == 0:
		e.retries = DefaultRetries
	case e.retries < 0:
		e.retries = 0
	}
	if e.log == nil {
		e.log = discardLog
	}
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	if !opts.NoCallCount {
		// Must come after the host and TLS options: it wraps the transport
		// they configured.
		clientOpts = append(clientOpts, e.withCounting)
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	e.cli = cli
	e.host = cli.DaemonHost()

	timeout := opts.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ping, err := cli.Ping(ctx)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("%w: cannot reach the Docker engine at %s (is dockerd running, and may this user use its socket? set DOCKER_HOST to use another engine): %w",
			engine.ErrUnreachable, e.host, err)
	}
	cli.NegotiateAPIVersionPing(ping)
	return e, nil
}

// withCounting is a client.Opt that wraps the configured transport in a
// counting one. The SDK keeps its transport private; HTTPClient returns a
// copy that still shares it, so we wrap that and hand it back.
func (e *Engine) withCounting(c *client.Client) error {
	hc := c.HTTPClient()
	if tr, ok := hc.Transport.(*http.Transport); ok {
		e.base = tr
		// The SDK derives the URL scheme from its own *http.Transport;
		// behind our wrapper it cannot see TLS, so say it.
		if tr.TLSClientConfig != nil {
			if err := client.WithScheme("https")(c); err != nil {
				return err
			}
		}
	}
	e.counter = newCountingTransport(hc.Transport)
	hc.Transport = e.counter
	return client.WithHTTPClient(hc)(c)
}

// Stats returns the Engine API calls made so far, in total and by method
// and path pattern ("GET /containers/json", "POST /containers/{id}/start");
// zero with Options.NoCallCount. The version-negotiation ping counts
// ("HEAD /_ping"): it is a real round trip. Failed requests count too: the
// point is what was asked of the engine.
func (e *Engine) Stats() (total int, calls map[string]int) {
	if e.counter == nil {
		return 0, map[string]int{}
	}
	return e.counter.stats()
}

// ResetStats zeroes the counters.
func (e *Engine) ResetStats() {
	if e.counter != nil {
		e.counter.reset()
	}
}

// Host is the engine address in use, for messages.
func (e *Engine) Host() string { return e.host }

// APIVersion is the negotiated Engine API version.
func (e *Engine) APIVersion() string { return e.cli.ClientVersion() }

// Close releases idle connections.
func (e *Engine) Close() error {
	if e.base != nil {
		e.base.CloseIdleConnections()
	}
	return e.cli.Close()
}

// wrap adds context to an API error and marks transport failures with
// engine.ErrUnreachable, so the CLI can tell "engine down" from "request
// refused".
func wrap(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w: %w", msg, engine.ErrUnreachable, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w", msg, notFound{err})
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// managedFilter selects moat's objects of one instance on the server side.
func managedFilter(instance string) filters.Args {
	return filters.NewArgs(
		filters.Arg("label", state.LabelManagedBy+"="+state.ManagedBy),
		filters.Arg("label", state.LabelInstance+"="+instance),
	)
}

// mayDelete is the defensive check of the destructive paths: the object
// must carry moat's managed label (and the configured instance, if any).
// The plan only ever targets managed objects; this guards against a bug
// or a stale plan pointing at a name someone has since reused.
func (e *Engine) mayDelete(labels map[string]string) bool {
	if labels[state.LabelManagedBy] != state.ManagedBy {
		return false
	}
	return e.instance == "" || labels[state.LabelInstance] == e.instance
}

// containerName is the canonical name of a listed container: Docker lists
// "/name", and legacy links add "/other/alias" entries we must skip.
func containerName(names []string) string {
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		if !strings.Contains(n, "/") {
			return n
		}
	}
	if len(names) > 0 {
		return strings.TrimPrefix(names[0], "/")
	}
	return ""
}

// isMessage reports whether err's text contains any of the fragments
// (case-insensitive). Docker reports some benign conditions (already
// connected, not connected) only as text, with status codes that vary by
// engine version.
func isMessage(err error, fragments ...string) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return slices.ContainsFunc(fragments, func(f string) bool { return strings.Contains(msg, f) })
}

// ignoreNotFound turns NotFound into success, for idempotent removals.
func ignoreNotFound(err error) error {
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// notFound marks a daemon NotFound error as engine.ErrNotFound without
// changing its text (the daemon's message already says what is missing).
type notFound struct{ err error }

func (n notFound) Error() string        { return n.err.Error() }
func (n notFound) Unwrap() error        { return n.err }
func (n notFound) Is(target error) bool { return target == engine.ErrNotFound }
