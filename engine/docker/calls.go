package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/moat-platform/moat/engine"
)

// Every Engine API call goes through do, which gives it the deadline of
// its kind and retries it on a transient engine error when it is safe to
// send twice. Nothing in this package calls the SDK without do (the
// version ping in New has its own ConnectTimeout), so that no call can
// wait forever on an engine that stopped answering.

// kind is how long a call may take and whether it may be sent again.
type kind int

const (
	// read: list and inspect. Short: they cost the engine little, and a
	// read that takes long means the engine is stuck. Idempotent.
	read kind = iota
	// write: create, start, connect, disconnect, remove. Moderate: a
	// start sets up namespaces, mounts and iptables, seconds on a loaded
	// host. Sent again only when the method made it safe (see retry).
	write
	// stop: the app's stop timeout plus Timeouts.StopMargin, the time the
	// engine needs to kill what did not stop and to answer.
	stop
	// cleanup: removing what a failed create left half-made. Runs on a
	// context that ignores cancellation (the cancel may be why the create
	// failed), so it needs a deadline of its own, and a short one: if it
	// fails, the next apply takes the leftover over.
	cleanup
)

// Timeouts are the deadlines of engine calls, one per kind. A zero field
// takes its default.
type Timeouts struct {
	// Read bounds a list or an inspect (DefaultReadTimeout).
	Read time.Duration
	// Write bounds a create, start, connect, disconnect or remove
	// (DefaultWriteTimeout).
	Write time.Duration
	// StopMargin is added to the app's stop timeout to bound a stop
	// (DefaultStopMargin).
	StopMargin time.Duration
	// Cleanup bounds the removal of a half-made container
	// (DefaultCleanupTimeout, or Write if that is shorter).
	Cleanup time.Duration
}

// The default deadlines; docs/DESIGN.md says why these values.
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
	DefaultStopMargin     = 15 * time.Second
	DefaultCleanupTimeout = 15 * time.Second
)

// DefaultRetries is how often a call is sent again after a
// transient error; the waits between attempts are retryBackoff, x4 each.
const (
	DefaultRetries = 2
	retryBackoff   = 250 * time.Millisecond
)

func (t Timeouts) withDefaults() Timeouts {
	if t.Read <= 0 {
		t.Read = DefaultReadTimeout
	}
	if t.Write <= 0 {
		t.Write = DefaultWriteTimeout
	}
	if t.StopMargin <= 0 {
		t.StopMargin = DefaultStopMargin
	}
	if t.Cleanup <= 0 {
		// Never longer than a write: a cleanup is one remove.
		t.Cleanup = min(DefaultCleanupTimeout, t.Write)
	}
	return t
}

// deadline is the time a call of kind k may take; extra is the stop
// timeout for stop calls.
func (t Timeouts) deadline(k kind, extra time.Duration) time.Duration {
	switch k {
	case read:
		return t.Read
	case stop:
		return extra + t.StopMargin
	case cleanup:
		return t.Cleanup
	}
	return t.Write
}

// do runs f under the deadline of its kind and sends it again on a
// transient engine error, at most e.retries times with backoff, logging
// each retry. Every call of this package is safe to send twice: reads,
// starts (a 304 when running), removes ("not found" is done), connects
// ("already connected" is done) and volume creates are idempotent, and a
// container or network create that may have happened meets its own
// object on the retry, which CreateContainer's leftover path and
// CreateNetwork's takeover handle. what names the call for errors and
// logs ("create container acme.web.1"). A deadline that fires is reported
// as engine.ErrUnreachable (the engine did not answer), never retried:
// an engine that did not answer in time would make every retry wait as
// long again.
func (e *Engine) do(ctx context.Context, what string, k kind, extra time.Duration, f func(ctx context.Context) error) error {
	limit := e.timeouts.deadline(k, extra)
	wait := retryBackoff
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, limit)
		err := f(cctx)
		timedOut := err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if timedOut {
			return fmt.Errorf("%w: the engine at %s did not answer within %s: %w", engine.ErrUnreachable, e.host, limit, err)
		}
		if attempt >= e.retries || !Transient(err) || ctx.Err() != nil {
			return err
		}
		e.log.Warn("engine call failed, retrying", "op", what, "attempt", attempt+1, "of", e.retries+1, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 4
	}
}

// Transient reports whether err is an engine error that a second try may
// not meet: a 5xx answer (the daemon's internal error or unavailable), or
// a connection cut, reset or closed before the answer. A 4xx (the request
// is wrong: not found, conflict, invalid) and a timeout are not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if cerrdefs.IsInternal(err) || cerrdefs.IsUnavailable(err) || cerrdefs.IsUnknown(err) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	// The SDK wraps transport errors with pkg/errors and sometimes only
	// keeps their text.
	if client.IsErrConnectionFailed(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"connection reset", "broken pipe", "eof", "server closed idle connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// discardLog is the logger when Options.Log is nil.
var discardLog = slog.New(slog.DiscardHandler)

// call is do for an SDK method that returns a value.
func call[T any](e *Engine, ctx context.Context, what string, k kind, f func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := e.do(ctx, what, k, 0, func(ctx context.Context) error {
		var err error
		v, err = f(ctx)
		return err
	})
	return v, err
}

// The calls several methods share, each with its kind and retry policy in
// one place.

func (e *Engine) inspectNetwork(ctx context.Context, name string) (network.Inspect, error) {
	return call(e, ctx, "inspect network "+name, read, func(ctx context.Context) (network.Inspect, error) {
		return e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	})
}

func (e *Engine) inspectContainer(ctx context.Context, ref string) (container.InspectResponse, error) {
	return call(e, ctx, "inspect container "+ref, read, func(ctx context.Context) (container.InspectResponse, error) {
		return e.cli.ContainerInspect(ctx, ref)
	})
}

// start is idempotent: starting a running container is a 304, success.
func (e *Engine) start(ctx context.Context, id string) error {
	return e.do(ctx, "start container "+id, write, 0, func(ctx context.Context) error {
		return e.cli.ContainerStart(ctx, id, container.StartOptions{})
	})
}

// connect is idempotent: callers treat "already connected" as done.
func (e *Engine) connect(ctx context.Context, netName, ctr string, aliases []string) error {
	return e.do(ctx, "connect "+ctr+" to "+netName, write, 0, func(ctx context.Context) error {
		return e.cli.NetworkConnect(ctx, netName, ctr, &network.EndpointSettings{Aliases: aliases})
	})
}

// removeByID force-removes a container with its anonymous volumes; k is
// write, or cleanup for a half-made one. Idempotent: callers treat "not
// found" and "already in progress" as done.
func (e *Engine) removeByID(ctx context.Context, id string, k kind) error {
	return e.do(ctx, "remove container "+id, k, 0, func(ctx context.Context) error {
		return e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
}
