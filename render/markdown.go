package render

import (
	"io"
	"slices"
	"strings"

	"github.com/moat-platform/moat/reconcile"
)

// MarkdownMaxRows bounds the table rows of a comment: GitHub refuses
// comments over 65,536 characters, and nobody reviews 10,000 rows.
const MarkdownMaxRows = 300

// Markdown writes the plan as a pull-request comment: a heading, the
// summary, and one table per tenant (platform objects first) with each
// operation's symbol, resource, action and cause. Names are code spans, so
// that underscores and dots render as they are.
func Markdown(w io.Writer, p *reconcile.Plan) error {
	ew := &errWriter{w: w}
	s := p.Summary()
	ew.printf("### moat plan for `%s`%s", code(p.Instance), engineNote(p))
	if p.Revision != "" {
		ew.printf(" at `%s`", code(p.Revision))
	}
	ew.printf("\n\n")
	if len(p.Operations) == 0 {
		ew.printf("**No changes.** Live state matches the configuration.\n")
		if note := secretsNote(p); note != "" {
			ew.printf("\n> %s", note)
		}
		return ew.err
	}
	if p.Empty() {
		ew.printf("**No changes to apply.**")
	} else {
		ew.printf("**Plan: %s.**", s.Counts())
	}
	if s.Report > 0 {
		ew.printf(" %d reported, left as they are (`!`).", s.Report)
	}
	ew.printf("\n")

	byTenant := map[string][]*reconcile.Operation{}
	for i := range p.Operations {
		op := &p.Operations[i]
		byTenant[op.Tenant] = append(byTenant[op.Tenant], op)
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants) // "" (platform) sorts first
	rows := 0
	for _, t := range tenants {
		if rows >= MarkdownMaxRows {
			break
		}
		if t == "" {
			ew.printf("\n#### Platform\n\n")
		} else {
			ew.printf("\n#### Tenant `%s`\n\n", code(t))
		}
		ew.printf("| | Resource | Action | Cause |\n|:-:|---|---|---|\n")
		for _, op := range byTenant[t] {
			if rows >= MarkdownMaxRows {
				break
			}
			rows++
			detail := op.Detail()
			if op.Network != "" && op.Verb != reconcile.VerbReport {
				detail = strings.TrimSuffix(detail, op.Network) + "`" + code(op.Network) + "`"
			}
			ew.printf("| `%s` | %s `%s` | %s | %s |\n", op.Action, kindName(p, op.Resource.Kind), code(op.Resource.Name), detail, text(op.Cause))
		}
	}
	if rest := len(p.Operations) - rows; rest > 0 {
		ew.printf("\n_… and %d more operations: see the job log or `moat plan -o json`._\n", rest)
	}
	if note := secretsNote(p); note != "" {
		ew.printf("\n> %s", note)
	}
	if p.Fingerprint != "" {
		ew.printf("\n<sub>Live state fingerprint `%s`.</sub>\n", code(p.Fingerprint))
	}
	return ew.err
}

// code makes s safe inside a `code span` in a table cell: no backtick to
// end it, no pipe to end the cell, no line break.
func code(s string) string {
	return strings.NewReplacer("`", "'", "|", "¦", "\n", " ", "\r", " ").Replace(s)
}

// text escapes Markdown in a table cell, so that a name inside a cause
// (prod_acme_lan) is not turned into emphasis or a link.
var textEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "\n", " ", "\r", " ", "#", `\#`, "~", `\~`,
)

func text(s string) string { return textEscaper.Replace(s) }
