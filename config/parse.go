package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/moat-platform/moat/diag"
	"gopkg.in/yaml.v3"
)

// parse splits one file into documents and runs the checks that need the
// raw YAML tree: encoding, syntax, alias expansion, depth, merge keys,
// duplicate keys and the shape of each document's root.
func (l *loader) parse(name string, data []byte) {
	if !l.encodingOK(name, data) {
		return
	}
	tenant := TenantOf(name)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// Index counts every document of the stream, empty ones included, so
	// it matches what an editor shows as the n-th document.
	for idx := 0; ; idx++ {
		var doc yaml.Node
		err := decodeNode(dec, &doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The parser cannot resume after an error; the documents
			// before it are kept so later checks do not cascade.
			l.diags = append(l.diags, syntaxDiag(name, err, data, l.lim.MaxDepth))
			return
		}
		root := &doc
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" && root.Value == "" {
			continue // empty document: only comments, or nothing
		}
		l.document(name, tenant, idx, root, data)
		if l.stopped {
			return
		}
	}
}

// decodeNode is dec.Decode with a recover: yaml.v3 turns its own errors
// into values, but a parser bug hit by hostile input would otherwise panic
// the reconciler. The decoder is unusable afterwards; the caller stops.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the parser failed on this input (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// encodingOK reports non-UTF-8 content at the line of the first bad byte.
// yaml.v3 would guess UTF-16 from a byte-order mark and may accept odd
// bytes; moat reads UTF-8 text only, so every tool sees the same text.
func (l *loader) encodingOK(name string, data []byte) bool {
	bad, what := -1, ""
	if i := bytes.IndexByte(data, 0); i >= 0 {
		bad, what = i, "a NUL byte (binary data)"
	}
	if !utf8.Valid(data) {
		if i := firstInvalidUTF8(data); bad < 0 || i < bad {
			bad, what = i, "bytes that are not UTF-8"
		}
	}
	if bad < 0 {
		return true
	}
	line := 1 + bytes.Count(data[:bad], []byte{'\n'})
	l.diags.Add(diag.Pos{File: name, Line: line}, RuleEncoding,
		"file contains %s; YAML files must be UTF-8 text", what)
	return false
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// yamlLine matches the position yaml.v3 puts in its error text; it has no
// typed error carrying the line.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner. For these its error text gives the 0-based line
// (it adds one only for scanner errors), or no line for line 0.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// unknownAnchor matches the one yaml.v3 error that carries no line.
var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

func syntaxDiag(name string, err error, data []byte, maxDepth int) diag.Diagnostic {
	msg := err.Error()
	pos := diag.Pos{File: name}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			pos.Line = n
		}
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
			// Best effort: the first use of the alias in the text.
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				pos.Line = 1 + bytes.Count(data[:i], []byte{'\n'})
				pos.Col = 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:i], '\n')+1:i])
			}
		}
	}
	if parserProblems[msg] {
		pos.Line++
	}
	if pos.Col != 0 {
		// Located above.
	} else if line, col, ok := locateSyntax(data, err.Error()); ok && line >= pos.Line {
		pos.Line, pos.Col = line, col
	}
	if strings.Contains(msg, "exceeded max depth") {
		// yaml.v3's own nesting guard (10,000 levels) fires before the
		// loader's depth limit can look at the tree: same problem, same rule.
		return diag.At(pos, RuleDepth, "document is nested more than %d levels deep; flatten it", maxDepth)
	}
	if strings.Contains(msg, "excessive aliasing") {
		// yaml.v3's own alias-bomb guard (only hit when decoding into Go
		// values, which Load does not do, but keep the rule id right).
		return diag.At(pos, RuleAliasExpansion, "document contains excessive aliasing; write values out instead")
	}
	return diag.At(pos, RuleSyntax, "invalid YAML: %s", msg)
}

// document checks one parsed document and keeps it when its tree is usable.
func (l *loader) document(name, tenant string, idx int, root *yaml.Node, data []byte) {
	x := expander{file: name, lim: l.lim, budget: l.lim.MaxNodes}
	if remaining := l.lim.MaxTotalNodes - l.nodes; remaining < x.budget {
		x.budget = remaining
	}
	tree, ok := x.copy(root, 1)
	if !ok {
		switch {
		case x.tooDeep != nil:
			l.diags.Add(diag.Pos{File: name, Line: x.tooDeep.Line, Col: x.tooDeep.Column}, RuleDepth,
				"document is nested more than %d levels deep (aliases included); flatten it", l.lim.MaxDepth)
		case x.budget < l.lim.MaxNodes:
			// The repository-wide budget ran out, not this document's.
			l.diags.Add(diag.Pos{File: name, Line: root.Line, Col: root.Column}, RuleTotalSize,
				"the repository has more than %d YAML nodes after alias expansion; this and later files were not read",
				l.lim.MaxTotalNodes)
			l.stopped = true
		default:
			at := root
			if x.bomb != nil {
				at = x.bomb
			}
			l.diags.Add(diag.Pos{File: name, Line: at.Line, Col: at.Column}, RuleAliasExpansion,
				"document expands to more than %d YAML nodes (every use of an alias counts its whole value); write values out instead of nesting aliases",
				l.lim.MaxNodes)
		}
		return
	}
	if tree.Kind != yaml.MappingNode {
		l.diags.Add(diag.Pos{File: name, Line: tree.Line, Col: tree.Column}, RuleDocument,
			"document is a %s, not a mapping; every document must be a mapping with kind and name", kindName(tree))
		return
	}
	l.keys(name, tree)
	l.nodes += x.count
	l.docs = append(l.docs, &Document{
		File:    name,
		Index:   idx,
		Node:    tree,
		Kind:    plainString(tree, "kind"),
		Name:    plainString(tree, "name"),
		Tenant:  tenant,
		Content: data,
	})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null value"
		}
		return "plain value"
	}
	return "non-mapping value"
}

// plainString returns the value of key in mapping m when it is a string
// scalar ("" for a number, a list, or a missing key).
func plainString(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k, v := m.Content[i], m.Content[i+1]; k.Value == key && k.Kind == yaml.ScalarNode {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				return v.Value
			}
			return ""
		}
	}
	return ""
}

// expander deep-copies a document tree, replacing every alias by a copy of
// its anchor's value, so nothing downstream sees an AliasNode (and no later
// decode can be bombed). Copying counts nodes and depth against the limits
// and stops at the first one exceeded; a cyclic alias (an anchor used
// inside its own value, which yaml.v3 accepts) ends at the depth limit.
type expander struct {
	file    string
	lim     Limits
	budget  int        // nodes this document may still produce
	count   int        // nodes produced
	aliases int        // nesting of alias expansion in progress
	bomb    *yaml.Node // the outermost alias being expanded when the budget ran out
	tooDeep *yaml.Node // the node found deeper than MaxDepth
}

func (x *expander) copy(n *yaml.Node, depth int) (*yaml.Node, bool) {
	if depth > x.lim.MaxDepth {
		x.tooDeep = n
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			// yaml.v3 rejects unknown anchors; an empty value is the
			// harmless reading should that ever change.
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}, true
		}
		x.aliases++
		c, ok := x.copy(n.Alias, depth)
		x.aliases--
		if !ok {
			if x.aliases == 0 && x.bomb == nil && x.tooDeep == nil {
				x.bomb = n
			}
			return nil, false
		}
		// Point at the use: that is the line a reviewer reads.
		c.Line, c.Column = n.Line, n.Column
		return c, true
	}
	if x.count++; x.count > x.budget {
		return nil, false
	}
	out := *n
	out.Anchor = ""
	out.Alias = nil
	out.Content = nil
	if len(n.Content) > 0 {
		out.Content = make([]*yaml.Node, 0, len(n.Content))
		for _, c := range n.Content {
			cc, ok := x.copy(c, depth+1)
			if !ok {
				return nil, false
			}
			out.Content = append(out.Content, cc)
		}
	}
	return &out, true
}

// keys reports merge keys and duplicate keys in every mapping of the tree
// and removes them (the first of duplicate keys stays), so the schema and
// the decoder judge the document as a reviewer would read it, and each
// problem is reported once. The tree's depth is bounded by MaxDepth.
func (l *loader) keys(file string, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == binaryTag {
		// The decoder would hand the base64-decoded bytes to the typed
		// model, while the schema judges the text as written: a value that
		// passes as "cm9v" would run as "roo". moat reads text only, so
		// every reader sees the same value.
		l.diags.Add(diag.Pos{File: file, Line: n.Line, Col: n.Column}, RuleEncoding,
			"!!binary values are not allowed: moat reads text only; write the value as plain text")
		// From here on every reader sees the text as written, so nothing
		// is reported twice and nothing decodes differently.
		n.Tag = "!!str"
		return
	}
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			pos := diag.Pos{File: file, Line: k.Line, Col: k.Column}
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				l.diags.Add(pos, RuleMergeKey,
					"merge key << is not allowed: it hides where values come from; write the keys out")
				continue
			}
			if k.Kind != yaml.ScalarNode {
				// No moat field is keyed by a list or a map, and such a key
				// has no single spelling to compare for duplicates.
				l.diags.Add(pos, RuleComplexKey,
					"a %s is used as a mapping key; use a plain name", keyKind(k))
				continue
			}
			{
				// By value, not tag: 1 and "1" are one key once the
				// document becomes JSON or CUE.
				if first, dup := seen[k.Value]; dup {
					l.diags.Add(pos, RuleDuplicateKey,
						"key %q is already defined at line %d; remove one of them", k.Value, first.Line)
					continue
				}
				seen[k.Value] = k
			}
			kept = append(kept, k, v)
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		l.keys(file, c)
	}
}

// binaryTag is the short form of YAML's binary tag.
const binaryTag = "!!binary"

// keyKind names what a complex mapping key is, for its diagnostic.
func keyKind(k *yaml.Node) string {
	if k.Kind == yaml.MappingNode {
		return "mapping"
	}
	return kindName(k)
}
