package policy

import (
	"strings"

	"github.com/moat-platform/moat/config"
)

// capabilities refuses every capAdd entry that the platform's exception list
// does not give to that exact tenant and app. The list lives in the Platform
// document, which no tenant can write (ownership), so nothing in a tenant
// folder can widen it; the schema already drops ALL capabilities by default.
func (c *checker) capabilities() {
	if c.platform != nil && c.platform.Partial {
		return // the exception list may be what did not decode: no guess
	}
	allowed := map[string]map[string]bool{} // "tenant/app" -> capabilities
	if c.platform != nil {
		for _, ex := range c.platform.Policy.Capabilities {
			key := ex.Tenant + "/" + ex.App
			if allowed[key] == nil {
				allowed[key] = map[string]bool{}
			}
			for _, cp := range ex.Add {
				allowed[key][capName(cp)] = true
			}
		}
	}
	for _, name := range c.order {
		v := c.byTenant[name]
		for _, a := range v.apps {
			for i, cp := range a.CapAdd {
				if !allowed[v.name+"/"+a.Name][capName(cp)] {
					c.add(a.Pos("capAdd", i), "hardening.cap-exception",
						"capability %s is not allowed for app %s of tenant %s; remove it from capAdd, or the platform must list it under policy.capabilities for this app", cp, a.Name, v.name)
				}
			}
		}
	}
}

// capName canonicalises a capability the way Docker accepts it: case
// does not matter and the CAP_ prefix is optional, so "net_admin" and
// "CAP_NET_ADMIN" are the same exception.
func capName(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "CAP_")
}

// minMemory is the smallest memory limit Docker accepts (6 MiB); a smaller
// one validates in the schema's syntax but fails at create time, where the
// tenant would not see why.
const minMemory = 6 << 20

// memoryFloor refuses app and shared service memory limits below minMemory.
func (c *checker) memoryFloor() {
	check := func(m config.Meta, res config.Resources) {
		if n, ok := memory(res.Memory); ok && n < minMemory {
			c.add(m.Pos("resources", "memory"), "hardening.limits",
				"memory %s is below the engine's minimum of 6MiB; give the container at least 6MiB", res.Memory)
		}
	}
	for _, name := range c.order {
		for _, a := range c.byTenant[name].apps {
			check(a.Meta, a.Resources)
		}
	}
	for _, s := range c.serviceDoc {
		check(s.Meta, s.Resources)
	}
}
