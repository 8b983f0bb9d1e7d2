package config

import (
	"strings"

	"github.com/moat-platform/moat/diag"
	"gopkg.in/yaml.v3"
)

// Document is one YAML document of one file, parsed but not yet decoded.
// The node keeps every position, so any later check can point at the exact
// field it is about.
type Document struct {
	File  string     // slash path relative to the repo root, e.g. tenants/acme/web.yaml
	Index int        // 0-based document index inside the file
	Node  *yaml.Node // the document's root mapping node (never a DocumentNode)
	Kind  string     // value of "kind", "" when missing or not a string
	Name  string     // value of "name", "" when missing or not a string
	// Tenant is the owning tenant from the path (tenants/<tenant>/...), ""
	// for platform-owned files.
	Tenant string
	// Content is the file's bytes, shared by the documents of one file; the
	// schema package needs it to map CUE offsets back to lines.
	Content []byte
}

// Pos returns the position of the value at path inside the document. Path
// elements are mapping keys (string) or sequence indices (int). When the
// path does not exist, Pos returns the position of the deepest node that
// does, so a diagnostic still points somewhere useful.
func (d *Document) Pos(path ...any) diag.Pos {
	n := d.Node
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			break
		}
		n = next
	}
	if n == nil {
		return diag.Pos{File: d.File}
	}
	return diag.Pos{File: d.File, Line: n.Line, Col: n.Column}
}

// Has reports whether the value at path was written in the document (Pos
// cannot tell: it falls back to the deepest node that exists).
func (d *Document) Has(path ...any) bool {
	n := d.Node
	for _, p := range path {
		if n = child(n, p); n == nil {
			return false
		}
	}
	return n != nil
}

// KeyPos is like Pos but for a mapping key: it points at the key itself
// rather than its value (for "unknown field" and "duplicate key").
func (d *Document) KeyPos(path ...any) diag.Pos {
	if len(path) == 0 {
		return d.Pos()
	}
	parent := d.Node
	for _, p := range path[:len(path)-1] {
		if parent = child(parent, p); parent == nil {
			return d.Pos(path...)
		}
	}
	key, ok := path[len(path)-1].(string)
	if !ok || parent.Kind != yaml.MappingNode {
		return d.Pos(path...)
	}
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			k := parent.Content[i]
			return diag.Pos{File: d.File, Line: k.Line, Col: k.Column}
		}
	}
	return d.Pos(path...)
}

func child(n *yaml.Node, p any) *yaml.Node {
	if n == nil {
		return nil
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch p := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				return n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
			return n.Content[p]
		}
	}
	return nil
}

// TenantOf returns the tenant that owns a repo path: "acme" for
// tenants/acme/web.yaml, "" for a platform-owned path. A file directly in
// tenants/ (tenants/x.yaml) belongs to no tenant and is reported by policy.
func TenantOf(file string) string {
	rest, ok := strings.CutPrefix(file, "tenants/")
	if !ok {
		return ""
	}
	t, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return t
}
