package policy

import (
	"slices"
	"strings"

	"github.com/moat-platform/moat/config"
)

// secrets refuses a secret listed twice by one app: both would be mounted
// at the same path. The secret's value is never read here.
func (c *checker) secrets() {
	for _, name := range c.order {
		for _, a := range c.byTenant[name].apps {
			list := a.Secrets
			first := newSeen(len(list), func(i int) string { return list[i] })
			for i, s := range list {
				if j, dup := first.first(i); dup {
					c.add(a.Pos("secrets", i), "secrets.duplicate",
						"secret %q is already listed in secrets[%d] of app %s; list each secret once", s, j, a.Name)
				}
			}
		}
	}
}

// hostPort is one published host port; every published port binds the
// platform's one publishAddress, so ports conflict across all tenants.
type hostPort struct {
	port  int
	proto string
}

// portUse remembers who published a host port first.
type portUse struct {
	tenant string
	app    *config.App
	index  int
}

// ports refuses published ports where the platform does not allow them
// (on Swarm never: swarm.publish), and a host port published twice. The first app in repository order keeps
// the port. When the other publisher belongs to another tenant the message
// does not name it: a tenant learns only that the port is taken.
func (c *checker) ports() {
	allowed := c.platform != nil && c.platform.Policy.PublishPorts
	if c.platform != nil && c.platform.Partial {
		allowed = true // publishPorts may be what did not decode: no guess
	}
	var apps []portUse // index unused here
	for _, name := range c.order {
		for _, a := range c.byTenant[name].apps {
			if len(a.Ports) > 0 {
				apps = append(apps, portUse{tenant: name, app: a})
			}
		}
	}
	slices.SortStableFunc(apps, func(x, y portUse) int { return comparePos(x.app.Meta, y.app.Meta) })
	taken := map[hostPort]portUse{}
	onSwarm := c.platform != nil && c.platform.Engine == config.EngineSwarm
	for _, pu := range apps {
		a, tenant := pu.app, pu.tenant
		for i, p := range a.Ports {
			if onSwarm {
				// Whatever publishPorts says (swarm.publish reports it too).
				c.add(a.Pos("ports", i), "swarm.publish",
					"the platform runs on Swarm, which cannot publish a port on one host address (its routing mesh publishes on every node's 0.0.0.0); remove ports from app %s", a.Name)
				continue
			}
			if !allowed {
				c.add(a.Pos("ports", i), "ports.not-allowed",
					"the platform does not allow published ports (policy.publishPorts is false); remove ports from app %s", a.Name)
				continue
			}
			if p.Host <= 0 {
				continue // no fixed host port: nothing to collide
			}
			key := hostPort{p.Host, strings.ToLower(p.Protocol)}
			if key.proto == "" {
				key.proto = config.DefaultPortProtocol
			}
			// Positions are looked up only when reported: the clean path
			// stays map lookups.
			if replicas(a) > 1 {
				c.add(a.Pos("ports", i, "host"), "ports.conflict",
					"app %s has %d replicas and each would publish host port %d/%s; use one replica or remove the host port", a.Name, replicas(a), key.port, key.proto)
			}
			first, used := taken[key]
			switch {
			case !used:
				taken[key] = portUse{tenant, a, i}
			case first.tenant == tenant:
				c.add(a.Pos("ports", i, "host"), "ports.conflict",
					"host port %d/%s is already published by app %s at %s; choose another host port",
					key.port, key.proto, first.app.Name, first.app.Pos("ports", first.index, "host"))
			default:
				c.add(a.Pos("ports", i, "host"), "ports.conflict",
					"host port %d/%s is already published on this host by another tenant; choose another host port", key.port, key.proto)
			}
		}
	}
}
