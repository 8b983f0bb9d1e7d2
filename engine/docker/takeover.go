package docker

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// takeOverPoll is the pause between looks for a network by name while
// a create that lost the race for the address pool to one still in
// flight in the engine (a killed run's) waits for that network to become
// visible: the engine allocates the pool first and makes the name visible
// only when the create is done, seconds later on a loaded host.
const takeOverPoll = 500 * time.Millisecond

// takeOverNetwork runs when the create of spec failed with createErr. A
// kill -9 during a network create leaves the create running in the
// engine; the next run's snapshot may not see it yet, so its own create
// meets a conflict (same name) or, when both creates race, "Pool
// overlaps". If a network of spec's name exists now, carries this
// instance's labels and matches the spec (driver, internal, subnet), it
// is the one we wanted: return its id. Anything else is a clear error
// naming what is in the way. Only the error path pays for this.
func (e *Engine) takeOverNetwork(ctx context.Context, spec state.NetworkSpec, createErr error) (string, error) {
	conflict := cerrdefs.IsConflict(createErr) || isMessage(createErr, "already exists")
	overlap := isMessage(createErr, "pool overlaps", "overlaps with other one")
	if !conflict && !overlap {
		return "", wrap(createErr, "create network %s", spec.Name)
	}
	instance := spec.Labels[state.LabelInstance]
	// Wait at most one write deadline for the other create to finish.
	until := time.Now().Add(e.timeouts.Write)
	for {
		n, err := e.inspectNetwork(ctx, spec.Name)
		switch {
		case err == nil:
			if !state.Managed(n.Labels, instance) {
				return "", fmt.Errorf("create network %s: %w: a network of that name (id %s) exists and is not this instance's (%q); rename or remove it by hand",
					spec.Name, engine.ErrNotManaged, shortID(n.ID), instance)
			}
			if why := networkDiffers(spec, n); why != "" {
				return "", fmt.Errorf("create network %s: a network of that name of this instance appeared since the plan (id %s) and differs from the config (%s); run moat apply again to replace it: %w",
					spec.Name, shortID(n.ID), why, createErr)
			}
			e.log.Warn("took over a network that appeared since the plan (an interrupted run's create)", "network", spec.Name, "id", n.ID)
			return n.ID, nil
		case !cerrdefs.IsNotFound(err):
			return "", wrap(err, "create network %s: inspect the network in the way (%v)", spec.Name, createErr)
		}
		if !overlap || time.Now().After(until) {
			break
		}
		// A network elsewhere that holds the subnet will not go away by
		// waiting: stop at once. One of this name and instance is the
		// in-flight create itself: the engine lists it before it answers an
		// inspect by name, so keep waiting for it.
		other, oursID := e.overlapping(ctx, spec)
		if other != "" && oursID == "" {
			return "", fmt.Errorf("create network %s: subnet %s overlaps %s: %w", spec.Name, spec.Subnet, other, createErr)
		}
		if oursID != "" {
			if n, err := e.inspectNetwork(ctx, oursID); err == nil && networkDiffers(spec, n) == "" {
				e.log.Warn("took over a network that appeared since the plan (an interrupted run's create)", "network", spec.Name, "id", n.ID)
				return n.ID, nil
			}
		}
		select {
		case <-time.After(takeOverPoll):
		case <-ctx.Done():
			return "", wrap(createErr, "create network %s", spec.Name)
		}
	}
	if overlap {
		return "", wrap(createErr, "create network %s: subnet %s is taken, and no network of that name or subnet appeared within %s (a network being created or removed right now, or a route of the host)",
			spec.Name, spec.Subnet, e.timeouts.Write)
	}
	return "", wrap(createErr, "create network %s", spec.Name)
}

// networkDiffers says how a live network differs from spec in what the
// plan compares ("" if it does not).
func networkDiffers(spec state.NetworkSpec, n network.Inspect) string {
	var diffs []string
	if spec.Driver != "" && n.Driver != spec.Driver {
		diffs = append(diffs, fmt.Sprintf("driver %s, want %s", n.Driver, spec.Driver))
	}
	if n.Internal != spec.Internal {
		diffs = append(diffs, fmt.Sprintf("internal %t, want %t", n.Internal, spec.Internal))
	}
	if got := subnetOf(n.IPAM); spec.Subnet != "" && got != spec.Subnet {
		diffs = append(diffs, fmt.Sprintf("subnet %s, want %s", got, spec.Subnet))
	}
	for _, k := range []string{state.LabelManagedBy, state.LabelInstance, state.LabelTenant, state.LabelLan, state.LabelSpecHash} {
		if spec.Labels[k] != n.Labels[k] {
			diffs = append(diffs, fmt.Sprintf("label %s=%q, want %q", k, n.Labels[k], spec.Labels[k]))
		}
	}
	return strings.Join(diffs, "; ")
}

// overlapping names the network whose subnet overlaps spec's, for the
// error message ("" if none is found or the list fails). When it is
// spec's own network (same name, this instance's labels), its id is
// returned too: the engine may list it before it answers an inspect by
// name.
func (e *Engine) overlapping(ctx context.Context, spec state.NetworkSpec) (string, string) {
	want, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return "", ""
	}
	nets, err := call(e, ctx, "list networks", read, func(ctx context.Context) ([]network.Summary, error) {
		return e.cli.NetworkList(ctx, network.ListOptions{})
	})
	if err != nil {
		return "", ""
	}
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			p, err := netip.ParsePrefix(c.Subnet)
			if err != nil || !p.Overlaps(want) {
				continue
			}
			owner := "not moat's"
			if n.Labels[state.LabelManagedBy] == state.ManagedBy {
				owner = fmt.Sprintf("moat instance %q", n.Labels[state.LabelInstance])
			}
			desc := fmt.Sprintf("network %s (%s, subnet %s, %s)", n.Name, shortID(n.ID), c.Subnet, owner)
			if n.Name == spec.Name && state.Managed(n.Labels, spec.Labels[state.LabelInstance]) {
				return desc, n.ID
			}
			return desc, ""
		}
	}
	return "", ""
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
