// Package reconcile computes the plan that turns observed state into
// desired state. Pure: Compute does no I/O, and the same inputs always give
// the same plan, sorted in a fixed kind order (see Plan.Sort).
package reconcile

import (
	"fmt"
	"strings"

	"github.com/moat-platform/moat/state"
)

// Action is what happens to a resource; its value is the symbol shown.
type Action string

const (
	Create  Action = "+"
	Update  Action = "~" // in place: start, connect, disconnect, a Swarm service's update
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
	// KindHostRules is the host protection of one tenant LAN (firewall
	// rules in moat's own chains), named like its network.
	KindHostRules Kind = "hostrules"
	// KindSecret is a Swarm secret version (no value, only its name).
	KindSecret Kind = "secret"
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
	VerbUnpause       Verb = "unpause-container"
	VerbConnect       Verb = "connect-network"
	VerbDisconnect    Verb = "disconnect-network"
	VerbReport        Verb = "report"
	// VerbKeepVolume reports a volume no longer in config that is kept.
	VerbKeepVolume  Verb = "keep-volume"
	VerbEnsureRules Verb = "ensure-hostrules"
	VerbRemoveRules Verb = "remove-hostrules"
	// VerbUpdate changes a container's spec in place (engine.Updater: a
	// Swarm service's rolling update); Action Update.
	VerbUpdate       Verb = "update-container"
	VerbCreateSecret Verb = "create-secret"
	VerbRemoveSecret Verb = "remove-secret"
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
	// HostRulesSpec is the desired rule set of an ensure-hostrules.
	HostRulesSpec *state.HostRulesSpec `json:"hostRulesSpec,omitempty"`
	// SecretSpec is the secret version a create-secret makes.
	SecretSpec *state.SecretSpec `json:"secretSpec,omitempty"`
	// EnsureVolumes are created (idempotently) before a container create
	// or recreate when the snapshot did not list volumes.
	EnsureVolumes []state.VolumeSpec `json:"ensureVolumes,omitempty"`
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
	Fingerprint string `json:"fingerprint"`
	// SecretsUnknown marks a plan made without the secret store (a
	// pull-request check): secret rotations are invisible to it, and apply
	// refuses it.
	SecretsUnknown bool `json:"secrets_unknown,omitempty"`
	// Engine is the engine the plan is for: "" for the single host,
	// state.EngineSwarm for Swarm mode (containers are services there).
	Engine     string      `json:"engine,omitempty"`
	Operations []Operation `json:"operations"`
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

// OpID is the ID of an operation: "<verb>:<kind>/<name>", with
// "@<network>" for connect, disconnect and report, so that one container
// may have one such operation per network.
func OpID(verb Verb, r ResourceID, network string) string {
	id := string(verb) + ":" + string(r.Kind) + "/" + r.Name
	if network != "" {
		id += "@" + network
	}
	return id
}

// Detail is the short verb phrase shown for an operation ("create",
// "connect prod.acme.lan", ...); the network makes a connect readable
// without its cause.
func (op *Operation) Detail() string {
	switch op.Verb {
	case VerbCreateNetwork, VerbCreateVolume, VerbCreate, VerbCreateSecret:
		return "create"
	case VerbRemoveNetwork, VerbRemoveVolume, VerbRemove, VerbRemoveSecret:
		return "remove"
	case VerbUpdate:
		return "update"
	case VerbRecreate:
		return "recreate"
	case VerbStart:
		return "start"
	case VerbUnpause:
		return "unpause"
	case VerbConnect:
		return "connect " + op.Network
	case VerbDisconnect:
		return "disconnect " + op.Network
	case VerbReport:
		return "report"
	case VerbKeepVolume:
		return "kept"
	case VerbEnsureRules:
		if op.Action == Create {
			return "create"
		}
		return "sync"
	case VerbRemoveRules:
		return "remove"
	case VerbConnectPeer:
		return "connect"
	case VerbForgetPeer:
		return "forget"
	}
	return string(op.Verb)
}

// Summary counts a plan's operations by action. Containers and networks
// are counted apart where it matters: a replaced network is not a
// recreated container, and saying "1 to recreate" for it hid what the plan
// does to a tenant's LAN.
type Summary struct {
	Create   int `json:"create"`
	Recreate int `json:"recreate"` // containers
	// ReplaceNetworks counts networks removed and created again.
	ReplaceNetworks int `json:"replace_networks"`
	Update          int `json:"update"`
	Remove          int `json:"remove"`
	Report          int `json:"report"`
}

// Summary counts the operations. A replaced network is two operations (its
// removal and its creation, so that containers can be detached in between)
// but one replacement: only the creation counts.
func (p *Plan) Summary() Summary {
	var s Summary
	for i := range p.Operations {
		switch op := &p.Operations[i]; op.Action {
		case Create:
			s.Create++
		case Replace:
			switch op.Verb {
			case VerbCreateNetwork:
				s.ReplaceNetworks++
			case VerbRemoveNetwork:
			default:
				s.Recreate++
			}
		case Update:
			s.Update++
		case Delete:
			s.Remove++
		case Report:
			s.Report++
		}
	}
	return s
}

// Counts is the counting part of the summary line ("1 to create, 0 to
// recreate, 2 to update, 0 to remove"), with "N network(s) to replace"
// after the recreates when there are any. Every format uses it.
func (s Summary) Counts() string {
	nets := ""
	switch s.ReplaceNetworks {
	case 0:
	case 1:
		nets = ", 1 network to replace"
	default:
		nets = fmt.Sprintf(", %d networks to replace", s.ReplaceNetworks)
	}
	return fmt.Sprintf("%d to create, %d to recreate%s, %d to update, %d to remove", s.Create, s.Recreate, nets, s.Update, s.Remove)
}

// String is the summary line of a plan.
func (s Summary) String() string {
	return fmt.Sprintf("Plan: %s, %d reported.", s.Counts(), s.Report)
}

// String is a compact, stable text of the plan: one line per operation
// ("<symbol> <kind>/<name> <detail>  # <cause>") and the summary line. It is
// what the plan fixtures' goldens hold; render has the user-facing formats.
func (p *Plan) String() string {
	var b strings.Builder
	for i := range p.Operations {
		op := &p.Operations[i]
		fmt.Fprintf(&b, "%-3s %s %s  # %s\n", op.Action, op.Resource, op.Detail(), op.Cause)
	}
	if len(p.Operations) == 0 {
		b.WriteString("No changes.\n")
	} else {
		b.WriteString(p.Summary().String() + "\n")
	}
	return b.String()
}
