// Package render shows a plan to people and machines: Text (terraform-like,
// for a terminal), JSON (the versioned format, also the saved-plan file
// that `apply` reads back with ReadPlan) and Markdown (a pull-request
// comment). Rendering never influences apply: it only reads the plan.
//
// No secret value can appear: a plan carries none (secrets are file paths
// and keyed digests), and Text and Markdown print no container spec at all.
package render

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

// legend explains the symbols, in plan order of importance.
var legend = []struct {
	action reconcile.Action
	text   string
}{
	{reconcile.Create, "create"},
	{reconcile.Replace, "destroy and then create replacement"},
	{reconcile.Update, "update in place"},
	{reconcile.Delete, "destroy"},
	{reconcile.Report, "report only, moat leaves it as it is"},
}

// Text writes the plan for a terminal, like `terraform plan`: a legend of
// the symbols used, one aligned line per operation with its cause, and the
// summary. Reports come in their own section: they change nothing.
func Text(w io.Writer, p *reconcile.Plan) error {
	ew := &errWriter{w: w}
	s := p.Summary()
	if len(p.Operations) == 0 {
		ew.printf("No changes. Live state matches the configuration.\n")
		ew.printf("%s", secretsNote(p))
		return ew.err
	}
	used := map[reconcile.Action]bool{}
	for i := range p.Operations {
		used[p.Operations[i].Action] = true
	}
	ew.printf("moat plan for instance %s%s%s\n", p.Instance, engineNote(p), revision(p.Revision))
	ew.printf("Resource actions are indicated with the following symbols:\n")
	for _, l := range legend {
		if used[l.action] {
			text := l.text
			if l.action == reconcile.Update && p.Engine == state.EngineSwarm {
				text += " (a service's spec: a rolling update)"
			}
			ew.printf("  %-3s %s\n", l.action, text)
		}
	}
	if !p.Empty() {
		ew.printf("\nmoat will perform these actions:\n\n")
		table(ew, p, func(a reconcile.Action) bool { return a != reconcile.Report })
	}
	if s.Report > 0 {
		ew.printf("\nmoat sees this drift and leaves it as it is (--evict-unmanaged disconnects unmanaged containers):\n\n")
		table(ew, p, func(a reconcile.Action) bool { return a == reconcile.Report })
	}
	ew.printf("\n")
	if p.Empty() {
		ew.printf("No changes to apply; %d reported.\n", s.Report)
	} else {
		ew.printf("Plan: %s.\n", s.Counts())
	}
	ew.printf("%s", secretsNote(p))
	return ew.err
}

// secretsNote warns that a plan made without the secret store cannot show
// secret rotations and cannot be applied; "" otherwise.
func secretsNote(p *reconcile.Plan) string {
	if !p.SecretsUnknown {
		return ""
	}
	return "Note: planned without the secret store (--no-secrets): secret rotations are not shown, and this plan cannot be applied.\n"
}

// table writes the operations that keep passes, aligned in columns.
func table(ew *errWriter, p *reconcile.Plan, keep func(reconcile.Action) bool) {
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	for i := range p.Operations {
		op := &p.Operations[i]
		if keep(op.Action) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t# %s\n", op.Action, kindName(p, op.Resource.Kind), op.Resource.Name, op.Detail(), oneLine(op.Cause))
		}
	}
	tw.Flush()
}

// kindName is how a kind is shown: on Swarm a container is a service
// (one per replica), and saying so tells the reader that an update is a
// rolling one.
func kindName(p *reconcile.Plan, k reconcile.Kind) string {
	if k == reconcile.KindContainer && p.Engine == state.EngineSwarm {
		return "service"
	}
	return string(k)
}

// engineNote names a plan's engine in its heading ("" for one host).
func engineNote(p *reconcile.Plan) string {
	if p.Engine == "" {
		return ""
	}
	return " on " + p.Engine
}

func revision(r string) string {
	if r == "" {
		return ""
	}
	return " at revision " + r
}

// oneLine keeps a cause on its line whatever it holds: a cause never
// should span lines, but names come from user config.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

// errWriter keeps the first write error so that renderers can write
// freely and report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
