package reconcile

import (
	"fmt"
	"maps"
	"slices"

	"github.com/moat-platform/moat/state"
)

// foreign handles containers that are not managed for this instance but
// sit on one of its networks: reported, or disconnected with eviction.
// Containers of other instances count as foreign too: from this
// instance's point of view they are outsiders on a tenant LAN.
func (c *computer) foreign() {
	for i := range c.o.Containers {
		ct := &c.o.Containers[i]
		if state.Managed(ct.Labels, c.inst) {
			continue
		}
		who := "unmanaged container"
		if ct.Labels[state.LabelManagedBy] == state.ManagedBy {
			who = fmt.Sprintf("container of moat instance %q", ct.Labels[state.LabelInstance])
		}
		for _, n := range ct.Networks {
			net := c.oNet[n]
			if net == nil || !state.Managed(net.Labels, c.inst) {
				continue
			}
			op := Operation{Resource: ResourceID{KindContainer, ct.Name}, Action: Report, Verb: VerbReport,
				Cause: who + " attached to tenant LAN " + n, Tenant: net.Labels[state.LabelTenant],
				Network: n, LiveID: ct.ID}
			if c.opts.EvictUnmanaged {
				op.Action, op.Verb = Update, VerbDisconnect
				id := c.add(op)
				if _, changing := c.netChange[n]; changing {
					c.detach[n] = append(c.detach[n], id)
				}
				continue
			}
			if c.dNet[n] == nil {
				op.Cause += "; it blocks removing the network"
			} else if why := c.networkCause(c.dNet[n], net); why != "" {
				op.Cause += "; it blocks replacing the network (" + why + ")"
			}
			c.add(op)
		}
	}
}

// oldVolumes lists every managed volume that is no longer in the config:
// removed with PruneVolumes (the guard then wants --allow-volume-delete),
// else kept, and said so ("keep" report), so that a tenant removal or a
// one-letter rename never loses or strands data silently. Without a volume
// list, the volumes that managed containers mount are what the snapshot
// knows.
func (c *computer) oldVolumes() {
	tenants := map[string]string{}
	if c.oVol != nil {
		for i := range c.o.Volumes {
			v := &c.o.Volumes[i]
			if c.dVol[v.Name] == nil && state.Managed(v.Labels, c.inst) {
				tenants[v.Name] = v.Labels[state.LabelTenant]
			}
		}
	}
	for i := range c.o.Containers {
		ct := &c.o.Containers[i]
		if !state.Managed(ct.Labels, c.inst) {
			continue
		}
		for _, v := range ct.Volumes {
			if _, seen := tenants[v]; !seen && c.dVol[v] == nil && (c.oVol == nil || c.oVol[v] != nil && state.Managed(c.oVol[v].Labels, c.inst)) {
				tenants[v] = ct.Labels[state.LabelTenant]
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tenants)) {
		res := ResourceID{KindVolume, name}
		if c.opts.PruneVolumes && c.oVol != nil {
			c.add(Operation{Resource: res, Action: Delete, Verb: VerbRemoveVolume,
				Cause: causeGone, Tenant: tenants[name], DependsOn: slices.Clone(c.gone)})
			continue
		}
		c.add(Operation{Resource: res, Action: Report, Verb: VerbKeepVolume,
			Cause:  "no longer in config; kept with its data (removing it needs runtime.pruneVolumes and --allow-volume-delete)",
			Tenant: tenants[name]})
	}
}

// removals emits removals of managed containers and volumes that are no
// longer desired, and wires every network removal after the ops that
// detach containers from it.
func (c *computer) removals() {
	for i := range c.o.Containers {
		ct := &c.o.Containers[i]
		if c.dCon[ct.Name] || !state.Managed(ct.Labels, c.inst) {
			continue
		}
		id := c.add(Operation{Resource: ResourceID{KindContainer, ct.Name}, Action: Delete, Verb: VerbRemove,
			Cause: causeGone, Tenant: ct.Labels[state.LabelTenant], LiveID: ct.ID, StopTimeout: DefaultStopTimeout})
		c.gone = append(c.gone, id)
		for _, n := range ct.Networks {
			if _, changing := c.netChange[n]; changing {
				c.detach[n] = append(c.detach[n], id)
			}
		}
	}
	c.oldVolumes()
	for i := range c.ops {
		op := &c.ops[i]
		if op.Resource.Kind == KindNetwork && op.Verb == VerbRemoveNetwork {
			op.DependsOn = append(op.DependsOn, c.detach[op.Resource.Name]...)
		}
	}
}
