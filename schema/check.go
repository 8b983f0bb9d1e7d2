package schema

import (
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
	"gopkg.in/yaml.v3"
)

// maxRounds bounds re-validation of one failing document (see the package
// doc). Each round after the first exists only because the previous one
// found a new error, so real documents need two or three.
const maxRounds = 6

// errClass is what kind of problem a CUE error describes; it decides which
// @rule attributes may apply and where the diagnostic points.
type errClass uint8

const (
	classValue   errClass = iota // a constraint on a present value failed
	classType                    // a present value has the wrong kind
	classMissing                 // a required field is absent
	classUnknown                 // a field the definition does not allow
)

// classify reads CUE's message format, not its text: the formats are
// constants of the CUE evaluator (pinned by go.mod; the tests catch a
// change).
func classify(e errors.Error) errClass {
	format, _ := e.Msg()
	switch {
	case format == "field not allowed":
		return classUnknown
	case format == "field is required but not present",
		strings.HasPrefix(format, "incomplete value"),
		strings.HasPrefix(format, "non-concrete value"):
		return classMissing
	case strings.Contains(format, "mismatched types"):
		return classType
	}
	return classValue
}

var kindList = strings.Join(allKinds, ", ")

func (c *checker) check(d *config.Document, out diag.List) diag.List {
	root := deref(d.Node)
	if root.Kind != yaml.MappingNode {
		return append(out, diag.At(nodePos(d, root), "structure.kind",
			"a document must be a mapping of fields that starts with `kind:`, not %s", kindWord(root)))
	}
	_, kv := mapGet(root, "kind")
	if kv == nil {
		return append(out, diag.At(nodePos(d, root), "structure.kind",
			"this document has no `kind`: add `kind:` with one of %s", kindList))
	}
	kind := ""
	if kv.Kind == yaml.ScalarNode && kv.ShortTag() == "!!str" {
		kind = kv.Value
	}
	tn := c.t.kinds[kind]
	if tn == nil {
		return append(out, diag.At(nodePos(d, kv), "structure.kind",
			"unknown kind %s: use one of %s", valueText(kv), kindList))
	}

	// The document root is judged in Go from the table (closedness and
	// required fields); each field's value is judged by CUE on its own.
	var seen map[string]bool
	emit := func(dg diag.Diagnostic, ok bool) {
		if !ok {
			return
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		if k := dg.String(); !seen[k] {
			seen[k] = true
			out = append(out, dg)
		}
	}
	present := 0
	forEachField(root, func(key string, v *yaml.Node) {
		fn := tn.fields[key]
		if fn == nil {
			emit(c.diagnose(d, root, tn, kind, []string{key}, classUnknown))
			return
		}
		if fn.required {
			present++
		}
		if key != "kind" { // the kind chose the definition: it matches
			c.checkField(d, root, tn, kind, key, v, emit)
		}
	})
	if present < tn.nRequired {
		for _, name := range tn.names {
			if tn.fields[name].required {
				if _, v := mapGet(root, name); v == nil {
					emit(c.diagnose(d, root, tn, kind, []string{name}, classMissing))
				}
			}
		}
	}
	return out
}

// checkField validates the value of one top-level field against the
// definition's constraint for it. A value that passed once (same kind,
// field and canonical value) passes again without CUE: names differ from
// document to document, but images, resources, LANs and mounts repeat.
func (c *checker) checkField(d *config.Document, root *yaml.Node, tn *node, kind, key string, v *yaml.Node, emit func(diag.Diagnostic, bool)) {
	c.canon = append(c.canon[:0], kind...)
	c.canon = append(c.canon, 0)
	c.canon = append(c.canon, key...)
	c.canon = append(c.canon, 0)
	c.canon = appendCanon(c.canon, v, 0)
	if c.valid[string(c.canon)] {
		return
	}
	fs := c.fields[kind][key]
	c.conv.prune = nil
	for round := range maxRounds {
		expr := c.conv.convert(v, key)
		if c.conv.tooBig {
			emit(diag.At(nodePos(d, v), "structure.type",
				"`%s` is too large or nested too deeply to validate (over %d values or %d levels): simplify it", key, maxNodes, maxDepth), true)
			return
		}
		err := fs.FillPath(cue.Path{}, expr).Validate(cue.Concrete(true))
		if err == nil {
			if round == 0 {
				c.valid[string(c.canon)] = true
			}
			return
		}
		progressed := false
		for _, e := range errors.Errors(err) {
			labels := errLabels(e.Path(), kind)
			if len(labels) == 0 || labels[0] != key {
				// Every error of this unification lies under key; anything
				// else would be a schema defect. Report it at the field.
				labels = []string{key}
			}
			if c.pruned(labels) {
				continue
			}
			cls := classify(e)
			emit(c.diagnose(d, root, tn, kind, labels, cls))
			if cls == classMissing {
				continue // nothing there to take out
			}
			if c.conv.prune == nil {
				c.conv.prune = map[string]pruneAction{}
			}
			act := pruneTop
			if cls == classUnknown {
				act = pruneDrop
			}
			if k := pathKey(labels); c.conv.prune[k] == 0 {
				c.conv.prune[k] = act
				progressed = true
			}
		}
		if !progressed {
			return
		}
	}
}

// pruned reports whether labels is at or under a path already reported.
func (c *checker) pruned(labels []string) bool {
	if c.conv.prune == nil {
		return false
	}
	for i := len(labels); i > 0; i-- {
		if c.conv.prune[pathKey(labels[:i])] != 0 {
			return true
		}
	}
	return false
}

// errLabels turns CUE's error path into plain labels: the leading
// definition (#App) is dropped and quoted labels ("LOG-URL") unquoted.
func errLabels(path []string, kind string) []string {
	if len(path) > 0 && path[0] == "#"+kind {
		path = path[1:]
	}
	out := make([]string, len(path))
	for i, p := range path {
		if strings.HasPrefix(p, `"`) {
			if s, err := literal.Unquote(p); err == nil {
				p = s
			}
		}
		out[i] = p
	}
	return out
}

// diagnose builds the one diagnostic for an error at labels.
// ok is false when an attribute says the error goes unreported.
func (c *checker) diagnose(d *config.Document, root *yaml.Node, tn *node, kind string, labels []string, cls errClass) (_ diag.Diagnostic, ok bool) {
	loc := locate(root, labels)
	at, parent := tn.lookup(labels)

	var rule, msg string
	if at != nil {
		for _, a := range at.attrs {
			if c.applies(a, cls, loc.node) {
				if a.quiet != "" && loc.parent != nil && loc.parent.Kind == yaml.MappingNode {
					if k, _ := mapGet(loc.parent, a.quiet); k != nil {
						return diag.Diagnostic{}, false
					}
				}
				rule, msg = a.id, a.msg
				break
			}
		}
	}
	key := ""
	if len(labels) > 0 {
		key = labels[len(labels)-1]
		if q := strconv.Quote(key); q != `"`+key+`"` {
			key = q // never a raw newline in a message
		}
	}
	if rule == "" {
		switch cls {
		case classUnknown:
			rule, msg = "structure.unknown-field", "unknown field `{field}` in "+kind+": remove it"
			if parent != nil {
				if s := suggest(key, parent.names); s != "" {
					msg += " or rename it to `" + s + "`"
				}
			}
		case classMissing:
			rule, msg = "structure.required", kind+" needs `{field}`: add it"
		case classType:
			exp := "a valid value"
			if at != nil {
				exp = kindPhrase(at.kind)
			}
			rule, msg = "structure.type", "`{field}` must be "+exp+", not "+kindWord(loc.node)
		default:
			rule, msg = "structure.type", "`{field}` has a value that is not allowed here: {value}"
		}
	}

	var pos diag.Pos
	switch {
	case cls == classUnknown && loc.key != nil:
		pos = nodePos(d, loc.key)
	case cls == classMissing || loc.node == nil:
		pos = nodePos(d, loc.deepest) // the mapping that lacks the field
	default:
		pos = nodePos(d, loc.node)
	}
	value := ""
	if loc.node != nil {
		value = valueText(loc.node)
	}
	field := loc.field
	if field == "" {
		field = kind
	}
	r := strings.NewReplacer("{field}", field, "{value}", value, "{key}", key, "{prefixes}", c.prefixes)
	return diag.Diagnostic{Pos: pos, Rule: rule, Message: r.Replace(msg)}, true
}

// applies reports whether attribute a speaks for an error of class cls on
// the value v (nil when absent).
func (c *checker) applies(a ruleAttr, cls errClass, v *yaml.Node) bool {
	switch a.when {
	case "missing":
		return cls == classMissing
	case "type":
		return cls == classType
	case "present":
		if cls != classValue && cls != classType {
			return false
		}
	default:
		if cls != classValue {
			return false
		}
	}
	if a.ifDef != "" && (v == nil || !c.satisfies(a.ifDef, v)) {
		return false
	}
	if a.unless != "" && (v == nil || c.satisfies(a.unless, v)) {
		return false
	}
	return true
}

// satisfies evaluates one named definition of the schema against a value.
// It runs only while reporting an error, so its cost does not matter.
func (c *checker) satisfies(def string, v *yaml.Node) bool {
	var conv converter // its own state: c.conv is mid-round
	x := conv.convert(v)
	if conv.tooBig {
		return false
	}
	return c.schema.LookupPath(cue.ParsePath(def)).FillPath(cue.Path{}, x).Validate(cue.Concrete(true)) == nil
}

// location is where an error path lands in the YAML.
type location struct {
	node    *yaml.Node // the value at the path; nil when absent
	parent  *yaml.Node // the node holding it; nil when absent
	key     *yaml.Node // its mapping key, when the last step was a key
	deepest *yaml.Node // the deepest node that exists along the path
	field   string     // the path for messages: volumes[0].host
}

func locate(root *yaml.Node, labels []string) location {
	loc := location{node: root, deepest: root}
	var b strings.Builder
	n := root
	for _, l := range labels {
		var next, key *yaml.Node
		if n != nil {
			switch n.Kind {
			case yaml.MappingNode:
				key, next = mapGet(n, l)
			case yaml.SequenceNode:
				if i, err := strconv.Atoi(l); err == nil && i >= 0 && i < len(n.Content) {
					next = deref(n.Content[i])
				}
			}
		}
		switch {
		case n != nil && n.Kind == yaml.SequenceNode:
			fmt.Fprintf(&b, "[%s]", l)
		case strconv.Quote(l) != `"`+l+`"`:
			// A key with a newline or another control character is shown
			// quoted, so a message can never contain a forged line.
			fmt.Fprintf(&b, "[%s]", strconv.Quote(l))
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(l)
		}
		loc.parent = n
		n, loc.key = next, key
		if n != nil {
			loc.deepest = n
		}
	}
	loc.node = n
	loc.field = b.String()
	return loc
}

// mapGet returns the first key named k of a mapping and its value.
func mapGet(m *yaml.Node, k string) (key, val *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if kn := deref(m.Content[i]); kn.Kind == yaml.ScalarNode && kn.Value == k {
			return kn, deref(m.Content[i+1])
		}
	}
	return nil, nil
}

func nodePos(d *config.Document, n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{File: d.File}
	}
	return diag.Pos{File: d.File, Line: n.Line, Col: n.Column}
}
