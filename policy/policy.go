// Package policy holds the rules that cross documents, in Go after CUE
// (CUE evaluates those too slowly at scale): ownership by path, uniqueness,
// addresses, links, access modes, capability exceptions, quotas, secrets,
// ports and the Swarm engine's constraints.
//
// The config repo is untrusted: each tenant edits its own folder. Check
// therefore first decides which documents it believes (ownership), and every
// later rule reads only that trusted view. A Tenant document written inside
// a tenant folder, a Lan that names another tenant, or a folder of an
// unregistered tenant is reported once and then ignored, so it can neither
// grant anything nor make another tenant's checks pass or fail.
//
// Division of labour with package schema: per-document syntax (CIDR syntax,
// mode enums, required fields, DNS-label names) is the schema's. Where a
// value does not parse here, the rule that needs it skips it silently rather
// than repeat the schema's diagnostic under another id.
package policy

import (
	"cmp"
	"slices"
	"strings"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// Check applies every cross-document rule to a decoded repository. It never
// panics on a partial Repo (nil entries, missing Src, empty fields) and runs
// in O(n log n) over the number of documents.
func Check(repo *config.Repo) diag.List {
	if repo == nil {
		repo = &config.Repo{}
	}
	c := &checker{unread: repo.Unread}
	c.ownership(repo)
	c.weave()
	c.uniqueness()
	c.dropPartial()
	c.addresses()
	c.links()
	c.access()
	c.capabilities()
	c.users()
	c.memoryFloor()
	c.engineLimits()
	c.quotas()
	c.secrets()
	c.ports()
	c.swarm()
	return c.out
}

// checker carries the trusted view of a repository between the rule areas.
type checker struct {
	out diag.List

	// unread: owners with a file the loader could not read (Repo.Unread).
	unread map[string]bool

	platform *config.Platform // the one Platform (nil when missing)

	// Platform-owned registries, built from documents outside tenants/.
	tenantDocs []*config.Tenant // every well-placed Tenant, position order
	tenants    map[string]*config.Tenant
	services   map[string]*config.SharedService
	sharedVols map[string]*config.SharedVolume
	serviceDoc []*config.SharedService // well-placed, position order
	sharedDoc  []*config.SharedVolume

	// Tenant-owned documents of registered tenants, keyed by the owning
	// tenant (the folder, never what the document claims).
	byTenant map[string]*tenantView
	order    []string // tenant names of byTenant, sorted
}

// tenantView is what one registered tenant declared in its own folder.
type tenantView struct {
	name   string
	tenant *config.Tenant
	// Every document first, position order; the maps hold the first
	// document of each name (duplicates are reported, then ignored).
	lans    []*config.Lan
	apps    []*config.App
	volumes []*config.Volume
	lan     map[string]*config.Lan
	app     map[string]*config.App
	volume  map[string]*config.Volume
}

func (c *checker) add(pos diag.Pos, rule, format string, args ...any) {
	c.out.Add(pos, rule, format, args...)
}

// dropPartial takes documents that decoded with type errors out of the
// lists the rules judge, and leaves them in the name maps: the schema has
// reported the bad field, the name exists, and a zeroed field (lans
// that did not decode) must not produce a second, false finding.
func (c *checker) dropPartial() {
	for _, name := range c.order {
		v := c.byTenant[name]
		v.lans = slices.DeleteFunc(v.lans, func(l *config.Lan) bool { return l.Partial })
		v.apps = slices.DeleteFunc(v.apps, func(a *config.App) bool { return a.Partial })
		v.volumes = slices.DeleteFunc(v.volumes, func(x *config.Volume) bool { return x.Partial })
	}
	c.serviceDoc = slices.DeleteFunc(c.serviceDoc, func(s *config.SharedService) bool { return s.Partial })
}

// view returns the tenant view for name, creating it.
func (c *checker) view(name string) *tenantView {
	v := c.byTenant[name]
	if v == nil {
		v = &tenantView{name: name, tenant: c.tenants[name]}
		c.byTenant[name] = v
		c.order = append(c.order, name)
	}
	return v
}

// comparePos orders documents by where they were written (file, then index
// in the file). Documents without a source compare equal, so stable sorts
// keep their slice order; that makes "the first one wins" mean "the first
// one in the repository" whatever order Decode produced.
func comparePos(a, b config.Meta) int {
	switch {
	case a.Src == nil && b.Src == nil:
		return 0
	case a.Src == nil:
		return -1
	case b.Src == nil:
		return 1
	}
	return cmp.Or(strings.Compare(a.Src.File, b.Src.File), cmp.Compare(a.Src.Index, b.Src.Index))
}

// sortByPos returns the non-nil entries of s in position order.
func sortByPos[T any](s []*T, meta func(*T) config.Meta) []*T {
	out := make([]*T, 0, len(s))
	for _, x := range s {
		if x != nil {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b *T) int { return comparePos(meta(a), meta(b)) })
	return out
}

// present reports whether the field at path was written in the document.
// Without a source document, every field counts as written.
func present(m config.Meta, path ...any) bool {
	if m.Src == nil || m.Src.Node == nil {
		return true
	}
	return m.Src.Has(path...)
}

// where names a field's position for a message ("platform/tenants.yaml:2:7"),
// by default the document's name.
func where(m config.Meta, path ...any) string {
	if m.Src == nil {
		return "another document"
	}
	if len(path) == 0 {
		path = []any{"name"}
	}
	return m.Pos(path...).String()
}

// Access modes, in the order messages list them.
var validModes = map[string]bool{config.ReadOnly: true, config.WriteOnly: true, config.ReadWrite: true}

// quoteList renders names for a message: "a, b" or "none".
func quoteList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
