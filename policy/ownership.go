package policy

import (
	"slices"
	"strings"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// zeroPos is a whole-repository position (no file).
var zeroPos diag.Pos

// reservedTenant may not name a tenant: platform objects are named
// <instance>.shared.<name>, tenant objects <instance>.<tenant>.<name>, so a
// tenant called "shared" would share a namespace with the platform.
const reservedTenant = "shared"

// inTenants reports whether a document sits anywhere under tenants/, the
// tree that tenants edit.
func inTenants(m config.Meta) bool {
	return m.Src != nil && strings.HasPrefix(m.Src.File, "tenants/")
}

// ownership decides which documents are believed and builds the trusted
// view. Platform kinds count only from outside tenants/; tenant kinds only
// from tenants/<t>/ of a registered tenant, and always as tenant <t> (the
// folder), never as whatever their tenant: field says.
func (c *checker) ownership(repo *config.Repo) {
	c.tenants = map[string]*config.Tenant{}
	c.services = map[string]*config.SharedService{}
	c.sharedVols = map[string]*config.SharedVolume{}
	c.byTenant = map[string]*tenantView{}

	c.platforms(repo)

	for _, t := range sortByPos(repo.Tenants, metaTenant) {
		if c.platformKindPlaced(t.Meta) {
			c.tenantDocs = append(c.tenantDocs, t)
		}
	}
	for _, s := range sortByPos(repo.Services, metaService) {
		if c.platformKindPlaced(s.Meta) {
			c.serviceDoc = append(c.serviceDoc, s)
		}
	}
	for _, v := range sortByPos(repo.SharedVolumes, metaSharedVol) {
		if c.platformKindPlaced(v.Meta) {
			c.sharedDoc = append(c.sharedDoc, v)
		}
	}
	// Registered tenants: the first Tenant document of each name. Later ones
	// are reported by uniqueness and never consulted.
	for _, t := range c.tenantDocs {
		if t.Name != "" && c.tenants[t.Name] == nil {
			c.tenants[t.Name] = t
		}
	}

	// Tenant kinds. The first document of an unregistered folder carries
	// the diagnostic; the rest of that folder is ignored silently.
	unregistered := map[string]config.Meta{}
	place := func(m config.Meta, field string) (string, bool) {
		owner, ok := c.tenantKindOwner(m, field)
		if !ok {
			return "", false
		}
		if c.tenants[owner] == nil {
			if first, seen := unregistered[owner]; !seen || comparePos(m, first) < 0 {
				unregistered[owner] = m
			}
			return "", false
		}
		return owner, true
	}
	for _, l := range sortByPos(repo.Lans, metaLan) {
		if owner, ok := place(l.Meta, l.Tenant); ok {
			v := c.view(owner)
			v.lans = append(v.lans, l)
		}
	}
	for _, a := range sortByPos(repo.Apps, metaApp) {
		if owner, ok := place(a.Meta, a.Tenant); ok {
			v := c.view(owner)
			v.apps = append(v.apps, a)
		}
	}
	for _, vol := range sortByPos(repo.Volumes, metaVolume) {
		if owner, ok := place(vol.Meta, vol.Tenant); ok {
			v := c.view(owner)
			v.volumes = append(v.volumes, vol)
		}
	}
	for owner, m := range unregistered {
		c.add(m.Pos(), "ownership.unregistered-tenant",
			"folder tenants/%s/ belongs to no registered tenant; the platform must add a Tenant document named %q outside tenants/, or remove the folder", owner, owner)
	}
	slices.Sort(c.order)
}

// platforms picks the one Platform document.
func (c *checker) platforms(repo *config.Repo) {
	all := platformDocs(repo)
	var placed []*config.Platform
	for _, p := range sortByPos(all, metaPlatform) {
		if c.platformKindPlaced(p.Meta) {
			placed = append(placed, p)
		}
	}
	if len(placed) == 0 {
		c.add(zeroPos, "ownership.platform",
			"the repository has no Platform document; add one outside tenants/ (for example platform.yaml with kind: Platform)")
		return
	}
	c.platform = placed[0]
	for _, p := range placed[1:] {
		c.add(p.Pos("kind"), "ownership.platform",
			"a second Platform document; the first is at %s: keep exactly one", where(c.platform.Meta))
	}
}

// platformKindPlaced reports a platform kind written under tenants/ and
// says whether the document may be believed. This is how a Tenant, a grant
// or a quota written inside a tenant's own folder is refused.
func (c *checker) platformKindPlaced(m config.Meta) bool {
	if !inTenants(m) {
		return true
	}
	c.add(m.Pos("kind"), "ownership.platform-kind-in-tenant",
		"kind %s is platform-owned and may not appear under tenants/; a tenant folder holds only Lan, App and Volume documents", m.Kind)
	return false
}

// tenantKindOwner returns the tenant that owns a Lan, App or Volume, or
// false after reporting why the document cannot be believed. field is the
// document's own tenant: value (Decode fills it from the folder when empty).
func (c *checker) tenantKindOwner(m config.Meta, field string) (string, bool) {
	if m.Src == nil {
		// Built in Go (tests, tools): the field is all there is.
		return field, field != ""
	}
	if !inTenants(m) {
		c.add(m.Pos("kind"), "ownership.tenant-kind-outside",
			"kind %s belongs to a tenant and must live under tenants/<tenant>/; move it into its tenant's folder", m.Kind)
		return "", false
	}
	folder := m.Src.Tenant
	if folder == "" {
		folder = config.TenantOf(m.Src.File)
	}
	if folder == "" {
		c.add(m.Pos("kind"), "ownership.no-tenant-folder",
			"file %s lies directly in tenants/; move it into the folder of the tenant it belongs to (tenants/<tenant>/)", m.Src.File)
		return "", false
	}
	if field != "" && field != folder {
		c.add(m.Pos("tenant"), "ownership.other-tenant",
			"a document in tenants/%s/ may describe only tenant %s, not %q; remove the tenant field or set it to %s", folder, folder, field, folder)
		return "", false
	}
	return folder, true
}

// uniqueness reports a second document of the same name and kind in one
// scope, pointing at the second and naming the first. Only the first is kept
// in the name maps the later rules consult.
func (c *checker) uniqueness() {
	for _, t := range c.tenantDocs {
		if t.Name == "" {
			continue
		}
		if first := c.tenants[t.Name]; first != t {
			c.add(t.Pos("name"), "uniqueness.duplicate",
				"tenant %q is already registered at %s; remove or rename one", t.Name, where(first.Meta))
		}
		if t.Name == reservedTenant {
			c.add(t.Pos("name"), "uniqueness.reserved-name",
				"tenant name %q is reserved for platform objects; choose another name", t.Name)
		}
	}
	// Shared services and shared volumes share one namespace: a grant
	// names either.
	firstShared := map[string]config.Meta{}
	sharedName := func(m config.Meta) bool {
		if m.Name == "" {
			return false
		}
		if first, dup := firstShared[m.Name]; dup {
			c.add(m.Pos("name"), "uniqueness.duplicate",
				"shared name %q is already used by the %s at %s; services and shared volumes share one namespace, rename one", m.Name, first.Kind, where(first))
			return false
		}
		firstShared[m.Name] = m
		return true
	}
	for _, s := range c.serviceDoc {
		if sharedName(s.Meta) {
			c.services[s.Name] = s
		}
	}
	for _, v := range c.sharedDoc {
		if sharedName(v.Meta) {
			c.sharedVols[v.Name] = v
		}
	}
	for _, name := range c.order {
		v := c.byTenant[name]
		v.lans, v.lan = uniqueIn(c, v.lans, metaLan)
		v.apps, v.app = uniqueIn(c, v.apps, metaApp)
		v.volumes, v.volume = uniqueIn(c, v.volumes, metaVolume)
	}
}

// uniqueIn maps the names of one kind in one tenant to their first
// document, reporting every later one. docs are in position order; the
// returned slice keeps only the first of each name (a nameless document is
// the schema's to report and is dropped too), so a duplicate cannot also
// trip the address, link or quota rules.
func uniqueIn[T any](c *checker, docs []*T, meta func(*T) config.Meta) ([]*T, map[string]*T) {
	byName := make(map[string]*T, len(docs))
	kept := docs[:0:0]
	for _, d := range docs {
		m := meta(d)
		if m.Name == "" {
			continue
		}
		if first, dup := byName[m.Name]; dup {
			c.add(m.Pos("name"), "uniqueness.duplicate",
				"%s %q is already defined at %s; remove or rename one", m.Kind, m.Name, where(meta(first)))
			continue
		}
		byName[m.Name] = d
		kept = append(kept, d)
	}
	return kept, byName
}

func metaPlatform(p *config.Platform) config.Meta     { return p.Meta }
func metaTenant(t *config.Tenant) config.Meta         { return t.Meta }
func metaService(s *config.SharedService) config.Meta { return s.Meta }
func metaSharedVol(v *config.SharedVolume) config.Meta {
	return v.Meta
}
func metaLan(l *config.Lan) config.Meta       { return l.Meta }
func metaApp(a *config.App) config.Meta       { return a.Meta }
func metaVolume(v *config.Volume) config.Meta { return v.Meta }
