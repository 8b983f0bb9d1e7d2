package schema

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/moat-platform/moat/config"
)

// ruleAttr is one parsed @rule attribute of moat.cue.
type ruleAttr struct {
	id     string
	when   string // "" (failed constraint), "missing", "type" or "present"
	ifDef  string // applies only when the value satisfies this definition
	unless string // applies only when the value fails this definition
	quiet  string // no diagnostic at all when the parent mapping has this key
	msg    string // template, see diagnose
}

// node mirrors one position of a kind's definition: which fields exist
// (for unknown-field suggestions), what type a value has (for type
// messages) and which rules apply there. Building it once per process
// means the hot path never asks CUE about the schema's shape.
type node struct {
	kind   cue.Kind
	fields map[string]*node
	names  []string // field names, sorted, for suggestions
	elem   *node    // list element or value of a [string]: pattern
	attrs  []ruleAttr
	// required is set on a field declared with `!`; nRequired counts the
	// required fields of a struct.
	required  bool
	nRequired int
}

// table is the read-only rule table shared by all workers.
type table struct {
	kinds map[string]*node // by kind name
}

var (
	tableOnce sync.Once
	theTable  *table
)

// loadTable builds the table on first use. The schema is embedded, so a
// failure here is a build defect that every test run catches: panic.
func loadTable() *table {
	tableOnce.Do(func() {
		t, err := buildTable()
		if err != nil {
			panic(fmt.Errorf("schema: embedded moat.cue: %w", err))
		}
		theTable = t
	})
	return theTable
}

func buildTable() (*table, error) {
	// A throwaway context: only Go data outlives this function.
	v := cuecontext.New().CompileString(schemaSrc, cue.Filename("moat.cue"))
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	t := &table{kinds: map[string]*node{}}
	for _, k := range allKinds {
		def := v.LookupPath(cue.MakePath(cue.Def(k)))
		if err := def.Err(); err != nil {
			return nil, fmt.Errorf("definition #%s: %w", k, err)
		}
		n, err := buildNode(def, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("definition #%s: %w", k, err)
		}
		t.kinds[k] = n
	}
	return t, nil
}

var allKinds = slices.Concat(config.PlatformKinds, config.TenantKinds)

// buildNode mirrors v. Elements of a list or map are judged by the
// rules of the field that holds them (attrs passed down): the attribute on
// `secrets` speaks for every secret in it.
func buildNode(v cue.Value, attrs []ruleAttr, depth int) (*node, error) {
	if depth > 20 {
		return nil, fmt.Errorf("schema nests deeper than 20 levels at %s", v.Path())
	}
	n := &node{kind: v.IncompleteKind(), attrs: attrs}
	switch n.kind {
	case cue.StructKind:
		n.fields = map[string]*node{}
		it, err := v.Fields(cue.Optional(true))
		if err != nil {
			return nil, fmt.Errorf("fields of %s: %w", v.Path(), err)
		}
		for it.Next() {
			sel := it.Selector()
			if sel.LabelType() != cue.StringLabel {
				continue
			}
			fa, err := parseAttrs(it.Value())
			if err != nil {
				return nil, err
			}
			c, err := buildNode(it.Value(), fa, depth+1)
			if err != nil {
				return nil, err
			}
			name := sel.Unquoted()
			c.required = sel.ConstraintType() == cue.RequiredConstraint
			n.fields[name] = c
			n.names = append(n.names, name)
			if c.required {
				n.nRequired++
			}
		}
		slices.Sort(n.names)
		if p := v.LookupPath(cue.MakePath(cue.AnyString)); p.Exists() {
			e, err := buildNode(p, attrs, depth+1)
			if err != nil {
				return nil, err
			}
			n.elem = e
		}
	case cue.ListKind:
		if p := v.LookupPath(cue.MakePath(cue.AnyIndex)); p.Exists() {
			e, err := buildNode(p, attrs, depth+1)
			if err != nil {
				return nil, err
			}
			n.elem = e
		}
	}
	return n, nil
}

func parseAttrs(v cue.Value) ([]ruleAttr, error) {
	var out []ruleAttr
	for _, a := range v.Attributes(cue.FieldAttr) {
		if a.Name() != "rule" {
			continue
		}
		r := ruleAttr{}
		for i := range a.NumArgs() {
			k, val := a.Arg(i)
			switch {
			case i == 0 && val == "":
				r.id = k
			case k == "when":
				r.when = val
			case k == "if":
				r.ifDef = val
			case k == "unless":
				r.unless = val
			case k == "quiet":
				r.quiet = val
			case k == "msg":
				r.msg = val
			default:
				return nil, fmt.Errorf("%s: @rule argument %q not understood", v.Path(), a.Contents())
			}
		}
		switch r.when {
		case "", "missing", "type", "present":
		default:
			return nil, fmt.Errorf("%s: @rule when=%q not understood", v.Path(), r.when)
		}
		if r.id == "" || !strings.Contains(r.id, ".") {
			return nil, fmt.Errorf("%s: @rule without a rule id: %s", v.Path(), a.Contents())
		}
		out = append(out, r)
	}
	return out, nil
}

// lookup follows labels from a kind's root. It returns the node at the end
// (nil when the path leaves the schema) and its parent.
func (n *node) lookup(labels []string) (at, parent *node) {
	at = n
	for _, l := range labels {
		if at == nil {
			return nil, parent
		}
		parent = at
		if c, ok := at.fields[l]; ok {
			at = c
		} else {
			at = at.elem
		}
	}
	return at, parent
}

// kindPhrase names what a schema position expects, for type messages.
func kindPhrase(k cue.Kind) string {
	var parts []string
	switch {
	case k&cue.NumberKind == cue.NumberKind:
		parts = append(parts, "a number")
	case k&cue.IntKind != 0:
		parts = append(parts, "a whole number")
	case k&cue.FloatKind != 0:
		parts = append(parts, "a number")
	}
	if k&cue.StringKind != 0 {
		parts = append(parts, "a string")
	}
	if k&cue.BoolKind != 0 {
		parts = append(parts, "true or false")
	}
	if k&cue.ListKind != 0 {
		parts = append(parts, "a list")
	}
	if k&cue.StructKind != 0 {
		parts = append(parts, "a mapping")
	}
	if k&cue.NullKind != 0 {
		parts = append(parts, "null")
	}
	if len(parts) == 0 {
		return "a valid value"
	}
	return strings.Join(parts, " or ")
}

// suggest returns the known name closest to an unknown one, when it is
// close enough to be a likely typo ("replica" -> "replicas").
func suggest(unknown string, names []string) string {
	best, bestD := "", 3
	if len(unknown) <= 4 {
		bestD = 2
	}
	lu := strings.ToLower(unknown)
	for _, n := range names {
		if strings.ToLower(n) == lu {
			return n
		}
		if d := distance(lu, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance, bounded: keys longer than 64 bytes
// are never typos of a schema field, and a hostile key must stay cheap.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
