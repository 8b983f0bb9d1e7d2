package policy

import (
	"strconv"
	"strings"

	"github.com/moat-platform/moat/diag"
)

// users checks the per-tenant identities. Every app of a tenant runs as the
// tenant's uid:gid (Tenant.user, or its default derived from the name),
// which owns the tenant's volumes and secrets; so two tenants with one uid,
// or one gid, could write each other's volumes and read each other's
// secrets, and a tenant sharing the platform runtime user's ids would share
// them with every shared service. An app's own `user` must be its
// tenant's: any other id would not own the tenant's volumes and secrets, or
// worse, could be another tenant's (there is no exception for it).
func (c *checker) users() {
	type owner struct {
		tenant  string
		derived bool
	}
	uids := map[string]owner{}
	gids := map[string]owner{}
	var rtUID, rtGID string
	if c.platform != nil {
		rtUID, rtGID, _ = splitUser(c.platform.Runtime.User)
	}
	for _, t := range c.tenantDocs {
		if c.tenants[t.Name] != t {
			continue // a duplicate, already reported
		}
		uid, gid, ok := splitUser(t.User)
		if !ok {
			continue // the schema reports it
		}
		derived := t.Src == nil || !t.Src.Has("user")
		pos := t.Pos("user")
		how := func(o owner) string {
			if o.derived {
				return " (derived from its name: set `user` explicitly on one of them)"
			}
			return ""
		}
		if derived {
			pos = t.Pos("name")
		}
		for _, id := range []struct {
			kind, id, rt string
			seen         map[string]owner
		}{{"uid", uid, rtUID, uids}, {"gid", gid, rtGID, gids}} {
			if prev, dup := id.seen[id.id]; dup {
				note := how(owner{derived: derived || prev.derived})
				c.add(pos, "hardening.tenant-user",
					"tenant %s has %s %s, which tenant %s has too%s; give every tenant its own uid and gid, or they can write each other's volumes and read each other's secrets",
					t.Name, id.kind, id.id, prev.tenant, note)
				continue
			}
			id.seen[id.id] = owner{tenant: t.Name, derived: derived}
			if id.id == id.rt {
				c.add(pos, "hardening.tenant-user",
					"tenant %s has %s %s, which is the platform runtime user's (shared services run as it); choose another `user` for the tenant or change runtime.user",
					t.Name, id.kind, id.id)
			}
		}
	}

	for _, name := range c.order {
		v := c.byTenant[name]
		if v.tenant == nil {
			continue
		}
		for _, a := range v.apps {
			if a.User == "" || a.User == v.tenant.User {
				continue
			}
			if _, _, ok := splitUser(a.User); !ok {
				continue // the schema reports it
			}
			c.add(a.Pos("user"), "hardening.app-user",
				"app %s runs as %s, but the apps of tenant %s run as %s, which owns the tenant's volumes and secrets; remove `user` (or set it to %s)",
				a.Name, a.User, v.name, v.tenant.User, v.tenant.User)
		}
	}
}

// splitUser parses a numeric "uid:gid" into canonical decimal strings
// ("007" and "7" are one id to the kernel); ids over 2^31-1 are the
// schema's to report (hardening.user), not a second finding here.
func splitUser(s string) (uid, gid string, ok bool) {
	u, g, found := strings.Cut(s, ":")
	if !found {
		return "", "", false
	}
	un, err1 := strconv.ParseUint(u, 10, 31)
	gn, err2 := strconv.ParseUint(g, 10, 31)
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return strconv.FormatUint(un, 10), strconv.FormatUint(gn, 10), true
}

var userRules = []diag.Rule{
	{ID: "hardening.tenant-user", Area: "hardening",
		Summary: "two tenants with the same uid or gid (Tenant user, or the default derived from the name), or a tenant with the platform runtime user's uid or gid",
		Fix:     "give every tenant its own user: \"uid:gid\" in the tenant registry, distinct from runtime.user"},
	{ID: "hardening.app-user", Area: "hardening",
		Summary: "an app sets a user other than its tenant's uid:gid (apps run as their tenant's user, which owns its volumes and secrets)",
		Fix:     "remove user from the app"},
}

func init() { diag.Register(userRules...) }
