// Package engine defines the small interface between moat and a container
// engine: one Observe per run, and one method per plan operation. The real
// implementation is engine/docker (the only package that imports the Docker
// SDK); engine/fake is an in-memory engine for unit tests and CLI scripts.
package engine

import (
	"context"
	"errors"
	"time"

	"github.com/moat-platform/moat/state"
)

// Engine is observed once per run and then driven operation by operation.
// Implementations must be safe for concurrent use: the executor runs
// independent operations in parallel.
type Engine interface {
	// Observe takes one snapshot of the live state relevant to instance:
	// every network labelled for it, every container labelled for it, and
	// every other container attached to one of those networks. With
	// volumes, managed volumes too (only needed to prune them).
	Observe(ctx context.Context, instance string, volumes bool) (*state.Observed, error)

	CreateNetwork(ctx context.Context, spec state.NetworkSpec) (id string, err error)
	RemoveNetwork(ctx context.Context, name string) error
	// CreateVolume is idempotent: an existing volume of that name is kept.
	CreateVolume(ctx context.Context, spec state.VolumeSpec) error
	RemoveVolume(ctx context.Context, name string) error
	// CreateContainer creates the container, attaches all its networks and
	// starts it. A container of the same name left over by an interrupted
	// run is removed first only if it carries the same instance labels.
	CreateContainer(ctx context.Context, spec state.ContainerSpec) (id string, err error)
	StartContainer(ctx context.Context, id string) error
	// UnpauseContainer resumes a paused container; one that is not paused
	// is success.
	UnpauseContainer(ctx context.Context, id string) error
	// RemoveContainer stops (with timeout seconds) and removes.
	RemoveContainer(ctx context.Context, id string, timeout int) error
	Connect(ctx context.Context, network, container string, aliases []string) error
	Disconnect(ctx context.Context, network, container string) error

	// Events streams the changes of live state that may be drift for
	// instance: a container of the instance died, was destroyed, renamed
	// or updated, or any container was connected to or disconnected from
	// one of the instance's networks. It is one long-lived call. The
	// events channel is closed when the stream ends; the error channel
	// then carries why (nil after ctx ended). A stream that goes silent
	// because the engine is gone must end with an error within about
	// half a minute, so that the caller reconnects instead of waiting
	// forever.
	Events(ctx context.Context, instance string) (<-chan Event, <-chan error)
}

// Event is one change seen on the engine's event stream. It only says
// that something happened: the watcher observes the whole state again
// rather than trusting an event's details.
type Event struct {
	Type   string // "container" or "network"
	Action string // "die", "destroy", "connect", ...
	Name   string // container or network name
	Time   time.Time
}

// Inspector is an engine that can fill state.Container.Inspect of every
// container in a snapshot (one inspect each): for audits, not for the
// plain plan.
type Inspector interface {
	InspectContainers(ctx context.Context, obs *state.Observed) error
}

// Firewall is the host firewall as moat uses it for host protection:
// engine/hostfw on a real host, an in-memory one in engine/fake. Methods
// are safe for concurrent use.
type Firewall interface {
	// Check fails (before anything is changed) when moat may not manage
	// the firewall: not root, no iptables, Docker not managing iptables.
	Check(ctx context.Context) error
	// Observe reads what the firewall holds of instance's rules.
	Observe(ctx context.Context, instance string) (*state.HostFirewall, error)
	// Ensure makes one network's rules exactly spec's; idempotent.
	Ensure(ctx context.Context, instance string, spec state.HostRulesSpec) error
	// Remove deletes one network's rules; idempotent.
	Remove(ctx context.Context, instance, network string) error
}

// Peers is implemented by an engine that also drives a Weave Net router
// (see engine/weave): plan operations on peers go to it.
type Peers interface {
	// ConnectPeer makes addr (host:port) a target of the router.
	ConnectPeer(ctx context.Context, addr string) error
	// ForgetPeer removes addr from the router's targets.
	ForgetPeer(ctx context.Context, addr string) error
}

// Updater is an engine that changes a live container's spec in place:
// the Swarm engine, whose containers are services and whose spec change
// is a rolling update (start-first or stop-first as spec.Swarm says).
// UpdateContainer returns when the update has completed, and fails when
// Swarm paused or rolled it back, or ctx ended first.
type Updater interface {
	UpdateContainer(ctx context.Context, id string, spec state.ContainerSpec) error
}

// SecretStore is an engine with an encrypted secret store (Swarm): a
// secret version is created from the value at spec.Source, read only by
// the engine and only at create time, and removed once no service mounts
// it.
type SecretStore interface {
	CreateSecret(ctx context.Context, spec state.SecretSpec) (id string, err error)
	RemoveSecret(ctx context.Context, name string) error
}

// ErrUnreachable wraps failures to reach the engine at all, so that the CLI
// can say "is the engine running?" rather than print a transport error.
var ErrUnreachable = errors.New("container engine unreachable")
