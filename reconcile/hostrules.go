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
//
// On Swarm the one rule set is the node's docker_gwbridge's, not a
// managed network's: it is ensured and removed like a LAN's, every
// service operation waits for it (any task with a route out is on that
// bridge), and the plan is refused when the bridge's interface is not
// the one the rules match (checkGatewayBridge).
func (c *computer) hostRules() error {
	fw := c.o.HostFirewall
	if fw == nil {
		return nil
	}
	if err := c.checkGatewayBridge(); err != nil {
		return err
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
		return nil
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
		switch op.Verb {
		case VerbCreate, VerbRecreate, VerbStart, VerbUpdate, VerbConnect:
			// Not in the spec's networks: Swarm attaches the task
			// itself.
			if ensure[state.GatewayBridgeNetwork] != "" {
				nets = append(nets, state.GatewayBridgeNetwork)
			}
		}
		for _, n := range nets {
			if id := ensure[n]; id != "" && !slices.Contains(op.DependsOn, id) {
				op.DependsOn = append(op.DependsOn, id)
			}
		}
	}
	return nil
}

// checkGatewayBridge refuses a Swarm plan with host protection when the
// node's docker_gwbridge would not be matched by its rules: the rules
// would exist and protect nothing, while every task with a route out can
// reach every port of the host through the bridge's gateway. The bridge
// can only be given its name before the node joins a Swarm, so moat
// cannot fix it; the operator can, or can turn host protection off.
// Refused before anything changes, since plan and apply both compute.
func (c *computer) checkGatewayBridge() error {
	i := slices.IndexFunc(c.d.HostRules, func(h state.HostRulesSpec) bool { return h.Network == state.GatewayBridgeNetwork })
	if i < 0 {
		return nil
	}
	want := c.d.HostRules[i].Bridge
	gb := c.o.GatewayBridge
	var found string
	switch {
	case gb == nil:
		found = "the node moat talks to has no " + state.GatewayBridgeNetwork + " network (or the engine did not report it)"
	case gb.Bridge != want:
		iface := gb.Bridge
		if iface == "" {
			iface = gb.Name // Docker's default interface name is the network's
		}
		found = fmt.Sprintf("%s's host interface is %s, not %s", state.GatewayBridgeNetwork, iface, want)
	case gb.ICC != "false":
		found = fmt.Sprintf("%s lets containers talk to each other (com.docker.network.bridge.enable_icc=%q): tasks of different tenants would meet on it", state.GatewayBridgeNetwork, gb.ICC)
	default:
		return nil
	}
	return fmt.Errorf("reconcile: host protection on Swarm: %s, so moat's rules would not protect the host from tasks with a route out. "+
		"Fix: on every node, before `docker swarm init` or `docker swarm join`, run "+
		"`docker network create --driver bridge -o com.docker.network.bridge.name=%s -o com.docker.network.bridge.enable_icc=false "+
		"-o com.docker.network.bridge.enable_ip_masquerade=true %s` (docs/SWARM.md, Host protection), "+
		"or set network.hostProtection: false in the platform. Nothing was changed",
		found, want, state.GatewayBridgeNetwork)
}

// planned reports whether an operation of that id was emitted.
func (c *computer) planned(id string) bool {
	return slices.ContainsFunc(c.ops, func(op Operation) bool { return op.ID == id })
}
