package diag

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Rule is one entry of the rule catalogue. Each package that reports
// diagnostics registers its rules from an init func, so the catalogue page
// (docs/RULES.md, made by `moat rules -o markdown`) and the check that every
// rule has a failing fixture both read one list.
type Rule struct {
	ID       string // stable, "<area>.<name>", e.g. "hardening.privileged"
	Area     string // catalogue section: structure, ownership, uniqueness, addresses, links, access, hardening, quotas, images, secrets, ports, input
	Summary  string // one line: what the rule refuses
	Fix      string // what the user should change
	Severity string // "error" (default) or "warning"
}

var (
	rulesMu sync.Mutex
	rules   = map[string]Rule{}
)

// Register adds rules to the catalogue. It panics on a duplicate id or an
// id outside its area: both are programming errors caught by any test run.
func Register(rs ...Rule) {
	rulesMu.Lock()
	defer rulesMu.Unlock()
	for _, r := range rs {
		if _, dup := rules[r.ID]; dup {
			panic(fmt.Sprintf("diag: rule %s registered twice", r.ID))
		}
		if !strings.HasPrefix(r.ID, r.Area+".") {
			panic(fmt.Sprintf("diag: rule %s is not in area %s", r.ID, r.Area))
		}
		if r.Severity == "" {
			r.Severity = "error"
		}
		rules[r.ID] = r
	}
}

// Rules returns the catalogue sorted by id.
func Rules() []Rule {
	rulesMu.Lock()
	defer rulesMu.Unlock()
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Lookup returns the rule with id.
func Lookup(id string) (Rule, bool) {
	rulesMu.Lock()
	defer rulesMu.Unlock()
	r, ok := rules[id]
	return r, ok
}
