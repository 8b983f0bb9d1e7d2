// Package diag is the one diagnostic vocabulary of moat: every problem found
// in a config repository (YAML syntax, CUE schema, cross-document rules,
// hostile input) is a Diagnostic naming a file position, a stable rule id and
// what to change. Pure: formatting writes to an io.Writer the caller owns.
package diag

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Pos is a position in a file of the config repository. Line and Col are
// 1-based; 0 means unknown (a whole-file or whole-repository problem).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String is file:line:col. A file name with a control character (the
// loader refuses such files, but reports them by name) is quoted, so a name
// can never start a forged line of its own.
func (p Pos) String() string {
	file := p.File
	if hasControl(file) {
		file = strconv.Quote(file)
	}
	switch {
	case file == "":
		return "<repo>"
	case p.Line == 0:
		return file
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", file, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// hasControl reports a C0 control character or DEL.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// escapeControl writes control characters as Go escapes (\n, \x1b): one
// diagnostic is one line, whatever a message quotes from the input.
func escapeControl(s string) string {
	if !hasControl(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Diagnostic is one finding. Rule is a stable id from the rule catalogue
// (docs/RULES.md), such as "hardening.privileged". Message says what is
// wrong and what to change, in one sentence, without the position.
type Diagnostic struct {
	Pos
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Rule, escapeControl(d.Message))
}

// At builds a Diagnostic; the message is formatted like fmt.Sprintf.
func At(pos Pos, rule, format string, args ...any) Diagnostic {
	return Diagnostic{Pos: pos, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// List is a set of diagnostics. Sort before showing it: the order is then
// stable whatever order the checks ran in (they run in parallel).
type List []Diagnostic

// Add appends a diagnostic.
func (l *List) Add(pos Pos, rule, format string, args ...any) {
	*l = append(*l, At(pos, rule, format, args...))
}

// Sort orders by file, line, column, rule, message and drops exact
// duplicates (two checks may find the same thing).
func (l List) Sort() List {
	slices.SortFunc(l, Compare)
	return slices.Compact(l)
}

// Compare orders diagnostics by position, then rule, then message.
func Compare(a, b Diagnostic) int {
	return cmp.Or(
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Col, b.Col),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.Message, b.Message),
	)
}

// Err returns an error summarising the list, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return &Error{List: l}
}

// Error carries diagnostics through APIs that return an error.
type Error struct{ List List }

func (e *Error) Error() string {
	if len(e.List) == 1 {
		return e.List[0].String()
	}
	return fmt.Sprintf("%s (and %d more)", e.List[0], len(e.List)-1)
}
