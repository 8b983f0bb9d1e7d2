package policy

import (
	"slices"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// links checks what an app points at inside its own tenant: LANs, apps it
// talks to, and named volumes. Every lookup is in the owning tenant's maps
// only, so a name that exists in another tenant fails exactly like a name
// that exists nowhere, and no message says which one it was.
//
// An app with no LAN at all is allowed: SECURITY.md asks that containers
// that need no network get none. It may then neither talk to apps nor use
// shared services, since both are reached over a LAN.
func (c *checker) links() {
	for _, name := range c.order {
		v := c.byTenant[name]
		for _, a := range v.apps {
			lans := newSeen(len(a.Lans), func(i int) string { return a.Lans[i] })
			for i, ln := range a.Lans {
				if j, dup := lans.first(i); dup {
					c.add(a.Pos("lans", i), "uniqueness.duplicate",
						"LAN %s is already listed in lans[%d] of app %s; list each LAN once", ln, j, a.Name)
					continue
				}
				if v.lan[ln] == nil && !c.unread[v.name] {
					c.add(a.Pos("lans", i), "links.unknown-lan",
						"LAN %q is not a LAN of tenant %s; declare it with kind: Lan in tenants/%s/ or remove it from lans", ln, v.name, v.name)
				}
			}
			c.mountPaths(a)
			c.serviceName(v, a)
		}
		for _, a := range v.apps {
			for i, to := range a.TalksTo {
				peer := v.app[to]
				if peer == nil {
					if c.unread[v.name] {
						continue // it may be in the file that could not be read
					}
					c.add(a.Pos("talksTo", i), "links.unknown-app",
						"app %q is not an app of tenant %s; talksTo may name only apps in the same tenant folder", to, v.name)
					continue
				}
				if !peer.Partial && !shareLan(v, a.Lans, peer.Lans) {
					c.add(a.Pos("talksTo", i), "links.no-shared-lan",
						"apps %s and %s share no LAN, so %s cannot reach %s; put both on a common LAN or remove %s from talksTo", a.Name, to, a.Name, to, to)
				}
			}
			for k, m := range a.Volumes {
				if m.Volume != "" && v.volume[m.Volume] == nil && !c.unread[v.name] {
					c.add(a.Pos("volumes", k, "volume"), "links.unknown-volume",
						"volume %q is not a Volume of tenant %s; declare it with kind: Volume in tenants/%s/ or remove the mount", m.Volume, v.name, v.name)
				}
			}
			if len(a.Uses) > 0 && len(a.Lans) == 0 {
				c.add(a.Pos("uses"), "links.uses-without-lan",
					"app %s uses shared services but joins no LAN, and services are reached over a LAN; add a LAN to lans or remove uses", a.Name)
			}
		}
	}
}

// shareLan reports whether two apps' lans lists have a LAN of tenant v in
// common (an unknown name joins nothing, so it connects nothing).
func shareLan(v *tenantView, a, b []string) bool {
	if len(a)*len(b) <= smallList*smallList {
		for _, x := range a {
			if v.lan[x] != nil && slices.Contains(b, x) {
				return true
			}
		}
		return false
	}
	set := make(map[string]bool, len(a))
	for _, x := range a {
		set[x] = true
	}
	for _, y := range b {
		if set[y] && v.lan[y] != nil {
			return true
		}
	}
	return false
}

// access checks grants (platform side) and their use (tenant side). A mode
// is granted only when the grant lists it literally: read-write does not
// imply read-only, since each mode is a different gateway behaviour and the
// platform should say what it means.
func (c *checker) access() {
	for _, t := range c.tenantDocs {
		if t.Name == "" || c.tenants[t.Name] != t {
			continue
		}
		for _, svc := range sortedKeys(t.Grants) {
			var offers []string
			switch {
			case c.services[svc] != nil:
				if c.services[svc].Partial {
					continue
				}
				offers = c.services[svc].Offers
			case c.sharedVols[svc] != nil:
				offers = c.sharedVols[svc].Offers
			case c.unread[""]:
				continue // it may be in the file that could not be read
			default:
				c.add(keyPos(t.Meta, "grants", svc), "access.grant-unknown",
					"tenant %s is granted %q, which is neither a SharedService nor a SharedVolume; fix the name or remove the grant", t.Name, svc)
				continue
			}
			for i, mode := range t.Grants[svc] {
				if validModes[mode] && !slices.Contains(offers, mode) {
					c.add(t.Pos("grants", svc, i), "access.grant-not-offered",
						"tenant %s is granted %s in mode %s, but %s offers only %s; grant an offered mode", t.Name, svc, mode, svc, quoteList(offers))
				}
			}
		}
	}
	for _, name := range c.order {
		v := c.byTenant[name]
		for _, a := range v.apps {
			c.uses(v, a)
			for k, m := range a.Volumes {
				if m.Shared == "" {
					continue
				}
				if c.sharedVols[m.Shared] == nil {
					if c.unread[""] {
						continue
					}
					c.add(a.Pos("volumes", k, "shared"), "access.unknown-shared-volume",
						"%q is not a shared volume of the platform; fix the name or remove the mount", m.Shared)
					continue
				}
				if !partialTenant(v) && !granted(v.tenant, m.Shared, config.ReadOnly) {
					c.add(a.Pos("volumes", k, "shared"), "access.not-granted",
						"tenant %s has no read-only grant for shared volume %s; remove the mount or ask the platform for the grant", v.name, m.Shared)
				}
			}
		}
	}
}

// uses checks one app's shared service uses.
func (c *checker) uses(v *tenantView, a *config.App) {
	first := newSeen(len(a.Uses), func(i int) string { return a.Uses[i].Service })
	for i, u := range a.Uses {
		j, dup := first.first(i)
		if u.Service == "" {
			continue // required field: the schema reports it
		}
		if dup {
			c.add(a.Pos("uses", i, "service"), "access.duplicate-use",
				"app %s already uses %s (uses[%d]); keep one entry per service", a.Name, u.Service, j)
			continue
		}
		if c.services[u.Service] == nil {
			if c.unread[""] {
				continue // it may be in the file that could not be read
			}
			hint := "fix the name or remove it"
			if c.sharedVols[u.Service] != nil {
				hint = "it is a shared volume: mount it under volumes with shared: instead"
			}
			c.add(a.Pos("uses", i, "service"), "access.unknown-service",
				"%q is not a shared service of the platform; %s", u.Service, hint)
			continue
		}
		if validModes[u.Mode] && !partialTenant(v) && !granted(v.tenant, u.Service, u.Mode) {
			c.add(a.Pos("uses", i, "mode"), "access.not-granted",
				"tenant %s is not granted %s in mode %s (granted: %s); use a granted mode or ask the platform for the grant",
				v.name, u.Service, u.Mode, quoteList(grantOf(v.tenant, u.Service)))
		}
	}
}

// partialTenant reports a tenant whose registry entry decoded with type
// errors: its grants may be the field that failed.
func partialTenant(v *tenantView) bool { return v.tenant != nil && v.tenant.Partial }

func grantOf(t *config.Tenant, name string) []string {
	if t == nil {
		return nil
	}
	return t.Grants[name]
}

func granted(t *config.Tenant, name, mode string) bool {
	return slices.Contains(grantOf(t, name), mode)
}

// keyPos points at a mapping key (KeyPos) when the document is known.
func keyPos(m config.Meta, path ...any) diag.Pos {
	if m.Src == nil {
		return diag.Pos{}
	}
	return m.Src.KeyPos(path...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// secretsTarget is where compile mounts secrets, one file per name
// (compile.SecretsTarget; policy does not import compile).
const secretsTarget = "/run/secrets/"

// mountPaths refuses two mounts at one path in one app: two volumes, or a
// volume at the path of one of its secrets. The engine cannot mount both,
// and compile refuses the whole revision.
func (c *checker) mountPaths(a *config.App) {
	n := len(a.Volumes) + len(a.Secrets)
	if n < 2 {
		return
	}
	paths := make([]string, 0, n)
	for _, m := range a.Volumes {
		paths = append(paths, m.Path)
	}
	for _, s := range a.Secrets {
		paths = append(paths, secretsTarget+s)
	}
	first := newSeen(len(paths), func(i int) string { return paths[i] })
	for i := range paths {
		j, dup := first.first(i)
		if !dup || paths[i] == "" {
			continue
		}
		if i >= len(a.Volumes) {
			// A secret listed twice is secrets.duplicate; a secret at a
			// volume's path is reported at the volume.
			if j < len(a.Volumes) {
				c.add(a.Pos("volumes", j, "path"), "uniqueness.duplicate",
					"secret %s is mounted at %s, where app %s also mounts a volume; choose another path for the volume", a.Secrets[i-len(a.Volumes)], paths[i], a.Name)
			}
			continue
		}
		c.add(a.Pos("volumes", i, "path"), "uniqueness.duplicate",
			"path %s is already a mount point of app %s (volumes[%d]); mount each volume at its own path", paths[i], a.Name, j)
	}
}

// serviceName refuses an app named like a shared service its tenant is
// granted: the service is attached to every LAN of the tenant under its
// name, and two containers answering to one name would share its traffic.
// An app with no LAN has no name on any network.
func (c *checker) serviceName(v *tenantView, a *config.App) {
	if len(a.Lans) == 0 || c.services[a.Name] == nil || len(grantOf(v.tenant, a.Name)) == 0 {
		return
	}
	c.add(a.Pos("name"), "uniqueness.reserved-name",
		"app name %s is the name of shared service %s on tenant %s's LANs; rename the app", a.Name, a.Name, v.name)
}
