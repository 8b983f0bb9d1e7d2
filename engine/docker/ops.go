package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// Observe lists networks (label-filtered), all containers and, with
// volumes, managed volumes, and images (to resolve references): three or
// four API calls, never one per object.
// Containers are listed unfiltered because an unmanaged container attached
// by hand to a tenant LAN is exactly the drift moat must see; the list
// carries each container's networks, so no inspect is needed.
func (e *Engine) Observe(ctx context.Context, instance string, volumes bool) (*state.Observed, error) {
	if instance == "" {
		return nil, fmt.Errorf("observe: instance is required")
	}
	nets, err := call(e, ctx, "list networks", read, func(ctx context.Context) ([]network.Summary, error) {
		return e.cli.NetworkList(ctx, network.ListOptions{Filters: managedFilter(instance)})
	})
	if err != nil {
		return nil, wrap(err, "observe: list networks")
	}
	ctrs, err := call(e, ctx, "list containers", read, func(ctx context.Context) ([]container.Summary, error) {
		return e.cli.ContainerList(ctx, container.ListOptions{All: true})
	})
	if err != nil {
		return nil, wrap(err, "observe: list containers")
	}

	obs := &state.Observed{Networks: []state.Network{}, Containers: []state.Container{}}
	managedIDs := map[string]bool{}
	managedNames := map[string]bool{}
	// A container holding an address inside a managed subnet is kept even
	// when it is on none of moat's networks: on a shared bridge (Weave) it
	// can reach that LAN, and the plan reports it.
	var managedSubnets []netip.Prefix
	for _, n := range nets {
		// The server filtered already; checking again costs nothing and
		// keeps a misbehaving engine from widening what moat may touch.
		if !state.Managed(n.Labels, instance) {
			continue
		}
		managedIDs[n.ID] = true
		managedNames[n.Name] = true
		if p, err := netip.ParsePrefix(subnetOf(n.IPAM)); err == nil {
			managedSubnets = append(managedSubnets, p.Masked())
		}
		obs.Networks = append(obs.Networks, state.Network{
			ID:       n.ID,
			Name:     n.Name,
			Driver:   n.Driver,
			Internal: n.Internal,
			Subnet:   subnetOf(n.IPAM),
			Bridge:   n.Options[state.OptionBridgeName],
			ICC:      n.Options[OptionICC],
			Labels:   n.Labels,
		})
	}
	slices.SortFunc(obs.Networks, func(a, b state.Network) int { return strings.Compare(a.Name, b.Name) })

	for _, c := range ctrs {
		labels := state.ContainerLabels(containerName(c.Names), c.Labels, instance)
		var attached []string
		var netIDs map[string]string
		var addrs map[string]string
		onManaged := false
		if c.NetworkSettings != nil {
			for name, ep := range c.NetworkSettings.Networks {
				attached = append(attached, name)
				if ep != nil && ep.NetworkID != "" {
					if netIDs == nil {
						netIDs = make(map[string]string, len(c.NetworkSettings.Networks))
					}
					netIDs[name] = ep.NetworkID
				}
				if managedNames[name] || (ep != nil && managedIDs[ep.NetworkID]) {
					onManaged = true
				}
				if ep == nil || ep.IPAddress == "" {
					continue
				}
				if addrs == nil {
					addrs = map[string]string{}
				}
				addrs[name] = ep.IPAddress
				if a, err := netip.ParseAddr(ep.IPAddress); err == nil && inAny(a, managedSubnets) {
					onManaged = true
				}
			}
		}
		if !state.Managed(labels, instance) && !onManaged {
			continue // another instance's, or unrelated to moat
		}
		slices.Sort(attached)
		if attached == nil {
			attached = []string{}
		}
		obs.Containers = append(obs.Containers, state.Container{
			ID:         c.ID,
			Name:       containerName(c.Names),
			Image:      c.Image,
			ImageID:    c.ImageID,
			State:      string(c.State),
			Labels:     labels,
			Networks:   attached,
			NetworkIDs: netIDs,
			Volumes:    volumesOf(c.Mounts),
			Addresses:  addrs,
		})
	}
	slices.SortFunc(obs.Containers, func(a, b state.Container) int { return strings.Compare(a.Name, b.Name) })

	// One image list resolves every reference at once (a tag that moved
	// shows as a container ImageID that differs from its reference's id):
	// one call per observe, not one inspect per container or per image.
	if obs.Images, err = e.listImages(ctx); err != nil {
		return nil, err
	}
	if volumes {
		if obs.Volumes, err = e.listVolumes(ctx, instance); err != nil {
			return nil, err
		}
	}
	return obs, nil
}

// listImages maps every image reference the engine lists (repo tags and
// repo digests) to its image id: one call resolves them all.
func (e *Engine) listImages(ctx context.Context) (map[string]string, error) {
	imgs, err := call(e, ctx, "list images", read, func(ctx context.Context) ([]image.Summary, error) {
		return e.cli.ImageList(ctx, image.ListOptions{})
	})
	if err != nil {
		return nil, wrap(err, "observe: list images")
	}
	out := map[string]string{}
	for _, im := range imgs {
		for _, ref := range slices.Concat(im.RepoTags, im.RepoDigests) {
			if ref != "" && !strings.HasPrefix(ref, "<none>") {
				out[ref] = im.ID
			}
		}
	}
	return out, nil
}

// listVolumes returns instance's managed volumes, sorted: never nil, since
// "listed, none" plans differently from "not listed".
func (e *Engine) listVolumes(ctx context.Context, instance string) ([]state.Volume, error) {
	resp, err := call(e, ctx, "list volumes", read, func(ctx context.Context) (volume.ListResponse, error) {
		return e.cli.VolumeList(ctx, volume.ListOptions{Filters: managedFilter(instance)})
	})
	if err != nil {
		return nil, wrap(err, "observe: list volumes")
	}
	out := []state.Volume{}
	for _, v := range resp.Volumes {
		if v != nil && state.Managed(v.Labels, instance) {
			out = append(out, state.Volume{Name: v.Name, Labels: v.Labels})
		}
	}
	slices.SortFunc(out, func(a, b state.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// volumesOf returns the named volumes of a listed container, sorted.
func volumesOf(mounts []container.MountPoint) []string {
	var out []string
	for _, m := range mounts {
		if m.Type == mount.TypeVolume && m.Name != "" {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// subnetOf returns the first configured subnet (moat sets exactly one).
func subnetOf(ipam network.IPAM) string {
	for _, c := range ipam.Config {
		if c.Subnet != "" {
			return c.Subnet
		}
	}
	return ""
}

// CreateNetwork creates a network. On API 1.41 the SDK sends
// CheckDuplicate, so an existing network of that name (managed or not) is
// a conflict error rather than a second network with the same name. A
// network that appeared since the plan's snapshot (the create of a run
// killed mid-way, which the engine finishes after moat died) is taken
// over when it is this instance's and matches the spec; see
// takeOverNetwork.
func (e *Engine) CreateNetwork(ctx context.Context, spec state.NetworkSpec) (string, error) {
	opts := network.CreateOptions{
		Driver:     spec.Driver,
		Internal:   spec.Internal,
		Attachable: spec.Attachable,
		Options:    spec.Options,
		Labels:     spec.Labels,
	}
	if spec.Subnet != "" || spec.Gateway != "" {
		opts.IPAM = &network.IPAM{
			Driver: cmp.Or(spec.IPAMDriver, "default"),
			Config: []network.IPAMConfig{{Subnet: spec.Subnet, Gateway: spec.Gateway}},
		}
	}
	// Sent again on a transient error: if the first one was made after
	// all, the second meets it (conflict or pool overlap) and the
	// takeover below returns it.
	resp, err := call(e, ctx, "create network "+spec.Name, write, func(ctx context.Context) (network.CreateResponse, error) {
		return e.cli.NetworkCreate(ctx, spec.Name, opts)
	})
	if err == nil {
		return resp.ID, nil
	}
	if errors.Is(err, engine.ErrUnreachable) || ctx.Err() != nil {
		return "", wrap(err, "create network %s", spec.Name)
	}
	return e.takeOverNetwork(ctx, spec, err)
}

// RemoveNetwork removes a managed network; a missing one is success.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	n, err := e.inspectNetwork(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove network %s: inspect", name)
	}
	if !e.mayDelete(n.Labels) {
		return fmt.Errorf("remove network %s: %w: it lacks the labels %s=%s/%s", name, engine.ErrNotManaged,
			state.LabelManagedBy, state.ManagedBy, state.LabelInstance)
	}
	// By id: the name could have been reused since the inspect.
	err = e.do(ctx, "remove network "+name, write, 0, func(ctx context.Context) error {
		return e.cli.NetworkRemove(ctx, n.ID)
	})
	if err := ignoreNotFound(err); err != nil {
		return wrap(err, "remove network %s", name)
	}
	return nil
}

// CreateVolume ensures a named volume. Docker itself returns the existing
// volume for a known name, so this is idempotent without an inspect.
//
// A volume with an Init step (a tenant volume) then has it run, every time:
// it is idempotent, and it is what gives the volume to the tenant's uid,
// also when that uid changed since the volume was made. Without it the
// volume would stay root-owned and the tenant's apps could not write it.
func (e *Engine) CreateVolume(ctx context.Context, spec state.VolumeSpec) error {
	_, err := call(e, ctx, "create volume "+spec.Name, write, func(ctx context.Context) (volume.Volume, error) {
		return e.cli.VolumeCreate(ctx, volume.CreateOptions{Name: spec.Name, Labels: spec.Labels})
	})
	if err != nil {
		return wrap(err, "create volume %s", spec.Name)
	}
	if spec.Init != nil {
		if err := e.runOnce(ctx, *spec.Init); err != nil {
			return fmt.Errorf("create volume %s: init: %w", spec.Name, err)
		}
	}
	return nil
}

// RemoveVolume removes a managed volume; a missing one is success. Volumes
// hold data, so the managed check applies here too.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	v, err := call(e, ctx, "inspect volume "+name, read, func(ctx context.Context) (volume.Volume, error) {
		return e.cli.VolumeInspect(ctx, name)
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove volume %s: inspect", name)
	}
	if !e.mayDelete(v.Labels) {
		return fmt.Errorf("remove volume %s: %w", name, engine.ErrNotManaged)
	}
	err = e.do(ctx, "remove volume "+name, write, 0, func(ctx context.Context) error {
		return e.cli.VolumeRemove(ctx, name, false)
	})
	if err := ignoreNotFound(err); err != nil {
		return wrap(err, "remove volume %s", name)
	}
	return nil
}

// CreateContainer creates, connects and starts a container. API 1.41
// accepts only one endpoint at create, so the first network is given at
// create and the others are connected before the start (the app never
// runs with half its networks). If any step after the create fails, the
// half-made container is removed, so a failed create leaves nothing
// behind that a later plan would have to explain; if even that removal
// fails (the engine stopped answering), what is left carries the spec's
// name and labels, and the next apply starts or replaces it.
func (e *Engine) CreateContainer(ctx context.Context, spec state.ContainerSpec) (string, error) {
	cfg, hc, nc, err := containerConfig(spec)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	// Sent again on a transient error: if the first one was made after
	// all, the second gets a conflict and the leftover path below
	// removes it (it is ours: our name and labels) and creates again.
	create := func() (container.CreateResponse, error) {
		return call(e, ctx, "create container "+spec.Name, write, func(ctx context.Context) (container.CreateResponse, error) {
			return e.cli.ContainerCreate(ctx, cfg, hc, nc, nil, spec.Name)
		})
	}
	resp, err := create()
	if err != nil && cerrdefs.IsConflict(err) {
		// A container of that name exists: ours from an interrupted run
		// (remove and retry once) or someone else's (refuse).
		if rerr := e.removeLeftover(ctx, spec); rerr != nil {
			return "", rerr
		}
		resp, err = create()
	}
	if err != nil {
		if isMessage(err, "no such image") {
			return "", fmt.Errorf("create container %s: image %s is not on the engine (moat never pulls; build or load it first): %w",
				spec.Name, spec.Image, notFound{err})
		}
		err = wrap(err, "create container %s", spec.Name)
		if errors.Is(err, engine.ErrUnreachable) || ctx.Err() != nil {
			// The engine may have made it without telling us.
			return "", e.cleanupByName(ctx, spec, err)
		}
		return "", err
	}
	id := resp.ID

	fail := func(step error) (string, error) {
		// Clean up even if ctx was cancelled (that may be why we failed),
		// under the cleanup deadline.
		if rerr := ignoreNotFound(e.removeByID(context.WithoutCancel(ctx), id, cleanup)); rerr != nil {
			return "", fmt.Errorf("%w (and removing the half-created container %s failed: %v; the next apply replaces it)", step, spec.Name, rerr)
		}
		return "", step
	}
	for _, ep := range spec.Networks[min(1, len(spec.Networks)):] {
		if err := e.connect(ctx, ep.Network, id, ep.Aliases); err != nil && !isMessage(err, "already exists in network", "already attached") {
			return fail(wrap(err, "create container %s: connect network %s", spec.Name, ep.Network))
		}
	}
	if err := e.start(ctx, id); err != nil {
		return fail(wrap(err, "create container %s: start", spec.Name))
	}
	return id, nil
}

// cleanupByName removes the container a create that got no answer may
// have made, if it is ours; step is the create's error, returned with
// what the cleanup found.
func (e *Engine) cleanupByName(ctx context.Context, spec state.ContainerSpec, step error) error {
	cctx := context.WithoutCancel(ctx)
	old, err := call(e, cctx, "inspect container "+spec.Name, cleanup, func(ctx context.Context) (container.InspectResponse, error) {
		return e.cli.ContainerInspect(ctx, spec.Name)
	})
	if cerrdefs.IsNotFound(err) {
		return step
	}
	if err != nil {
		return fmt.Errorf("%w (a container %s may have been made; the next apply takes it over)", step, spec.Name)
	}
	if old.Config == nil || !state.Managed(old.Config.Labels, spec.Labels[state.LabelInstance]) {
		return step
	}
	if err := ignoreNotFound(e.removeByID(cctx, old.ID, cleanup)); err != nil {
		return fmt.Errorf("%w (and removing the half-created container %s failed: %v; the next apply replaces it)", step, spec.Name, err)
	}
	return step
}

// removeLeftover removes a same-named container only if it carries the
// managed labels of the spec's instance.
func (e *Engine) removeLeftover(ctx context.Context, spec state.ContainerSpec) error {
	old, err := e.inspectContainer(ctx, spec.Name)
	if cerrdefs.IsNotFound(err) {
		return nil // gone meanwhile: the retry will create it
	}
	if err != nil {
		return wrap(err, "create container %s: inspect the existing container of that name", spec.Name)
	}
	instance := spec.Labels[state.LabelInstance]
	labels := map[string]string(nil)
	if old.Config != nil {
		labels = old.Config.Labels
	}
	if instance == "" || !state.Managed(labels, instance) {
		return fmt.Errorf("create container %s: %w: a container of that name already exists and is not moat's (instance %q); rename or remove it by hand",
			spec.Name, engine.ErrNotManaged, instance)
	}
	e.log.Info("removing the leftover of an interrupted create", "container", spec.Name, "id", old.ID)
	if err := ignoreNotFound(e.removeByID(ctx, old.ID, write)); err != nil {
		return wrap(err, "create container %s: remove the leftover of an interrupted run", spec.Name)
	}
	return nil
}

// containerConfig maps a ContainerSpec onto the create request. Only what
// the spec says is set; engine and image defaults stay untouched.
func containerConfig(spec state.ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image:  spec.Image,
		Cmd:    spec.Cmd,
		Env:    spec.Env,
		User:   spec.User,
		Labels: spec.Labels,
	}
	if spec.StopTimeout > 0 {
		t := spec.StopTimeout
		cfg.StopTimeout = &t
	}
	if h := spec.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:     h.Test,
			Interval: time.Duration(h.Interval),
			Timeout:  time.Duration(h.Timeout),
			Retries:  h.Retries,
		}
	}

	hc := &container.HostConfig{
		ReadonlyRootfs: spec.ReadOnlyRootfs,
		Tmpfs:          spec.Tmpfs,
		CapDrop:        spec.CapDrop,
		CapAdd:         spec.CapAdd,
		SecurityOpt:    spec.SecurityOpt,
		Sysctls:        spec.Sysctls,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(spec.Restart.Name)},
		Resources: container.Resources{
			Memory: spec.Memory,
			// Memory plus swap equal to the memory limit: no swap, so the
			// limit is the limit (Docker's default doubles it with swap).
			MemorySwap: spec.Memory,
			NanoCPUs:   spec.NanoCPUs,
		},
	}
	// Docker rejects a retry count with any policy but on-failure.
	if spec.Restart.Name == string(container.RestartPolicyOnFailure) {
		hc.RestartPolicy.MaximumRetryCount = spec.Restart.MaxRetries
	}
	if spec.PidsLimit > 0 {
		p := spec.PidsLimit
		hc.Resources.PidsLimit = &p
	}
	for _, m := range spec.Mounts {
		var typ mount.Type
		switch m.Type {
		case "volume":
			typ = mount.TypeVolume
		case "bind":
			typ = mount.TypeBind
		default:
			return nil, nil, nil, fmt.Errorf("mount %s: unsupported type %q (want volume or bind)", m.Target, m.Type)
		}
		mt := mount.Mount{Type: typ, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if typ == mount.TypeVolume {
			// Never seed a volume from the image: Docker would copy the
			// image's files and the ownership of its directory over the
			// owner the volume's init step set. A moat volume holds only
			// what its tenant (or the platform) wrote.
			mt.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			port, err := nat.NewPort(proto, strconv.Itoa(p.ContainerPort))
			if err != nil {
				return nil, nil, nil, fmt.Errorf("port %d/%s: %w", p.ContainerPort, proto, err)
			}
			cfg.ExposedPorts[port] = struct{}{}
			host := ""
			if p.HostPort > 0 {
				host = strconv.Itoa(p.HostPort)
			}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: host})
		}
	}

	nc := &network.NetworkingConfig{}
	if len(spec.Networks) == 0 {
		// Never fall back to the default bridge: a container with no
		// tenant LAN gets no network at all.
		hc.NetworkMode = network.NetworkNone
	} else {
		first := spec.Networks[0]
		hc.NetworkMode = container.NetworkMode(first.Network)
		nc.EndpointsConfig = map[string]*network.EndpointSettings{
			first.Network: {Aliases: first.Aliases},
		}
	}
	return cfg, hc, nc, nil
}

// StartContainer starts a created or stopped container; starting a
// running one is success (the engine answers 304).
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	if err := e.start(ctx, id); err != nil {
		return wrap(err, "start container %s", id)
	}
	return nil
}

// UnpauseContainer resumes a paused container; one that is not paused (a
// retry after the first attempt's answer was lost) is success.
func (e *Engine) UnpauseContainer(ctx context.Context, id string) error {
	err := e.do(ctx, "unpause container "+id, write, 0, func(ctx context.Context) error {
		return e.cli.ContainerUnpause(ctx, id)
	})
	if err != nil && !isMessage(err, "is not paused") {
		return wrap(err, "unpause container %s", id)
	}
	return nil
}

// RemoveContainer stops (giving the app timeout seconds) and removes a
// managed container with its anonymous volumes. A missing container is
// success, so a retried apply does not fail on work already done.
func (e *Engine) RemoveContainer(ctx context.Context, id string, timeout int) error {
	c, err := e.inspectContainer(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove container %s: inspect", id)
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if !e.mayDelete(labels) {
		return fmt.Errorf("remove container %s: %w: it lacks the labels %s=%s/%s", id, engine.ErrNotManaged,
			state.LabelManagedBy, state.ManagedBy, state.LabelInstance)
	}
	// Stop first so the app gets its grace period; a stop failure is not
	// fatal since the forced remove below kills what is left.
	var stopErr error
	if c.State != nil && c.State.Running {
		var t *int
		if timeout >= 0 {
			t = &timeout
		}
		grace := 10 * time.Second // the engine's default when t is nil
		if t != nil {
			grace = time.Duration(*t) * time.Second
		}
		stopErr = e.do(ctx, "stop container "+id, stop, grace, func(ctx context.Context) error {
			return e.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: t})
		})
		if cerrdefs.IsNotFound(stopErr) {
			return nil
		}
	}
	err = e.removeByID(ctx, c.ID, write)
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case isMessage(err, "already in progress"):
		return nil // someone (a previous attempt) is removing it already
	case stopErr != nil:
		return wrap(errors.Join(err, stopErr), "remove container %s", id)
	}
	return wrap(err, "remove container %s", id)
}

// Connect attaches a container to a network with aliases; an existing
// attachment is success.
func (e *Engine) Connect(ctx context.Context, netName, ctr string, aliases []string) error {
	err := e.connect(ctx, netName, ctr, aliases)
	if err != nil && !isMessage(err, "already exists in network", "already attached") {
		return wrap(err, "connect container %s to network %s", ctr, netName)
	}
	return nil
}

// Disconnect detaches a container from a network (forced, so it also
// works on stopped containers); no attachment, no container or no network
// is success: the goal "not attached" holds.
func (e *Engine) Disconnect(ctx context.Context, netName, ctr string) error {
	err := e.do(ctx, "disconnect "+ctr+" from "+netName, write, 0, func(ctx context.Context) error {
		return e.cli.NetworkDisconnect(ctx, netName, ctr, true)
	})
	if err != nil && !cerrdefs.IsNotFound(err) && !isMessage(err, "is not connected") {
		return wrap(err, "disconnect container %s from network %s", ctr, netName)
	}
	return nil
}
