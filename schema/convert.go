package schema

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"gopkg.in/yaml.v3"
)

// Bounds on one document as the converter sees it. The loader enforces
// tighter limits (config.Limits); these only keep Check itself safe when it
// is handed nodes from elsewhere (tests, fuzzing, alias bombs).
const (
	maxNodes = 200_000
	maxDepth = 200
)

// pruneAction says what a re-validation round does with a field that
// already has a diagnostic (see checker.check).
type pruneAction uint8

const (
	pruneTop  pruneAction = iota + 1 // replace the value with _ (top)
	pruneDrop                        // leave the field out
)

// converter turns a yaml.Node tree into a Go value that CUE takes as is
// (map[string]any, []any, string, int64, *big.Int, float64, bool), which
// Value.FillPath converts straight to CUE's internal form: measured about
// 30% cheaper than building and compiling an AST. Map keys become regular
// string labels, so a key such as "#x" or "_x" can never name a
// definition or a hidden field of the schema. Positions are not needed:
// diagnostics are placed by walking the yaml.Node along the CUE error path
// (see locate), which is exact.
//
// nil converts to _ (top) under FillPath, which is what a pruned value
// needs; a YAML null is therefore sent as the expression null.
type converter struct {
	prune  map[string]pruneAction // by pathKey; nil in the first round
	path   []string               // current path, kept only when prune != nil
	nodes  int
	tooBig bool
}

// null is CUE's null: a Go nil would mean top.
var null ast.Expr = ast.NewNull()

// pathKey joins labels with a byte that no YAML key of interest contains
// unescaped; collisions would only merge two prune entries.
func pathKey(labels []string) string { return strings.Join(labels, "\x00") }

// convert converts n, found at path (the labels from the document root,
// which prune entries are keyed by).
func (c *converter) convert(n *yaml.Node, path ...string) any {
	c.nodes, c.tooBig = 0, false
	c.path = append(c.path[:0], path...)
	return c.value(n, 0)
}

func (c *converter) value(n *yaml.Node, depth int) any {
	c.nodes++
	if c.nodes > maxNodes || depth > maxDepth {
		c.tooBig = true
		return nil
	}
	if c.prune != nil && len(c.path) > 0 {
		if c.prune[pathKey(c.path)] == pruneTop {
			return nil
		}
	}
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return c.mapping(n, depth)
	case yaml.SequenceNode:
		elems := make([]any, len(n.Content))
		for i, e := range n.Content {
			if c.prune != nil {
				c.path = append(c.path, strconv.Itoa(i))
			}
			elems[i] = c.value(e, depth+1)
			if c.prune != nil {
				c.path = c.path[:len(c.path)-1]
			}
		}
		return elems
	case yaml.ScalarNode:
		return scalar(n)
	}
	// An empty document or an unresolvable alias: null, which any typed
	// field refuses with a type error.
	return null
}

func (c *converter) mapping(n *yaml.Node, depth int) any {
	m := make(map[string]any, len(n.Content)/2)
	forEachField(n, func(key string, v *yaml.Node) {
		if c.prune != nil {
			c.path = append(c.path, key)
			defer func() { c.path = c.path[:len(c.path)-1] }()
			if c.prune[pathKey(c.path)] == pruneDrop {
				return
			}
		}
		m[key] = c.value(v, depth+1)
	})
	return m
}

// forEachField calls fn for each key of a mapping in order, skipping
// repeated keys: the loader reports duplicates, and keeping only the first
// avoids a second, confusing "conflicting values" report here.
func forEachField(n *yaml.Node, fn func(key string, v *yaml.Node)) {
	var seen map[string]bool
	if len(n.Content) > 32 {
		seen = make(map[string]bool, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := keyString(n.Content[i])
		if seen != nil {
			if seen[key] {
				continue
			}
			seen[key] = true
		} else if dupBefore(n, i, key) {
			continue
		}
		fn(key, n.Content[i+1])
	}
}

func dupBefore(n *yaml.Node, i int, key string) bool {
	for j := 0; j < i; j += 2 {
		if keyString(n.Content[j]) == key {
			return true
		}
	}
	return false
}

// keyString is the label a mapping key becomes. Non-scalar keys cannot name
// a schema field, so any stable text will do: they end up unknown fields.
func keyString(k *yaml.Node) string {
	k = deref(k)
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	return "<" + kindWord(k) + " key>"
}

// scalar converts by the tag yaml.v3 resolved, so `port: 8080` is a number
// and `port: "8080"` a string, exactly as the decoder will see them.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return null
	case "!!bool":
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b
		}
	case "!!int":
		if i, ok := intValue(n.Value); ok {
			return i
		}
	case "!!float":
		// yaml.v3 tags an integer too large for 64 bits as a float; it is
		// a whole number, and the field's range names the problem.
		if i, ok := intValue(n.Value); ok {
			return i
		}
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil &&
			!math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	// Strings, timestamps, binary, custom tags and numbers CUE cannot
	// represent (.inf, .nan) all stay text: a typed field then reports a
	// type error rather than something silently rounded.
	return n.Value
}

// intValue reads a YAML integer (0x, 0o, 0b, underscores, a sign) as an
// int64, or a *big.Int when it does not fit.
func intValue(v string) (any, bool) {
	s := strings.ReplaceAll(v, "_", "")
	if i, err := strconv.ParseInt(s, 0, 64); err == nil {
		return i, true
	}
	b, ok := new(big.Int).SetString(strings.TrimPrefix(s, "+"), 0)
	if !ok {
		return nil, false
	}
	return b, true
}

// deref follows aliases (the loader expands them, but Check must not trust
// that) and unwraps a DocumentNode. A cycle of aliases stops after a bound.
func deref(n *yaml.Node) *yaml.Node {
	for range 64 {
		switch {
		case n == nil:
			return &yaml.Node{}
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return &yaml.Node{}
}

// kindWord names a node's type the way a message to a user does.
func kindWord(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "true/false"
		case "!!int":
			return "an integer"
		case "!!float":
			// YAML spells them .nan and .inf, which strconv does not read.
			switch v := strings.ToLower(strings.TrimLeft(n.Value, "+-")); v {
			case ".nan":
				return n.Value + " (not a number)"
			case ".inf":
				return n.Value + " (infinity)"
			}
			if _, ok := intValue(n.Value); ok {
				return "an integer"
			}
			return "a decimal number"
		}
		return "a string"
	}
	return "nothing"
}

// valueText shows an offending value in a message: scalars as written
// (strings quoted), collections by their type. Long values are cut so a
// hostile document cannot blow up the report.
func valueText(n *yaml.Node) string {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		return kindWord(n)
	}
	v := n.Value
	if len(v) > 80 {
		v = v[:77] + "..."
	}
	if t := n.ShortTag(); t == "!!int" || t == "!!float" || t == "!!bool" || t == "!!null" {
		return v
	}
	return strconv.Quote(v)
}

// appendCanon appends a canonical encoding of n to b: equal encodings mean
// equal CUE values (tags resolved, first of duplicate keys, aliases
// followed), so a field value that validated once needs no second run.
// Lengths prefix every string, so no two trees share an encoding.
func appendCanon(b []byte, n *yaml.Node, depth int) []byte {
	n = deref(n)
	if depth > maxDepth {
		return append(b, '!')
	}
	switch n.Kind {
	case yaml.MappingNode:
		b = append(b, '{')
		forEachField(n, func(k string, v *yaml.Node) {
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(b, ':')
			b = append(b, k...)
			b = appendCanon(b, v, depth+1)
		})
		return append(b, '}')
	case yaml.SequenceNode:
		b = append(b, '[')
		for _, e := range n.Content {
			b = appendCanon(b, e, depth+1)
		}
		return append(b, ']')
	case yaml.ScalarNode:
		b = append(b, n.ShortTag()...)
		b = strconv.AppendInt(b, int64(len(n.Value)), 10)
		b = append(b, ':')
		return append(b, n.Value...)
	}
	return append(b, '~')
}
