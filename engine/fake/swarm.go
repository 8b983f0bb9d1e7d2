package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// The fake's Swarm mode (NewSwarm, SetSwarm) behaves like the Swarm
// engine for what moat relies on: containers are services, changed in
// place by UpdateContainer (same id, new spec and attachments, running
// again); secrets are objects held by name and labels (never a value: the
// fake does not even read the source file); Observe lists the instance's
// secrets and the overlay flags; a secret mount needs the secret to
// exist, and a secret a service mounts cannot be removed.

var (
	_ engine.Updater     = (*Engine)(nil)
	_ engine.SecretStore = (*Engine)(nil)
)

// Secret is a fake Swarm secret object: a name and labels, no value.
type Secret struct {
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// NewSwarm returns an empty in-memory engine in Swarm mode.
func NewSwarm() *Engine {
	e := New()
	e.st.Swarm = true
	return e
}

// SetSwarm turns Swarm mode on or off. A state file records it with the
// next change (so that a read-only plan leaves the file alone).
func (e *Engine) SetSwarm(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.Swarm = on
}

// SwarmMode reports whether the engine plays a Swarm manager (as saved in
// its state file, or set by NewSwarm or SetSwarm).
func (e *Engine) SwarmMode() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.Swarm
}

// errNotSwarm is what the single-host fake answers to Swarm-only calls.
var errNotSwarm = errors.New("this engine is not a Swarm manager")

// UpdateContainer changes a managed service in place: the spec, labels,
// image and network attachments become spec's; the id stays, and the
// service runs again (Swarm's update starts a new task).
func (e *Engine) UpdateContainer(_ context.Context, id string, spec state.ContainerSpec) error {
	return e.call("UpdateContainer", func() error {
		if !e.st.Swarm {
			return fmt.Errorf("update container %s: %w", id, errNotSwarm)
		}
		c := e.st.container(id)
		if c == nil {
			return fmt.Errorf("update service %s: %w: no such service", id, engine.ErrNotFound)
		}
		if !mayDelete(c.Labels) {
			return fmt.Errorf("update service %s: %w", id, engine.ErrNotManaged)
		}
		if spec.Name != c.Name {
			return fmt.Errorf("update service %s: spec is for %s", c.Name, spec.Name)
		}
		if err := e.st.checkRefs(spec); err != nil {
			return fmt.Errorf("update service %s: %w", c.Name, err)
		}
		c.Image, c.ImageID, c.State = spec.Image, e.st.ImageIDs[spec.Image], "running"
		c.Labels, c.Spec = maps.Clone(spec.Labels), cloneSpec(spec)
		c.Networks, c.NetIDs = map[string][]string{}, map[string]string{}
		for _, ep := range spec.Networks {
			n := e.st.network(ep.Network)
			c.Networks[n.Name] = slices.Clone(ep.Aliases)
			c.NetIDs[n.Name] = n.ID
		}
		c.Privileged, c.Memory = false, 0 // hand changes are gone with the old task
		e.publishLocked("container", "update", c.Name)
		return nil
	})
}

// checkRefs refuses a spec whose networks or secrets do not exist, like
// Swarm refuses a service spec that names them.
func (s *fileState) checkRefs(spec state.ContainerSpec) error {
	for _, ep := range spec.Networks {
		if s.network(ep.Network) == nil {
			return fmt.Errorf("network %s: %w", ep.Network, engine.ErrNotFound)
		}
	}
	for _, m := range spec.Mounts {
		if m.Type == state.MountSecret && s.Secrets[m.Source] == nil {
			return fmt.Errorf("secret %s: %w", m.Source, engine.ErrNotFound)
		}
	}
	return nil
}

// CreateSecret creates a secret object from spec's name and labels; the
// value would be read from spec.Source by a real engine, the fake never
// reads it. A taken name is a conflict (Swarm secrets are immutable).
func (e *Engine) CreateSecret(_ context.Context, spec state.SecretSpec) (string, error) {
	var id string
	err := e.call("CreateSecret", func() error {
		if !e.st.Swarm {
			return fmt.Errorf("create secret %s: %w", spec.Name, errNotSwarm)
		}
		if spec.Name == "" || spec.Source == "" {
			return errors.New("create secret: name and source are required")
		}
		if e.st.Secrets[spec.Name] != nil {
			return fmt.Errorf("create secret %s: %w: secret %s already exists", spec.Name, ErrConflict, spec.Name)
		}
		if e.st.Secrets == nil {
			e.st.Secrets = map[string]*Secret{}
		}
		id = e.newID("secret")
		e.st.Secrets[spec.Name] = &Secret{ID: id, Name: spec.Name, Labels: maps.Clone(spec.Labels)}
		e.publishLocked("secret", "create", spec.Name)
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// RemoveSecret removes a managed secret no service mounts; a missing one
// is success.
func (e *Engine) RemoveSecret(_ context.Context, name string) error {
	return e.call("RemoveSecret", func() error {
		s := e.st.secret(name)
		if s == nil {
			return nil
		}
		if !mayDelete(s.Labels) {
			return fmt.Errorf("remove secret %s: %w", name, engine.ErrNotManaged)
		}
		for _, cn := range slices.Sorted(maps.Keys(e.st.Containers)) {
			if c := e.st.Containers[cn]; c.Spec != nil && mountsSecret(c.Spec, s.Name) {
				return fmt.Errorf("remove secret %s: secret is in use by service %s", s.Name, c.Name)
			}
		}
		delete(e.st.Secrets, s.Name)
		e.publishLocked("secret", "remove", s.Name)
		return nil
	})
}

func mountsSecret(spec *state.ContainerSpec, name string) bool {
	return slices.ContainsFunc(spec.Mounts, func(m state.Mount) bool { return m.Type == state.MountSecret && m.Source == name })
}

// secret finds a secret by name or id.
func (s *fileState) secret(ref string) *Secret {
	if x, ok := s.Secrets[ref]; ok {
		return x
	}
	for _, x := range s.Secrets {
		if x.ID == ref {
			return x
		}
	}
	return nil
}

// swarmLabels are the labels to believe on Swarm: a service's are its
// spec's (Swarm does not merge image labels into them); a container made
// by hand (no spec) is never a service, so its moat labels, which can
// only come from its image or a forger, are dropped.
func swarmLabels(c *Container) map[string]string {
	if c.Spec != nil {
		return c.Labels
	}
	out := make(map[string]string, len(c.Labels))
	for k, v := range c.Labels {
		if !strings.HasPrefix(k, "org.moat.") {
			out[k] = v
		}
	}
	return out
}

// observeSwarm adds what the Swarm engine lists: the instance's secrets
// (never a value) and the overlay flags of its networks.
func (s *fileState) observeSwarm(obs *state.Observed, instance string) {
	if !s.Swarm {
		return
	}
	for i := range obs.Networks {
		if n := s.Networks[obs.Networks[i].Name]; n != nil {
			obs.Networks[i].Attachable = n.Attachable
			obs.Networks[i].Encrypted = n.Options["encrypted"] == "true"
		}
	}
	for _, x := range s.Secrets {
		if state.Managed(x.Labels, instance) {
			obs.Secrets = append(obs.Secrets, state.Secret{ID: x.ID, Name: x.Name, Labels: maps.Clone(x.Labels)})
		}
	}
	slices.SortFunc(obs.Secrets, func(a, b state.Secret) int { return strings.Compare(a.Name, b.Name) })
	obs.GatewayBridge = s.gatewayBridge()
}

// gatewayBridge is the node's docker_gwbridge as the network list shows
// it: by default as the operator makes it for host protection
// (docs/SWARM.md); nil when a test removed it.
func (s *fileState) gatewayBridge() *state.Network {
	gb := s.GatewayBridge
	if gb == nil {
		gb = &state.Network{ID: "gwbridge0", Name: state.GatewayBridgeNetwork, Driver: "bridge", Subnet: "172.18.0.0/16",
			Bridge: state.GatewayBridgeInterface, ICC: "false"}
	}
	if gb.Name == "" {
		return nil
	}
	c := *gb
	return &c
}

// SetGatewayBridge makes the node's docker_gwbridge have host interface
// iface and ICC option icc, as a node that joined the Swarm without the
// operator creating the bridge first would ("docker_gwbridge", "false");
// iface "" removes the bridge.
func (e *Engine) SetGatewayBridge(iface, icc string) error {
	return e.helper(func() error {
		gb := &state.Network{}
		if iface != "" {
			gb = &state.Network{ID: "gwbridge0", Name: state.GatewayBridgeNetwork, Driver: "bridge", Subnet: "172.18.0.0/16",
				Bridge: iface, ICC: icc}
		}
		e.st.GatewayBridge = gb
		return nil
	})
}

// SetNetworkFlags sets an overlay's attachable and encrypted flags, as
// an operator who replaced a tenant overlay by hand would have.
func (e *Engine) SetNetworkFlags(name string, attachable, encrypted bool) error {
	return e.helper(func() error {
		n := e.st.network(name)
		if n == nil {
			return fmt.Errorf("fake engine: set flags of %s: no such network", name)
		}
		n.Attachable = attachable
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		if encrypted {
			n.Options["encrypted"] = "true"
		} else {
			delete(n.Options, "encrypted")
		}
		return nil
	})
}

// Secrets returns the names of the secret objects, sorted.
func (e *Engine) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.st.Secrets))
}
