package config

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/moat-platform/moat/diag"
	"gopkg.in/yaml.v3"
)

// Decode turns loaded documents into the typed Repo, applying defaults
// (see defaults.go). A document of unknown kind is skipped silently; one
// with a value of the wrong type (a list where a string belongs) is kept
// with that field zero and marked Partial. The schema checks every document
// and reports why, with a rule id, so Decode adds no second message. Decode returns no
// diagnostics today; the return value keeps room for a rule that needs the
// typed model.
//
// Every slice of the Repo is sorted by (tenant, name), then by file
// position, so everything downstream is deterministic whatever order the
// files were found in.
func Decode(docs []*Document) (*Repo, diag.List) {
	repo := &Repo{}
	for _, doc := range docs {
		if doc == nil || doc.Node == nil {
			continue
		}
		switch doc.Kind {
		case KindPlatform:
			if v, ok := decodeAs[Platform](doc); ok {
				repo.Platforms = append(repo.Platforms, v)
			}
		case KindTenant:
			if v, ok := decodeAs[Tenant](doc); ok {
				repo.Tenants = append(repo.Tenants, v)
			}
		case KindSharedService:
			if v, ok := decodeAs[SharedService](doc); ok {
				repo.Services = append(repo.Services, v)
			}
		case KindSharedVolume:
			if v, ok := decodeAs[SharedVolume](doc); ok {
				repo.SharedVolumes = append(repo.SharedVolumes, v)
			}
		case KindLan:
			if v, ok := decodeAs[Lan](doc); ok {
				v.Tenant = ownerOf(v.Tenant, doc)
				repo.Lans = append(repo.Lans, v)
			}
		case KindApp:
			if v, ok := decodeAs[App](doc); ok {
				v.Tenant = ownerOf(v.Tenant, doc)
				repo.Apps = append(repo.Apps, v)
			}
		case KindVolume:
			if v, ok := decodeAs[Volume](doc); ok {
				v.Tenant = ownerOf(v.Tenant, doc)
				repo.Volumes = append(repo.Volumes, v)
			}
		}
	}
	applyDefaults(repo)

	// Platforms keep document order: "the first" is the first in the
	// repository, and the extras are reported in that order.
	sortByPos(repo.Platforms, func(p *Platform) Meta { return p.Meta })
	if len(repo.Platforms) > 0 {
		repo.Platform = repo.Platforms[0]
	}
	sortBy(repo.Tenants, func(t *Tenant) (string, Meta) { return "", t.Meta })
	sortBy(repo.Services, func(s *SharedService) (string, Meta) { return "", s.Meta })
	sortBy(repo.SharedVolumes, func(v *SharedVolume) (string, Meta) { return "", v.Meta })
	sortBy(repo.Lans, func(l *Lan) (string, Meta) { return l.Tenant, l.Meta })
	sortBy(repo.Volumes, func(v *Volume) (string, Meta) { return v.Tenant, v.Meta })
	sortBy(repo.Apps, func(a *App) (string, Meta) { return a.Tenant, a.Meta })
	return repo, nil
}

// decodeAs decodes doc into a new T and records where it came from; every
// kind embeds Meta, whose setSrc *T inherits.
func decodeAs[T any, P interface {
	*T
	setSrc(*Document, bool)
}](doc *Document) (P, bool) {
	v := P(new(T))
	partial := false
	if err := doc.Node.Decode(v); err != nil {
		// yaml.v3 decodes every field it can and lists the others in a
		// TypeError; keeping the document keeps its name, so an app that
		// talks to it is not told it does not exist.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, false
		}
		partial = true
	}
	v.setSrc(doc, partial)
	return v, true
}

func (m *Meta) setSrc(d *Document, partial bool) { m.Src, m.Partial = d, partial }

// ownerOf is the tenant of a tenant-kind document: the folder's tenant when
// the document names none; what it wrote otherwise, so that policy can
// report a document that names another tenant instead of silently moving it.
func ownerOf(written string, doc *Document) string {
	if written == "" {
		return doc.Tenant
	}
	return written
}

// comparePos orders two documents by file position; a nil source (a value
// built by hand in a test) sorts first.
func comparePos(a, b Meta) int {
	switch {
	case a.Src == nil || b.Src == nil:
		return cmp.Compare(boolInt(a.Src != nil), boolInt(b.Src != nil))
	}
	return cmp.Or(
		strings.Compare(a.Src.File, b.Src.File),
		cmp.Compare(a.Src.Index, b.Src.Index),
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortByPos[T any](s []T, meta func(T) Meta) {
	slices.SortStableFunc(s, func(a, b T) int { return comparePos(meta(a), meta(b)) })
}

func sortBy[T any](s []T, key func(T) (string, Meta)) {
	slices.SortStableFunc(s, func(a, b T) int {
		ta, ma := key(a)
		tb, mb := key(b)
		return cmp.Or(
			strings.Compare(ta, tb),
			strings.Compare(ma.Name, mb.Name),
			comparePos(ma, mb),
		)
	})
}
