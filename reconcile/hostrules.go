package reconcile

import (
	"fmt"
	"slices"

	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// hostRules plans the host protection of each tenant LAN: ensure the rules
// of every desired rule set that is missing or differs, remove those of
// networks no longer protected (after the network is gone), and make every
// container operation on a LAN wait for that LAN's rules, so that no
// container runs on a LAN before its protection is in place.
//
// Nothing is planned when the firewall was not observed (a snapshot
// without it): the plan cannot know, and says nothing rather than guess.
func (c *computer) hostRules() {
	fw := c.o.HostFirewall
	if fw == nil {
		return
	}
	ensure := map[string]string{} // network -> op id
	n := len(firewall.Rules(c.inst, state.HostRulesSpec{}))
	for i := range c.d.HostRules {
		want := &c.d.HostRules[i]
		have, found := fw.Rules[want.Network]
		var cause string
		action := Update
		switch {
		case fw.Error != "":
			cause, action = "cannot read the host firewall: "+fw.Error, Create
		case !found:
			cause, action = causeMissing, Create
		case have.Count != n:
			cause = fmt.Sprintf("%d of %d rules found (changed by hand)", have.Count, n)
		case !slices.Equal(have.Hashes, []string{want.Hash}):
			cause = "rules differ from the config (changed by hand, or an older rule set)"
		case !fw.Jumps:
			cause = "the jumps from INPUT and DOCKER-USER into moat's chains are missing"
		default:
			continue
		}
		spec := *want
		op := Operation{Resource: ResourceID{KindHostRules, want.Network}, Action: action, Verb: VerbEnsureRules,
			Cause: cause, Tenant: want.Tenant, HostRulesSpec: &spec}
		ensure[want.Network] = c.add(op)
	}
	if fw.Error == "" {
		desired := map[string]bool{}
		for i := range c.d.HostRules {
			desired[c.d.HostRules[i].Network] = true
		}
		for network := range fw.Rules {
			if network == "" || desired[network] {
				continue
			}
			op := Operation{Resource: ResourceID{KindHostRules, network}, Action: Delete, Verb: VerbRemoveRules,
				Cause: causeGone}
			if c.dNet[network] != nil {
				op.Cause = "host protection is off"
			}
			if have := c.oNet[network]; have != nil {
				op.Tenant = have.Labels[state.LabelTenant]
				// The LAN goes first: its containers stay protected to
				// the end.
				if id := OpID(VerbRemoveNetwork, ResourceID{KindNetwork, network}, ""); c.planned(id) {
					op.DependsOn = []string{id}
				}
			}
			c.add(op)
		}
	}
	if len(ensure) == 0 {
		return
	}
	specs := map[string]*state.ContainerSpec{}
	for i := range c.d.Containers {
		specs[c.d.Containers[i].Name] = &c.d.Containers[i]
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Resource.Kind != KindContainer {
			continue
		}
		var nets []string
		switch op.Verb {
		case VerbCreate, VerbRecreate, VerbStart:
			if s := specs[op.Resource.Name]; s != nil {
				for _, ep := range s.Networks {
					nets = append(nets, ep.Network)
				}
			}
		case VerbConnect:
			nets = []string{op.Network}
		}
		for _, n := range nets {
			if id := ensure[n]; id != "" && !slices.Contains(op.DependsOn, id) {
				op.DependsOn = append(op.DependsOn, id)
			}
		}
	}
}

// planned reports whether an operation of that id was emitted.
func (c *computer) planned(id string) bool {
	return slices.ContainsFunc(c.ops, func(op Operation) bool { return op.ID == id })
}
