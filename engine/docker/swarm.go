package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// Swarm is the Swarm-mode driver: each compiled container is a service
// with one replica, each LAN an overlay network, each secret version a
// Swarm secret. It shares the single-host driver's client, deadlines and
// retries (every call goes through Engine.do), and its volume methods:
// volumes stay local volumes of the node they are made on.
type Swarm struct {
	*Engine
	caps    apiCaps
	nnpWarn sync.Once
	// locks serialise the read-modify-write of one service's networks
	// (Connect and Disconnect of one service may run in parallel).
	locks sync.Map // service name or id -> *sync.Mutex
}

var (
	_ engine.Engine      = (*Swarm)(nil)
	_ engine.Updater     = (*Swarm)(nil)
	_ engine.SecretStore = (*Swarm)(nil)
	_ engine.Inspector   = (*Swarm)(nil)
)

// Labels Swarm puts on task containers.
const (
	labelSwarmServiceID   = "com.docker.swarm.service.id"
	labelSwarmServiceName = "com.docker.swarm.service.name"
)

// NewSwarm connects like New, then checks with one info call that the
// engine is an active Swarm manager: moat creates services, and only a
// manager accepts them.
func NewSwarm(opts Options) (*Swarm, error) {
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	info, err := call(e, context.Background(), "engine info", read, func(ctx context.Context) (system.Info, error) {
		return e.cli.Info(ctx)
	})
	if err != nil {
		e.Close()
		return nil, wrap(err, "engine info")
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		e.Close()
		return nil, fmt.Errorf("engine at %s is not a Swarm manager (node state %q, manager %t): run `docker swarm init` or point DOCKER_HOST at a manager",
			e.host, info.Swarm.LocalNodeState, info.Swarm.ControlAvailable)
	}
	return &Swarm{Engine: e, caps: capsOf(e.cli.ClientVersion())}, nil
}

// warnNoNewPrivileges says once per engine that a service cannot get
// no-new-privileges on this API version; the audit checks the tasks.
func (s *Swarm) warnNoNewPrivileges(spec state.ContainerSpec) {
	if s.caps.noNewPrivileges || !slices.ContainsFunc(spec.SecurityOpt, isNoNewPrivileges) {
		return
	}
	s.nnpWarn.Do(func() {
		s.log.Warn("this engine's API cannot set no-new-privileges on a Swarm service (needs API "+noNewPrivilegesAPI+"): set \"no-new-privileges\": true in the daemon.json of every node (docs/SWARM.md); moat audit checks the task containers",
			"api", s.cli.ClientVersion(), "engine", s.host)
	})
}

// Observe lists services (with running task counts), networks, the
// instance's secrets, containers and images: five API calls whatever the
// number of objects, six with volumes. Each managed service of the
// instance is one state.Container; a service edited by hand since moat
// wrote it gets a spec-hash that matches nothing and its edited parts
// marked (see markEdited). Containers are listed only to find those
// started by hand on a managed overlay (task containers of services are
// not containers of their own) and the image the local task runs. The
// network list also gives the node's docker_gwbridge (GatewayBridge).
func (s *Swarm) Observe(ctx context.Context, instance string, volumes bool) (*state.Observed, error) {
	if instance == "" {
		return nil, fmt.Errorf("observe: instance is required")
	}
	svcs, err := call(s.Engine, ctx, "list services", read, func(ctx context.Context) ([]swarm.Service, error) {
		return s.cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
	})
	if err != nil {
		return nil, wrap(err, "observe: list services")
	}
	// All networks, not only the instance's: a network added to a service
	// by hand is named by id in the service, and the plan needs its name.
	nets, err := call(s.Engine, ctx, "list networks", read, func(ctx context.Context) ([]network.Summary, error) {
		return s.cli.NetworkList(ctx, network.ListOptions{})
	})
	if err != nil {
		return nil, wrap(err, "observe: list networks")
	}
	secrets, err := call(s.Engine, ctx, "list secrets", read, func(ctx context.Context) ([]swarm.Secret, error) {
		return s.cli.SecretList(ctx, swarm.SecretListOptions{Filters: managedFilter(instance)})
	})
	if err != nil {
		return nil, wrap(err, "observe: list secrets")
	}
	ctrs, err := call(s.Engine, ctx, "list containers", read, func(ctx context.Context) ([]container.Summary, error) {
		return s.cli.ContainerList(ctx, container.ListOptions{All: true})
	})
	if err != nil {
		return nil, wrap(err, "observe: list containers")
	}

	obs := &state.Observed{Networks: []state.Network{}, Containers: []state.Container{}, Secrets: []state.Secret{}}
	netName := map[string]string{} // id -> name, every network
	managed := map[string]bool{}   // name and id of the instance's networks
	for _, n := range nets {
		netName[n.ID] = n.Name
		if n.Name == state.GatewayBridgeNetwork && n.Scope == "local" {
			// The node's bridge of every task with a route out: host
			// protection on Swarm needs its interface name.
			obs.GatewayBridge = &state.Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Subnet: subnetOf(n.IPAM),
				Bridge: n.Options[state.OptionBridgeName], ICC: n.Options[OptionICC]}
		}
		if !state.Managed(n.Labels, instance) {
			continue
		}
		managed[n.ID], managed[n.Name] = true, true
		_, encrypted := n.Options["encrypted"]
		obs.Networks = append(obs.Networks, state.Network{
			ID: n.ID, Name: n.Name, Driver: n.Driver, Internal: n.Internal, Subnet: subnetOf(n.IPAM),
			Labels: n.Labels, Attachable: n.Attachable, Encrypted: encrypted,
		})
	}
	slices.SortFunc(obs.Networks, func(a, b state.Network) int { return strings.Compare(a.Name, b.Name) })

	for _, sec := range secrets {
		if state.Managed(sec.Spec.Labels, instance) {
			obs.Secrets = append(obs.Secrets, state.Secret{ID: sec.ID, Name: sec.Spec.Name, Labels: sec.Spec.Labels})
		}
	}
	slices.SortFunc(obs.Secrets, func(a, b state.Secret) int { return strings.Compare(a.Name, b.Name) })

	// The local task container of each service: its image id and
	// addresses (on a multi-node Swarm, a task elsewhere has none here).
	tasks := map[string]*container.Summary{}
	for i := range ctrs {
		c := &ctrs[i]
		id := c.Labels[labelSwarmServiceID]
		if id == "" {
			continue
		}
		if old := tasks[id]; old == nil || (c.State == container.StateRunning && old.State != container.StateRunning) {
			tasks[id] = c
		}
	}

	services := map[string]bool{} // ids of the services in the snapshot
	for i := range svcs {
		svc := &svcs[i]
		c, ok := s.serviceContainer(svc, instance, netName, managed, tasks[svc.ID])
		if !ok {
			continue
		}
		services[svc.ID] = true
		obs.Containers = append(obs.Containers, c)
	}
	for _, c := range ctrs {
		if services[c.Labels[labelSwarmServiceID]] {
			continue // a task of a service above
		}
		attached, netIDs, addrs, onManaged := endpointsOf(c.NetworkSettings, managed)
		if !onManaged {
			continue
		}
		obs.Containers = append(obs.Containers, state.Container{
			ID: c.ID, Name: containerName(c.Names), Image: c.Image, ImageID: c.ImageID, State: string(c.State),
			// moat creates no plain containers on Swarm (volume init
			// steps are gone when they end): none is moat's, whatever
			// labels its image gave it.
			Labels:   withoutMoatLabels(c.Labels),
			Networks: attached, NetworkIDs: netIDs, Volumes: volumesOf(c.Mounts), Addresses: addrs,
		})
	}
	slices.SortFunc(obs.Containers, func(a, b state.Container) int { return strings.Compare(a.Name, b.Name) })

	if obs.Images, err = s.listImages(ctx); err != nil {
		return nil, err
	}
	if volumes {
		if obs.Volumes, err = s.listVolumes(ctx, instance); err != nil {
			return nil, err
		}
	}
	return obs, nil
}

// serviceContainer maps a listed service onto a state.Container: a
// managed service of instance, or any other service attached to one of
// its networks (drift). ok is false for a service that is neither.
func (s *Swarm) serviceContainer(svc *swarm.Service, instance string, netName map[string]string, managed map[string]bool, task *container.Summary) (state.Container, bool) {
	spec := &svc.Spec
	var attached []string
	netIDs := map[string]string{}
	onManaged := false
	for _, a := range spec.TaskTemplate.Networks {
		name := netName[a.Target]
		if name == "" {
			name = a.Target // given by name, or a network gone since
		}
		attached = append(attached, name)
		netIDs[name] = a.Target
		onManaged = onManaged || managed[a.Target] || managed[name]
	}
	isManaged := state.Managed(spec.Labels, instance)
	if !isManaged && !onManaged {
		return state.Container{}, false
	}
	slices.Sort(attached)
	if attached == nil {
		attached = []string{}
	}
	c := state.Container{
		ID: svc.ID, Name: spec.Name, State: "exited",
		Networks: attached, NetworkIDs: netIDs,
	}
	if st := svc.ServiceStatus; st != nil && st.DesiredTasks > 0 && st.RunningTasks >= st.DesiredTasks {
		c.State = "running"
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		c.Image = cs.Image
		for _, m := range cs.Mounts {
			if m.Type == mount.TypeVolume && m.Source != "" {
				c.Volumes = append(c.Volumes, m.Source)
			}
		}
		slices.Sort(c.Volumes)
	}
	if task != nil {
		c.ImageID = task.ImageID
		_, _, c.Addresses, _ = endpointsOf(task.NetworkSettings, nil)
	}
	if !isManaged {
		c.Labels = withoutMoatLabels(spec.Labels)
		return c, true
	}
	c.Labels = spec.Labels
	if parts := editedParts(spec.Labels[LabelServiceHash], projection(spec)); len(parts) > 0 {
		c.Labels = markEdited(spec.Labels, parts)
	}
	return c, true
}

// endpointsOf reads a listed container's networks: names (sorted), ids,
// IPv4 addresses, and whether one of them is in managed (by name or id).
func endpointsOf(ns *container.NetworkSettingsSummary, managed map[string]bool) (attached []string, netIDs, addrs map[string]string, onManaged bool) {
	attached = []string{}
	if ns == nil {
		return attached, nil, nil, false
	}
	for name, ep := range ns.Networks {
		attached = append(attached, name)
		onManaged = onManaged || managed[name]
		if ep == nil {
			continue
		}
		if ep.NetworkID != "" {
			if netIDs == nil {
				netIDs = map[string]string{}
			}
			netIDs[name] = ep.NetworkID
			onManaged = onManaged || managed[ep.NetworkID]
		}
		if ep.IPAddress != "" {
			if addrs == nil {
				addrs = map[string]string{}
			}
			addrs[name] = ep.IPAddress
		}
	}
	slices.Sort(attached)
	return attached, netIDs, addrs, onManaged
}

// withoutMoatLabels drops moat's labels of an object moat did not make.
func withoutMoatLabels(labels map[string]string) map[string]string {
	if labels == nil {
		return nil
	}
	out := maps.Clone(labels)
	maps.DeleteFunc(out, func(k, _ string) bool { return strings.HasPrefix(k, "org.moat.") })
	return out
}

// secretIDs resolves the secret mounts of spec to secret ids with one
// list (none when the spec mounts no secret).
func (s *Swarm) secretIDs(ctx context.Context, spec state.ContainerSpec) (map[string]string, error) {
	f := filters.NewArgs()
	for _, m := range spec.Mounts {
		if m.Type == state.MountSecret {
			f.Add("name", m.Source)
		}
	}
	if f.Len() == 0 {
		return nil, nil
	}
	list, err := call(s.Engine, ctx, "list secrets", read, func(ctx context.Context) ([]swarm.Secret, error) {
		return s.cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	})
	if err != nil {
		return nil, wrap(err, "list secrets")
	}
	ids := map[string]string{}
	for _, sec := range list {
		ids[sec.Spec.Name] = sec.ID // the name filter matches prefixes: keep exact names only
	}
	return ids, nil
}
