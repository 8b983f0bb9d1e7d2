package docker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// Events streams the Swarm's drift events: the instance's services,
// networks, secrets and containers (task containers are named after
// their service), and every service event (a service of anyone may be
// attached to a tenant overlay by hand). One GET /events, heartbeat as on
// one host.
func (s *Swarm) Events(ctx context.Context, instance string) (<-chan engine.Event, <-chan error) {
	out := make(chan engine.Event, 64)
	errc := make(chan error, 1)
	f := filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.SecretEventType)),
	)
	go func() {
		defer close(out)
		errc <- s.stream(ctx, f, func(m events.Message) (engine.Event, bool) { return swarmRelevant(m, instance) }, out)
		close(errc)
	}()
	return out, errc
}

// swarmRelevant keeps the events that may be drift of instance.
func swarmRelevant(m events.Message, instance string) (engine.Event, bool) {
	name := m.Actor.Attributes["name"]
	ev := engine.Event{Type: string(m.Type), Action: string(m.Action), Name: name, Time: time.Unix(0, m.TimeNano)}
	prefix := instance + "--"
	switch m.Type {
	case events.ServiceEventType:
		return ev, true
	case events.ContainerEventType:
		if !slices.Contains(containerActions, m.Action) {
			return ev, false
		}
		return ev, strings.HasPrefix(name, prefix) || strings.HasPrefix(strings.TrimPrefix(m.Actor.Attributes["oldName"], "/"), prefix)
	case events.NetworkEventType:
		return ev, strings.HasPrefix(name, prefix) && slices.Contains(networkActions, m.Action)
	case events.SecretEventType:
		return ev, strings.HasPrefix(name, prefix)
	}
	return ev, false
}

// InspectContainers fills Inspect of every container of obs. A service's
// settings come from its spec (what Swarm gives every task) and, where
// this node runs its task, from that container's inspect (what only the
// container shows: privileged, security options, namespaces, devices,
// swap): so no-new-privileges missing on an API 1.41 service (it cannot
// be set there) is visible to the audit. One service list, one container
// list, one inspect per local task or plain container.
func (s *Swarm) InspectContainers(ctx context.Context, obs *state.Observed) error {
	svcs, err := call(s.Engine, ctx, "list services", read, func(ctx context.Context) ([]swarm.Service, error) {
		return s.cli.ServiceList(ctx, swarm.ServiceListOptions{})
	})
	if err != nil {
		return wrap(err, "inspect: list services")
	}
	byID := map[string]*swarm.Service{}
	for i := range svcs {
		byID[svcs[i].ID] = &svcs[i]
	}
	ctrs, err := call(s.Engine, ctx, "list containers", read, func(ctx context.Context) ([]container.Summary, error) {
		return s.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelSwarmServiceID))})
	})
	if err != nil {
		return wrap(err, "inspect: list task containers")
	}
	task := map[string]string{} // service id -> a local task container, running first
	for _, c := range ctrs {
		id := c.Labels[labelSwarmServiceID]
		if task[id] == "" || c.State == container.StateRunning {
			task[id] = c.ID
		}
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, inspectParallel)
	)
	for i := range obs.Containers {
		c := &obs.Containers[i]
		svc := byID[c.ID]
		ref := c.ID
		if svc != nil {
			ref = task[svc.ID]
		}
		if ref == "" {
			c.Inspect = serviceInspect(svc, nil)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := s.inspectContainer(ctx, ref)
			switch {
			case err == nil && svc != nil:
				c.Inspect = serviceInspect(svc, inspectOf(resp))
			case err == nil:
				c.Inspect = inspectOf(resp)
			case cerrdefs.IsNotFound(err):
				if svc != nil {
					c.Inspect = serviceInspect(svc, nil)
				}
			default:
				mu.Lock()
				if firstErr == nil {
					firstErr = wrap(err, "inspect container %s", c.Name)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// serviceInspect is the audit's view of a service: the settings of its
// spec, over those of its local task container (nil: no task here).
func serviceInspect(svc *swarm.Service, task *state.Inspect) *state.Inspect {
	in := &state.Inspect{}
	if task != nil {
		in = task
	}
	t := svc.Spec.TaskTemplate
	cs := t.ContainerSpec
	if cs == nil {
		return in
	}
	in.User = cs.User
	in.CapAdd = slices.Sorted(slices.Values(cs.CapabilityAdd))
	in.CapDrop = slices.Sorted(slices.Values(cs.CapabilityDrop))
	in.ReadOnlyRootfs = cs.ReadOnly
	if len(cs.Sysctls) > 0 {
		in.Sysctls = cs.Sysctls
	}
	if cs.Privileges != nil && cs.Privileges.NoNewPrivileges && !slices.ContainsFunc(in.SecurityOpt, isNoNewPrivileges) {
		in.SecurityOpt = append(in.SecurityOpt, "no-new-privileges:true")
		slices.Sort(in.SecurityOpt)
	}
	in.Memory, in.NanoCPUs, in.PidsLimit = 0, 0, 0
	if r := t.Resources; r != nil && r.Limits != nil {
		in.Memory, in.NanoCPUs, in.PidsLimit = r.Limits.MemoryBytes, r.Limits.NanoCPUs, r.Limits.Pids
	}
	if task == nil {
		// Swarm sets no swap limit on API 1.41: the engine's default
		// (twice the memory) is what a task gets.
		in.MemorySwap = 2 * in.Memory
	}
	in.Restart = state.Restart{Name: "no"}
	if p := t.RestartPolicy; p != nil {
		switch p.Condition {
		case swarm.RestartPolicyConditionOnFailure:
			in.Restart.Name = "on-failure"
			if p.MaxAttempts != nil {
				in.Restart.MaxRetries = int(*p.MaxAttempts)
			}
		case swarm.RestartPolicyConditionAny, "":
			in.Restart.Name = "always"
		}
	}
	in.Mounts = nil
	for _, m := range cs.Mounts {
		if m.Type == mount.TypeTmpfs {
			continue
		}
		in.Mounts = append(in.Mounts, state.Mount{Type: string(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, r := range cs.Secrets {
		if r != nil && r.File != nil {
			in.Mounts = append(in.Mounts, state.Mount{Type: state.MountSecret, Source: r.SecretName, Target: r.File.Name, ReadOnly: true})
		}
	}
	slices.SortFunc(in.Mounts, func(a, b state.Mount) int { return strings.Compare(a.Target, b.Target) })
	in.Ports = nil
	if ep := svc.Spec.EndpointSpec; ep != nil {
		for _, p := range ep.Ports {
			in.Ports = append(in.Ports, state.Port{HostPort: int(p.PublishedPort), ContainerPort: int(p.TargetPort), Protocol: string(p.Protocol)})
		}
	}
	return in
}

// Unenforceable returns the audit checks (audit.Finding.Check) whose
// findings no service update can fix on this engine, each with why. The
// audit must still report them; a plan must not answer them with an
// update, which would change nothing and be planned again on every run:
//   - "memory": a service has no swap limit (the Engine API up to 1.51
//     has none), so its task gets the engine's default, swap twice the
//     memory; a changed memory limit itself shows as the "limits" part
//     of a hand edit.
//   - "no-new-privileges": a service on API < 1.44 cannot ask for it, and
//     the daemon-wide setting (daemon.json) is not visible in an inspect.
func (s *Swarm) Unenforceable() map[string]string {
	out := map[string]string{
		"memory": "a Swarm service cannot limit swap: its task gets the engine's default, swap twice the memory limit",
	}
	if !s.caps.noNewPrivileges {
		out["no-new-privileges"] = "a Swarm service cannot set no-new-privileges before API " + noNewPrivilegesAPI + " (engine API " + s.APIVersion() + "): set \"no-new-privileges\": true in every node's daemon.json"
	}
	return out
}
