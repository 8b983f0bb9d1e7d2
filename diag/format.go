package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Formats are the values Write accepts, for command-line help.
var Formats = []string{"text", "json", "github", "markdown"}

// JSONVersion is the version of the "json" format. It changes only when a
// field is removed or changes meaning; new fields keep the version.
const JSONVersion = 1

// Write writes l to w in format, in the list's order (sort it first):
//
//   - "text": one Diagnostic.String per line, then "N problem(s)" when the
//     list is not empty; nothing at all for an empty list, so a valid repo
//     prints nothing and a script can test the output for emptiness.
//   - "json": {"version":1,"valid":bool,"diagnostics":[{file,line,col,rule,message}]};
//     "diagnostics" is [] (never null) when valid.
//   - "github": GitHub Actions workflow commands, one per diagnostic
//     (::error file=F,line=L,col=C,title=RULE::MESSAGE), which annotate the
//     pull request's diff; a rule registered as a warning uses ::warning.
//   - "markdown": a section for a pull-request comment (WriteMarkdown with
//     relative links).
func Write(w io.Writer, l List, format string) error {
	var err error
	switch format {
	case "text":
		err = writeText(w, l)
	case "json":
		err = writeJSON(w, l)
	case "github":
		err = writeGitHub(w, l)
	case "markdown":
		err = WriteMarkdown(w, l, "")
	default:
		return fmt.Errorf("diag: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return fmt.Errorf("diag: write %s: %w", format, err)
	}
	return nil
}

func writeText(w io.Writer, l List) error {
	if len(l) == 0 {
		return nil
	}
	var b strings.Builder
	for _, d := range l {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	if len(l) == 1 {
		b.WriteString("1 problem\n")
	} else {
		fmt.Fprintf(&b, "%d problems\n", len(l))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonReport is the "json" format; field order is the output order.
type jsonReport struct {
	Version     int          `json:"version"`
	Valid       bool         `json:"valid"`
	Diagnostics []Diagnostic `json:"diagnostics"`
}

func writeJSON(w io.Writer, l List) error {
	r := jsonReport{Version: JSONVersion, Valid: len(l) == 0, Diagnostics: []Diagnostic(l)}
	if r.Diagnostics == nil {
		r.Diagnostics = []Diagnostic{}
	}
	enc := json.NewEncoder(w)
	// Messages quote YAML like "a<b"; HTML escaping would only garble them.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func writeGitHub(w io.Writer, l List) error {
	var b strings.Builder
	for _, d := range l {
		cmd := "error"
		if r, ok := Lookup(d.Rule); ok && r.Severity == "warning" {
			cmd = "warning"
		}
		var props []string
		if d.File != "" {
			props = append(props, "file="+escapeProperty(d.File))
			if d.Line > 0 {
				props = append(props, "line="+strconv.Itoa(d.Line))
				if d.Col > 0 {
					props = append(props, "col="+strconv.Itoa(d.Col))
				}
			}
		}
		props = append(props, "title="+escapeProperty(d.Rule))
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, strings.Join(props, ","), escapeData(d.Message))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeData and escapeProperty follow the runner's rules for workflow
// commands (actions/toolkit, command.ts): a message may not contain a
// newline or a raw %, and a property value may not contain : or , either,
// since those end the value.
var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

func escapeData(s string) string     { return dataEscaper.Replace(s) }
func escapeProperty(s string) string { return propertyEscaper.Replace(s) }
