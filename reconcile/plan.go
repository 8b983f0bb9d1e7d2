// Package reconcile computes the plan that turns observed state into
// desired state. Pure: Compute does no I/O, and the same inputs always give
// the same plan, sorted in a fixed kind order (see Plan.Sort).
package reconcile

import "github.com/moat-platform/moat/state"

// Action is what happens to a resource; its value is the symbol shown.
type Action string

const (
	Create  Action = "+"
	Update  Action = "~" // in place: start, connect, disconnect
	Replace Action = "-/+"
	Delete  Action = "-"
	// Report is drift moat sees but does not change (an unmanaged
	// container on a tenant LAN without --evict-unmanaged).
	Report Action = "!"
)

// Kind of resource an operation is about. The order of the constants is
// the order of a plan: networks and volumes before containers.
type Kind string

const (
	KindNetwork   Kind = "network"
	KindVolume    Kind = "volume"
	KindContainer Kind = "container"
)

// Verb says which engine call an operation maps to; one operation is one
// driver call (Replace is remove+create+start, done as one step).
type Verb string

const (
	VerbCreateNetwork Verb = "create-network"
	VerbRemoveNetwork Verb = "remove-network"
	VerbCreateVolume  Verb = "create-volume"
	VerbRemoveVolume  Verb = "remove-volume"
	VerbCreate        Verb = "create-container" // create and start
	VerbRecreate      Verb = "recreate-container"
	VerbRemove        Verb = "remove-container"
	VerbStart         Verb = "start-container"
	VerbConnect       Verb = "connect-network"
	VerbDisconnect    Verb = "disconnect-network"
	VerbReport        Verb = "report"
)

// ResourceID names a resource: its kind and its engine name.
type ResourceID struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
}

func (r ResourceID) String() string { return string(r.Kind) + "/" + r.Name }

// Operation is one step of a plan.
type Operation struct {
	// ID is unique in a plan: "<verb>:<kind>/<name>[@<network>]".
	ID       string     `json:"id"`
	Resource ResourceID `json:"resource"`
	Action   Action     `json:"action"`
	Verb     Verb       `json:"verb"`
	// Cause is why, for display only ("missing", "spec changed: image",
	// "stopped", "no longer in config", ...).
	Cause string `json:"cause"`
	// Tenant is the owning tenant ("" for platform objects), for display
	// and for the mass-delete guard.
	Tenant string `json:"tenant,omitempty"`
	// Network is the network of a connect/disconnect.
	Network string `json:"network,omitempty"`
	// Aliases for a connect.
	Aliases []string `json:"aliases,omitempty"`
	// LiveID is the engine id of the live object acted on (remove,
	// recreate, start, disconnect).
	LiveID string `json:"liveID,omitempty"`
	// Network, Volume or Container is the desired spec for create and
	// recreate; nil otherwise.
	NetworkSpec   *state.NetworkSpec   `json:"networkSpec,omitempty"`
	VolumeSpec    *state.VolumeSpec    `json:"volumeSpec,omitempty"`
	ContainerSpec *state.ContainerSpec `json:"containerSpec,omitempty"`
	// StopTimeout for removals, seconds.
	StopTimeout int `json:"stopTimeout,omitempty"`
	// DependsOn lists operation IDs that must finish first.
	DependsOn []string `json:"dependsOn,omitempty"`
}

// Plan is the ordered list of operations.
type Plan struct {
	Instance string `json:"instance"`
	// Revision is the config revision the plan was computed from.
	Revision string `json:"revision,omitempty"`
	// Fingerprint identifies the observed state the plan was computed
	// from (state.Fingerprint); applying a saved plan refuses when the live
	// fingerprint differs.
	Fingerprint string      `json:"fingerprint"`
	Operations  []Operation `json:"operations"`
}

// Empty reports whether the plan changes nothing (reports do not count).
func (p *Plan) Empty() bool {
	for _, op := range p.Operations {
		if op.Action != Report {
			return false
		}
	}
	return true
}
