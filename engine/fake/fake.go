// Package fake is an in-memory engine.Engine that behaves like the Docker
// driver for the calls moat makes: ids, container states, network
// attachments with aliases, name conflicts, refusals of unmanaged
// objects, idempotent removals and errors for missing objects. Unit tests
// use it directly; CLI scripts use Open(path) so that the state survives
// across separate moat processes.
//
// Helpers (Stop, Remove, ConnectUnmanaged, AddUnmanagedContainer, ...)
// play the human operator causing drift: they are not counted as engine
// calls and never hit injected faults.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// ErrConflict is returned for a name already in use (networks).
var ErrConflict = errors.New("conflict")

// ErrInjected marks errors produced by an injected Fault.
var ErrInjected = errors.New("injected fault")

// Engine is the in-memory engine. The zero value is not usable; call New
// or Open.
type Engine struct {
	mu    sync.Mutex
	path  string // when set, every mutating call saves the state here
	st    *fileState
	total int
	calls map[string]int
	subs  map[*subscriber]bool // open Events streams
	quiet bool                 // Quietly: publish nothing
}

var _ engine.Engine = (*Engine)(nil)

// Network is a fake network.
type Network struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Internal   bool              `json:"internal,omitempty"`
	Subnet     string            `json:"subnet,omitempty"`
	Gateway    string            `json:"gateway,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
}

// Container is a fake container.
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// ImageID is the id the image reference named at create time (see
	// SetImageID); "" when no id was set.
	ImageID string            `json:"imageID,omitempty"`
	State   string            `json:"state"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Networks maps an attached network's name to the aliases there.
	Networks map[string][]string `json:"networks"`
	// NetIDs maps an attached network's name to the id of the network the
	// endpoint was made for; like Docker, an endpoint outlives a network
	// removed while the container was stopped.
	NetIDs map[string]string `json:"netIDs,omitempty"`
	// Spec is what CreateContainer was given (nil for helper-made ones),
	// so tests can check what moat asked for.
	Spec *state.ContainerSpec `json:"spec,omitempty"`
	// Privileged and Memory, when set, override the spec in
	// InspectContainers: a container changed by hand (docker update).
	Privileged bool  `json:"privileged,omitempty"`
	Memory     int64 `json:"memory,omitempty"`
}

// Volume is a fake named volume.
type Volume struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Fault makes a future engine call fail, to test interrupted applies.
type Fault struct {
	// Op is the method name ("CreateContainer", "Observe", ...); empty
	// matches every engine call.
	Op string `json:"op,omitempty"`
	// Nth is which matching call fails, 1-based, counted from when the
	// fault was injected (Nth 0 means 1).
	Nth int `json:"nth,omitempty"`
	// Err is the error text; empty gives "injected fault".
	Err string `json:"err,omitempty"`
	// After applies the call's effect before failing, like a daemon that
	// did the work but whose answer was lost (a timeout).
	After bool `json:"after,omitempty"`
	// Seen counts matching calls so far (kept in the file so that a fault
	// can span several moat invocations).
	Seen int `json:"seen,omitempty"`
}

// New returns an empty in-memory engine.
func New() *Engine {
	return &Engine{st: newFileState(), calls: map[string]int{}}
}

// InjectFault arms f; armed faults fire in order of injection, each once.
func (e *Engine) InjectFault(f Fault) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f.Seen = 0
	e.st.Faults = append(e.st.Faults, f)
	return e.saveLocked()
}

// Calls returns how many engine calls were made per method (helpers are
// not counted).
func (e *Engine) Calls() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	return out
}

// TotalCalls is the sum of Calls.
func (e *Engine) TotalCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// Stats has the shape of the Docker driver's Stats, keyed by method name,
// so the CLI's --stats works with either engine.
func (e *Engine) Stats() (total int, calls map[string]int) {
	return e.TotalCalls(), e.Calls()
}

// ResetCalls zeroes the call counters.
func (e *Engine) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total = 0
	e.calls = map[string]int{}
}

// begin counts a call and checks faults; the caller holds e.mu. A non-nil
// error with after false means fail now; with after true, apply the
// effect and then return the error.
func (e *Engine) begin(op string) (after bool, err error) {
	e.total++
	e.calls[op]++
	for i := range e.st.Faults {
		f := &e.st.Faults[i]
		if f.Op != "" && f.Op != op {
			continue
		}
		f.Seen++
		if f.Seen < max(f.Nth, 1) {
			continue
		}
		msg := f.Err
		if msg == "" {
			msg = "injected fault"
		}
		after := f.After
		e.st.Faults = slices.Delete(e.st.Faults, i, i+1)
		return after, fmt.Errorf("%s: %w: %s", op, ErrInjected, msg)
	}
	return false, nil
}

// finish saves after a mutating call and combines the results.
func (e *Engine) finish(opErr, faultErr error) error {
	if err := e.saveLocked(); err != nil {
		return errors.Join(opErr, err)
	}
	if opErr != nil {
		return opErr
	}
	return faultErr
}

// call runs a mutating operation under the lock with fault handling.
func (e *Engine) call(op string, fn func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	after, ferr := e.begin(op)
	if ferr != nil && !after {
		return e.finish(nil, ferr) // Seen counters changed: persist them
	}
	return e.finish(fn(), ferr)
}

func (e *Engine) newID(kind string) string {
	e.st.Seq++
	sum := sha256.Sum256([]byte(kind + "-" + strconv.Itoa(e.st.Seq)))
	return hex.EncodeToString(sum[:])
}

// container finds a container by name or id (or unique id prefix of at
// least 12 characters, like the docker CLI's short ids).
func (s *fileState) container(ref string) *Container {
	ref = strings.TrimPrefix(ref, "/")
	if c, ok := s.Containers[ref]; ok {
		return c
	}
	var found *Container
	for _, c := range s.Containers {
		if c.ID == ref || (len(ref) >= 12 && strings.HasPrefix(c.ID, ref)) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

// network finds a network by name or id.
func (s *fileState) network(ref string) *Network {
	if n, ok := s.Networks[ref]; ok {
		return n
	}
	for _, n := range s.Networks {
		if n.ID == ref || (len(ref) >= 12 && strings.HasPrefix(n.ID, ref)) {
			return n
		}
	}
	return nil
}

// mayDelete mirrors the Docker driver's defensive check.
func mayDelete(labels map[string]string) bool {
	return labels[state.LabelManagedBy] == state.ManagedBy
}

// Observe returns the instance's networks, its containers and every
// container attached to one of its networks, like the Docker driver.
func (e *Engine) Observe(_ context.Context, instance string, volumes bool) (*state.Observed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Observe changes nothing but fault counters; save only for those, so
	// that a read-only `moat plan` leaves the state file alone.
	armed := len(e.st.Faults) > 0
	done := func(err error) error {
		if armed {
			return e.finish(nil, err)
		}
		return err
	}
	after, ferr := e.begin("Observe")
	if ferr != nil && !after {
		return nil, done(ferr)
	}
	if instance == "" {
		return nil, fmt.Errorf("observe: instance is required")
	}
	obs := &state.Observed{Networks: []state.Network{}, Containers: []state.Container{}}
	managed := map[string]bool{}
	for _, n := range e.st.Networks {
		if !state.Managed(n.Labels, instance) {
			continue
		}
		managed[n.Name] = true
		obs.Networks = append(obs.Networks, state.Network{
			ID: n.ID, Name: n.Name, Driver: n.Driver, Internal: n.Internal,
			Subnet: n.Subnet, Bridge: n.Options[state.OptionBridgeName], ICC: n.Options["com.docker.network.bridge.enable_icc"], Labels: maps.Clone(n.Labels),
		})
	}
	for _, c := range e.st.Containers {
		labels := state.ContainerLabels(c.Name, c.Labels, instance)
		if e.st.Swarm {
			labels = swarmLabels(c)
		}
		nets := make([]string, 0, len(c.Networks))
		onManaged := false
		for n := range c.Networks {
			nets = append(nets, n)
			onManaged = onManaged || managed[n]
		}
		if !state.Managed(labels, instance) && !onManaged {
			continue
		}
		slices.Sort(nets)
		obs.Containers = append(obs.Containers, state.Container{
			ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, State: c.State,
			Labels: maps.Clone(labels), Networks: nets, NetworkIDs: maps.Clone(c.NetIDs),
			Volumes: c.volumes(),
		})
	}
	if e.st.ImageIDs != nil {
		obs.Images = maps.Clone(e.st.ImageIDs)
	}
	if volumes {
		obs.Volumes = []state.Volume{}
		for _, v := range e.st.Volumes {
			if state.Managed(v.Labels, instance) {
				obs.Volumes = append(obs.Volumes, state.Volume{Name: v.Name, Labels: maps.Clone(v.Labels)})
			}
		}
		slices.SortFunc(obs.Volumes, func(a, b state.Volume) int { return strings.Compare(a.Name, b.Name) })
	}
	slices.SortFunc(obs.Networks, func(a, b state.Network) int { return strings.Compare(a.Name, b.Name) })
	e.st.observeSwarm(obs, instance)
	slices.SortFunc(obs.Containers, func(a, b state.Container) int { return strings.Compare(a.Name, b.Name) })
	if ferr != nil {
		return nil, done(ferr)
	}
	if err := done(nil); err != nil {
		return nil, err
	}
	return obs, nil
}

// CreateNetwork creates a network; like Docker, a taken name or an
// overlapping subnet is an error.
func (e *Engine) CreateNetwork(_ context.Context, spec state.NetworkSpec) (string, error) {
	var id string
	err := e.call("CreateNetwork", func() error {
		if spec.Name == "" {
			return errors.New("create network: name is required")
		}
		if e.st.network(spec.Name) != nil {
			return fmt.Errorf("create network %s: %w: network with name %s already exists", spec.Name, ErrConflict, spec.Name)
		}
		if spec.Subnet != "" {
			p, err := netip.ParsePrefix(spec.Subnet)
			if err != nil {
				return fmt.Errorf("create network %s: invalid subnet: %w", spec.Name, err)
			}
			for _, n := range e.st.Networks {
				if q, err := netip.ParsePrefix(n.Subnet); err == nil && q.Overlaps(p) {
					return fmt.Errorf("create network %s: subnet %s overlaps %s of network %s", spec.Name, spec.Subnet, n.Subnet, n.Name)
				}
			}
		}
		driver := spec.Driver
		if driver == "" {
			driver = "bridge"
		}
		id = e.newID("network")
		e.st.Networks[spec.Name] = &Network{
			ID: id, Name: spec.Name, Driver: driver, Internal: spec.Internal, Subnet: spec.Subnet,
			Gateway: spec.Gateway, Options: maps.Clone(spec.Options), Labels: maps.Clone(spec.Labels),
			Attachable: spec.Attachable,
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// RemoveNetwork removes a managed network without endpoints; a missing
// one is success.
func (e *Engine) RemoveNetwork(_ context.Context, name string) error {
	return e.call("RemoveNetwork", func() error {
		n := e.st.network(name)
		if n == nil {
			return nil
		}
		if !mayDelete(n.Labels) {
			return fmt.Errorf("remove network %s: %w", name, engine.ErrNotManaged)
		}
		return e.st.removeNetwork(n)
	})
}

// removeNetwork removes n as Docker does: refused while a running (or
// paused) container is attached; a stopped one keeps a stale endpoint.
func (s *fileState) removeNetwork(n *Network) error {
	for _, c := range s.Containers {
		if _, ok := c.Networks[n.Name]; ok && (c.State == "running" || c.State == "paused") {
			return fmt.Errorf("remove network %s: network has active endpoints (container %s)", n.Name, c.Name)
		}
	}
	delete(s.Networks, n.Name)
	return nil
}

// CreateVolume ensures a volume; an existing one is kept as it is.
func (e *Engine) CreateVolume(_ context.Context, spec state.VolumeSpec) error {
	return e.call("CreateVolume", func() error {
		if spec.Name == "" {
			return errors.New("create volume: name is required")
		}
		if _, ok := e.st.Volumes[spec.Name]; !ok {
			e.st.Volumes[spec.Name] = &Volume{Name: spec.Name, Labels: maps.Clone(spec.Labels)}
		}
		return nil
	})
}

// RemoveVolume removes a managed volume no container uses; a missing one
// is success.
func (e *Engine) RemoveVolume(_ context.Context, name string) error {
	return e.call("RemoveVolume", func() error {
		v, ok := e.st.Volumes[name]
		if !ok {
			return nil
		}
		if !mayDelete(v.Labels) {
			return fmt.Errorf("remove volume %s: %w", name, engine.ErrNotManaged)
		}
		for _, c := range e.st.Containers {
			if c.Spec == nil {
				continue
			}
			for _, m := range c.Spec.Mounts {
				if m.Type == "volume" && m.Source == name {
					return fmt.Errorf("remove volume %s: volume is in use by container %s", name, c.Name)
				}
			}
		}
		delete(e.st.Volumes, name)
		return nil
	})
}

// CreateContainer creates, attaches and starts a container. A same-named
// container is replaced only if it carries the spec's instance labels.
func (e *Engine) CreateContainer(_ context.Context, spec state.ContainerSpec) (string, error) {
	var id string
	err := e.call("CreateContainer", func() error {
		if spec.Name == "" || spec.Image == "" {
			return errors.New("create container: name and image are required")
		}
		if e.st.Images != nil && !slices.Contains(e.st.Images, spec.Image) {
			return fmt.Errorf("create container %s: image %s is not on the engine (moat never pulls; build or load it first): %w",
				spec.Name, spec.Image, engine.ErrNotFound)
		}
		if err := e.st.checkRefs(spec); err != nil {
			return fmt.Errorf("create container %s: %w", spec.Name, err)
		}
		for _, m := range spec.Mounts {
			if m.Type != "volume" && m.Type != "bind" && (m.Type != state.MountSecret || !e.st.Swarm) {
				return fmt.Errorf("create container %s: mount %s: unsupported type %q", spec.Name, m.Target, m.Type)
			}
		}
		if old, ok := e.st.Containers[spec.Name]; ok {
			instance := spec.Labels[state.LabelInstance]
			if instance == "" || !state.Managed(old.Labels, instance) {
				return fmt.Errorf("create container %s: %w: a container of that name already exists and is not moat's (instance %q); rename or remove it by hand",
					spec.Name, engine.ErrNotManaged, instance)
			}
			delete(e.st.Containers, spec.Name) // leftover of an interrupted run
		}
		for _, m := range spec.Mounts {
			if _, ok := e.st.Volumes[m.Source]; m.Type == "volume" && !ok {
				// Docker creates a missing named volume on the fly.
				e.st.Volumes[m.Source] = &Volume{Name: m.Source}
			}
		}
		c := &Container{
			ID: e.newID("container"), Name: spec.Name, Image: spec.Image, ImageID: e.st.ImageIDs[spec.Image], State: "running",
			Labels: maps.Clone(spec.Labels), Networks: map[string][]string{}, Spec: cloneSpec(spec),
		}
		c.NetIDs = map[string]string{}
		for _, ep := range spec.Networks {
			n := e.st.network(ep.Network)
			c.Networks[n.Name] = slices.Clone(ep.Aliases)
			c.NetIDs[n.Name] = n.ID
		}
		e.st.Containers[c.Name] = c
		id = c.ID
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// StartContainer starts a container by id or name; a running one is
// success.
func (e *Engine) StartContainer(_ context.Context, id string) error {
	return e.call("StartContainer", func() error {
		c := e.st.container(id)
		if c == nil {
			return fmt.Errorf("start container %s: %w: no such container", id, engine.ErrNotFound)
		}
		if c.State == "paused" {
			return fmt.Errorf("start container %s: cannot start a paused container, try unpause instead", id)
		}
		for _, name := range slices.Sorted(maps.Keys(c.NetIDs)) {
			if nid := c.NetIDs[name]; e.st.network(nid) == nil {
				return fmt.Errorf("start container %s: network %s not found", id, nid)
			}
		}
		c.State = "running"
		return nil
	})
}

// UnpauseContainer resumes a paused container; any other state is success.
func (e *Engine) UnpauseContainer(_ context.Context, id string) error {
	return e.call("UnpauseContainer", func() error {
		c := e.st.container(id)
		if c == nil {
			return fmt.Errorf("unpause container %s: %w: no such container", id, engine.ErrNotFound)
		}
		if c.State == "paused" {
			c.State = "running"
		}
		return nil
	})
}

// RemoveContainer removes a managed container; a missing one is success.
func (e *Engine) RemoveContainer(_ context.Context, id string, _ int) error {
	return e.call("RemoveContainer", func() error {
		c := e.st.container(id)
		if c == nil {
			return nil
		}
		if !mayDelete(c.Labels) {
			return fmt.Errorf("remove container %s: %w", id, engine.ErrNotManaged)
		}
		delete(e.st.Containers, c.Name)
		e.publishLocked("container", "destroy", c.Name)
		return nil
	})
}

// Connect attaches a container to a network; already attached is success.
func (e *Engine) Connect(_ context.Context, network, container string, aliases []string) error {
	return e.call("Connect", func() error {
		return e.connectLocked(network, container, aliases)
	})
}

func (s *fileState) connect(network, container string, aliases []string) error {
	n := s.network(network)
	if n == nil {
		return fmt.Errorf("connect container %s to network %s: %w: no such network", container, network, engine.ErrNotFound)
	}
	c := s.container(container)
	if c == nil {
		return fmt.Errorf("connect container %s to network %s: %w: no such container", container, network, engine.ErrNotFound)
	}
	if _, ok := c.Networks[n.Name]; !ok {
		c.Networks[n.Name] = slices.Clone(aliases)
		if c.NetIDs == nil {
			c.NetIDs = map[string]string{}
		}
		c.NetIDs[n.Name] = n.ID
	}
	return nil
}

// connectLocked attaches and publishes the event; e.mu is held.
func (e *Engine) connectLocked(network, container string, aliases []string) error {
	if err := e.st.connect(network, container, aliases); err != nil {
		return err
	}
	if n := e.st.network(network); n != nil {
		e.publishLocked("network", "connect", n.Name)
	}
	return nil
}

// Disconnect detaches a container; not attached, no container or no
// network is success.
func (e *Engine) Disconnect(_ context.Context, network, container string) error {
	return e.call("Disconnect", func() error {
		n, c := e.st.network(network), e.st.container(container)
		if n != nil && c != nil {
			delete(c.Networks, n.Name)
			delete(c.NetIDs, n.Name)
			e.publishLocked("network", "disconnect", n.Name)
		}
		return nil
	})
}

// volumes are the named volumes the container mounts, sorted.
func (c *Container) volumes() []string {
	if c.Spec == nil {
		return nil
	}
	var out []string
	for _, m := range c.Spec.Mounts {
		if m.Type == "volume" {
			out = append(out, m.Source)
		}
	}
	slices.Sort(out)
	return out
}

func cloneSpec(s state.ContainerSpec) *state.ContainerSpec {
	c := s
	c.Cmd = slices.Clone(s.Cmd)
	c.Env = slices.Clone(s.Env)
	c.Labels = maps.Clone(s.Labels)
	c.Networks = slices.Clone(s.Networks)
	for i := range c.Networks {
		c.Networks[i].Aliases = slices.Clone(c.Networks[i].Aliases)
	}
	c.Mounts = slices.Clone(s.Mounts)
	c.Tmpfs = maps.Clone(s.Tmpfs)
	c.Ports = slices.Clone(s.Ports)
	c.CapDrop = slices.Clone(s.CapDrop)
	c.CapAdd = slices.Clone(s.CapAdd)
	c.SecurityOpt = slices.Clone(s.SecurityOpt)
	c.SecretDigests = maps.Clone(s.SecretDigests)
	if s.Swarm != nil {
		sw := *s.Swarm
		sw.Placement = slices.Clone(sw.Placement)
		c.Swarm = &sw
	}
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	return &c
}
