package policy

import (
	"regexp"
	"slices"
	"strings"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/config"
)

// swarm holds the rules of a platform on Docker's Swarm mode (engine:
// swarm), and the ones that keep Swarm-only settings off other platforms.
func (c *checker) swarm() {
	p := c.platform
	if p == nil {
		return
	}
	onSwarm := p.Engine == config.EngineSwarm
	c.swarmDriver(p, onSwarm)
	c.swarmPlacement(p, onSwarm)
	if !onSwarm {
		return
	}
	if p.Policy.PublishPorts && present(p.Meta, "policy", "publishPorts") {
		c.add(p.Pos("policy", "publishPorts"), "swarm.publish",
			"a Swarm platform cannot publish host ports: Swarm publishes on every node's 0.0.0.0 through its routing mesh and cannot bind one address; set publishPorts: false")
	}
	c.swarmNames(p)
}

// swarmDriver ties the overlay driver and Swarm together: Swarm services
// join overlay networks only, and moat runs overlays on Swarm only (an
// overlay of standalone containers on one host is not supported).
func (c *checker) swarmDriver(p *config.Platform, onSwarm bool) {
	if p.Partial {
		return // engine or driver may be what did not decode: no guess
	}
	driver := p.Network.Driver
	switch {
	case onSwarm && driver != compile.DriverOverlay:
		at := p.Pos("engine")
		if present(p.Meta, "network", "driver") {
			at = p.Pos("network", "driver")
		}
		c.add(at, "swarm.driver",
			"engine swarm needs network.driver: overlay (Swarm services join overlay networks only); got %s", driver)
	case !onSwarm && driver == compile.DriverOverlay:
		c.add(p.Pos("network", "driver"), "swarm.driver",
			"network.driver overlay needs engine: swarm (overlay networks of standalone containers are not supported); set engine: swarm or use driver bridge")
	}
	if p.Network.Encrypted && driver == compile.DriverBridge && !onSwarm {
		// Weave reports its own (weave.driver), Swarm the driver above.
		c.add(p.Pos("network", "encrypted"), "swarm.driver",
			"network.encrypted is for overlay networks on Swarm (IPsec between nodes); a bridge never leaves the host: remove it or set engine: swarm with driver overlay")
	}
}

// labelSyntax is what a node label key or value may be: Docker's
// constraint syntax splits on operators and spaces, so nothing else can
// be matched exactly.
var labelSyntax = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// swarmPlacement checks each tenant's placement: only on Swarm, and
// labels that a constraint can name.
func (c *checker) swarmPlacement(p *config.Platform, onSwarm bool) {
	for _, t := range c.tenantDocs {
		if t.Placement == nil || t.Partial {
			continue
		}
		if !onSwarm {
			if !p.Partial {
				c.add(t.Pos("placement"), "swarm.placement",
					"placement of tenant %s is for Swarm platforms (engine: swarm in the Platform), and this one runs on %s: remove it", t.Name, p.Engine)
			}
			continue
		}
		labels := t.Placement.NodeLabels
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch v := labels[k]; {
			case !labelSyntax.MatchString(k):
				c.add(t.Src.KeyPos("placement", "nodeLabels", k), "swarm.placement",
					"node label name %q of tenant %s must be letters, digits, '.', '_' or '-'", k, t.Name)
			case !labelSyntax.MatchString(v):
				c.add(t.Pos("placement", "nodeLabels", k), "swarm.placement",
					"node label %s of tenant %s must have a value of letters, digits, '.', '_' or '-' (got %q)", k, t.Name, v)
			}
		}
	}
}

// swarmNames keeps every engine name valid on Swarm: elements are joined
// by "--" (a Swarm name is one DNS label), so no element may contain it,
// and every service and network name must fit in 63 characters, a secret
// name in 64. Each finding points at the name a reader can change.
func (c *checker) swarmNames(p *config.Platform) {
	inst, n := p.Name, compile.SwarmNames
	sep := compile.SepSwarm
	element := func(m config.Meta, what, name string, path ...any) bool {
		if !strings.Contains(name, sep) {
			return true
		}
		if len(path) == 0 {
			path = []any{"name"}
		}
		c.add(m.Pos(path...), "swarm.name",
			"%s name %q contains %q, which separates the elements of engine names on Swarm; rename it", what, name, sep)
		return false
	}
	long := func(m config.Meta, max int, kind, name string, path ...any) {
		if len(name) <= max {
			return
		}
		if len(path) == 0 {
			path = []any{"name"}
		}
		c.add(m.Pos(path...), "swarm.name",
			"the Swarm %s name %s has %d characters, more than %d; shorten the names it is made of", kind, name, len(name), max)
	}
	if !element(p.Meta, "platform", inst) {
		return // every name would carry it: one finding is enough
	}
	for _, s := range c.serviceDoc {
		if element(s.Meta, "shared service", s.Name) {
			long(s.Meta, compile.MaxSwarmName, "service", n.Service(inst, s.Name))
			if s.Egress {
				long(s.Meta, compile.MaxSwarmName, "network", n.Egress(inst, s.Name))
			}
		}
	}
	for _, v := range c.sharedDoc {
		element(v.Meta, "shared volume", v.Name)
	}
	for _, t := range c.tenantDocs {
		if c.tenants[t.Name] != t || !element(t.Meta, "tenant", t.Name) {
			continue
		}
		// A grant of a shared service means a gateway service and a link
		// network once an app uses it.
		grants := make([]string, 0, len(t.Grants))
		for g := range t.Grants {
			if c.services[g] != nil {
				grants = append(grants, g)
			}
		}
		slices.Sort(grants)
		for _, g := range grants {
			long(t.Meta, compile.MaxSwarmName, "gateway service", n.Gateway(inst, t.Name, g), "grants", g)
			long(t.Meta, compile.MaxSwarmName, "link network", n.Link(inst, t.Name, g), "grants", g)
		}
	}
	for _, name := range c.order {
		v := c.byTenant[name]
		if strings.Contains(name, sep) {
			continue // reported at the tenant
		}
		for _, l := range v.lans {
			if element(l.Meta, "LAN", l.Name) {
				long(l.Meta, compile.MaxSwarmName, "network", n.Network(inst, name, l.Name))
			}
		}
		for _, x := range v.volumes {
			element(x.Meta, "volume", x.Name)
		}
		for _, a := range v.apps {
			if element(a.Meta, "app", a.Name) && a.Replicas > 0 {
				long(a.Meta, compile.MaxSwarmName, "service", n.Container(inst, name, a.Name, a.Replicas))
			}
			for i, s := range a.Secrets {
				if element(a.Meta, "secret", s, "secrets", i) {
					version := strings.Repeat("0", compile.SecretVersionLen)
					long(a.Meta, compile.MaxSwarmSecretName, "secret", compile.Secret(inst, name, s, version), "secrets", i)
				}
			}
		}
	}
}
