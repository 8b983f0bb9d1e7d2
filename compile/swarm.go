package compile

import (
	"cmp"
	"maps"
	"slices"

	"github.com/moat-platform/moat/state"
)

// Update orders of a Swarm rolling update (state.SwarmSpec.UpdateOrder).
const (
	UpdateStartFirst = "start-first"
	UpdateStopFirst  = "stop-first"
)

// overlayOptions are the driver options of every overlay network (LANs,
// link and egress networks). Not attachable: only Swarm services join
// them, so a container started by hand cannot (the engine leaves
// Attachable false).
func (c *compiler) overlayOptions() map[string]string {
	if !c.repo.Platform.Network.Encrypted {
		return nil
	}
	// IPsec between nodes; the overlay driver only tests the key's presence.
	return map[string]string{"encrypted": "true"}
}

// swarmSpec is the Swarm part of a tenant's app or gateway on Swarm (nil
// on one host): the tenant's placement from the platform's registry, and
// the update order its mounts allow.
func (c *compiler) swarmSpec(tenant string, mounts []state.Mount) *state.SwarmSpec {
	if !c.swarm {
		return nil
	}
	s := &state.SwarmSpec{UpdateOrder: updateOrder(mounts)}
	if t := c.tenants[tenant]; t != nil && t.Placement != nil {
		for _, k := range slices.Sorted(maps.Keys(t.Placement.NodeLabels)) {
			s.Placement = append(s.Placement, "node.labels."+k+"=="+t.Placement.NodeLabels[k])
		}
	}
	return s
}

// updateOrder is start-first (a new task runs before the old one stops:
// no moment without a running task) unless the container mounts a
// writable volume: two copies must never write one volume at once.
func updateOrder(mounts []state.Mount) string {
	for _, m := range mounts {
		if m.Type == "volume" && !m.ReadOnly {
			return UpdateStopFirst
		}
	}
	return UpdateStartFirst
}

// secretVersion records the Swarm secret object of one version of a
// tenant's secret (its value's digest) and returns its name. src is the
// value's path in the host's store, which the engine reads once to
// create the object.
func (c *compiler) secretVersion(tenant, secret, digest, src string) string {
	name := Secret(c.instance, tenant, secret, digest)
	if len(name) > MaxSwarmSecretName {
		c.errorf("secret %s/%s: the Swarm secret name %s is longer than %d characters", tenant, secret, name, MaxSwarmSecretName)
	}
	if _, ok := c.secrets[name]; !ok {
		c.secrets[name] = state.SecretSpec{
			Name:   name,
			Source: src,
			Digest: digest,
			Labels: map[string]string{
				state.LabelManagedBy: state.ManagedBy,
				state.LabelInstance:  c.instance,
				state.LabelTenant:    tenant,
				state.LabelKind:      state.KindSecret,
				state.LabelSecret:    secret,
			},
		}
	}
	return name
}

// secretSpecs are the recorded secret versions, sorted by name; nil on
// one host.
func (c *compiler) secretSpecs() []state.SecretSpec {
	if len(c.secrets) == 0 {
		return nil
	}
	out := slices.Collect(maps.Values(c.secrets))
	slices.SortFunc(out, func(a, b state.SecretSpec) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
