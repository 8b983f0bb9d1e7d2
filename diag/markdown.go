package diag

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// WriteMarkdown writes l as a Markdown section for a pull-request comment:
// a heading, the count, and a table with one row per diagnostic whose
// position links to the file and line. base is prepended to each file's
// path in links (for GitHub,
// https://github.com/OWNER/REPO/blob/SHA/); "" leaves links relative. An
// empty list writes a one-line "valid" section.
//
// Everything taken from the repository (file names, messages that quote
// values) is escaped: control characters as Go escapes, and the characters
// that would end a table cell or a link, so a hostile file name cannot add
// rows, links or markup to the comment.
func WriteMarkdown(w io.Writer, l List, base string) error {
	var b strings.Builder
	b.WriteString("### moat: the configuration is ")
	if len(l) == 0 {
		b.WriteString("valid\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("invalid\n\n")
	if len(l) == 1 {
		b.WriteString("1 problem; nothing was planned or applied.\n\n")
	} else {
		fmt.Fprintf(&b, "%d problems; nothing was planned or applied.\n\n", len(l))
	}
	b.WriteString("| where | rule | problem |\n|---|---|---|\n")
	for _, d := range l {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", mdWhere(d.Pos, base), mdCode(d.Rule), mdText(d.Message))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdWhere is the position as a link to the file at its line.
func mdWhere(p Pos, base string) string {
	if p.File == "" {
		return "(repository)"
	}
	text := mdText(p.String())
	var u strings.Builder
	u.WriteString(base)
	for i, seg := range strings.Split(p.File, "/") {
		if i > 0 {
			u.WriteByte('/')
		}
		u.WriteString(url.PathEscape(seg))
	}
	if p.Line > 0 {
		u.WriteString("#L" + strconv.Itoa(p.Line))
	}
	return "[" + text + "](" + strings.NewReplacer("(", "%28", ")", "%29").Replace(u.String()) + ")"
}

// mdEscaper escapes what Markdown (GitHub flavour) would read as markup in
// a table cell: the cell separator, link brackets, HTML, emphasis.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;",
	"*", `\*`, "_", `\_`, "~", `\~`, "#", `\#`, "!", `\!`,
)

// mdText escapes text for a table cell; backquoted spans (`field`) are
// kept as code, with their content taken literally.
func mdText(s string) string {
	s = escapeControl(s)
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 {
		// An odd number of backquotes: no code spans at all.
		return mdEscaper.Replace(strings.ReplaceAll(s, "`", "'"))
	}
	for i := range parts {
		if i%2 == 0 {
			parts[i] = mdEscaper.Replace(parts[i])
		} else {
			parts[i] = strings.ReplaceAll(parts[i], "|", `\|`)
		}
	}
	return strings.Join(parts, "`")
}

// mdCode makes s safe inside a code span in a table cell.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", `\|`).Replace(escapeControl(s))
}
