package policy

import (
	"strings"

	"github.com/moat-platform/moat/config"
)

// capabilities refuses every capability exception, on both sides: each
// entry of the platform's policy.capabilities and each capAdd of an app.
// moat runs every app as its tenant's non-root uid with no-new-privileges;
// for such a process the kernel clears the effective and permitted sets at
// exec and no-new-privileges stops file capabilities from raising them, so
// an added capability only widens the bounding set and CapEff stays 0 (seen
// on the engine: CapEff 0000000000000000, CapBnd 0000000000000400). Running
// the app as root instead would break the non-root rule, so an exception is
// refused with the reason rather than accepted and silently ineffective.
func (c *checker) capabilities() {
	const why = "it cannot take effect: moat runs every app as its tenant's non-root uid under no-new-privileges, where an added capability never reaches the effective set (CapEff stays 0)"
	if c.platform != nil && !c.platform.Partial {
		for i, ex := range c.platform.Policy.Capabilities {
			if len(ex.Add) == 0 {
				continue
			}
			c.add(c.platform.Pos("policy", "capabilities", i), "hardening.cap-exception",
				"capability exception %v for app %s of tenant %s is refused: %s; remove it from policy.capabilities", ex.Add, ex.App, ex.Tenant, why)
		}
	}
	for _, name := range c.order {
		v := c.byTenant[name]
		for _, a := range v.apps {
			for i, cp := range a.CapAdd {
				c.add(a.Pos("capAdd", i), "hardening.cap-exception",
					"capability %s for app %s of tenant %s is refused: %s; remove it from capAdd (to serve a port below 1024, listen on a port >= 1024 and publish or map that one, or lower the engine's net.ipv4.ip_unprivileged_port_start)", capName(cp), a.Name, v.name, why)
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
