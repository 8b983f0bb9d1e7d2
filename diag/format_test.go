package diag

import (
	"encoding/json"
	"strings"
	"testing"
)

func init() {
	Register(
		Rule{ID: "test.error", Area: "test", Summary: "s", Fix: "f"},
		Rule{ID: "test.warning", Area: "test", Summary: "s", Fix: "f", Severity: "warning"},
	)
}

var sample = List{
	{Pos: Pos{File: "tenants/acme/web.yaml", Line: 3, Col: 5}, Rule: "test.error", Message: `image "a<b" is not allowed`},
	{Pos: Pos{File: "platform.yaml", Line: 7}, Rule: "test.warning", Message: "100% sure\nsecond line\r"},
	{Pos: Pos{File: "odd,name:x%.yaml"}, Rule: "test.error", Message: "a: b, c"},
	{Rule: "test.error", Message: "whole repository"},
}

func TestWriteText(t *testing.T) {
	for _, tt := range []struct {
		l    List
		want string
	}{
		{nil, ""},
		{sample[:1], "tenants/acme/web.yaml:3:5: test.error: image \"a<b\" is not allowed\n1 problem\n"},
		{List{sample[0], sample[3]}, "tenants/acme/web.yaml:3:5: test.error: image \"a<b\" is not allowed\n" +
			"<repo>: test.error: whole repository\n2 problems\n"},
	} {
		var b strings.Builder
		if err := Write(&b, tt.l, "text"); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("got\n%q\nwant\n%q", b.String(), tt.want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b strings.Builder
	if err := Write(&b, nil, "json"); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"version\": 1,\n  \"valid\": true,\n  \"diagnostics\": []\n}\n"; b.String() != want {
		t.Errorf("empty: got %q, want %q", b.String(), want)
	}

	b.Reset()
	if err := Write(&b, sample[:1], "json"); err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "valid": false,
  "diagnostics": [
    {
      "file": "tenants/acme/web.yaml",
      "line": 3,
      "col": 5,
      "rule": "test.error",
      "message": "image \"a<b\" is not allowed"
    }
  ]
}
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	// Round trip: the output is the List.
	b.Reset()
	if err := Write(&b, sample, "json"); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Version     int
		Valid       bool
		Diagnostics List
	}
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.Version != 1 || back.Valid || len(back.Diagnostics) != len(sample) {
		t.Fatalf("round trip: %+v", back)
	}
	for i := range sample {
		if back.Diagnostics[i] != sample[i] {
			t.Errorf("round trip %d: %+v != %+v", i, back.Diagnostics[i], sample[i])
		}
	}
}

func TestWriteGitHub(t *testing.T) {
	var b strings.Builder
	if err := Write(&b, sample, "github"); err != nil {
		t.Fatal(err)
	}
	want := "::error file=tenants/acme/web.yaml,line=3,col=5,title=test.error::image \"a<b\" is not allowed\n" +
		"::warning file=platform.yaml,line=7,title=test.warning::100%25 sure%0Asecond line%0D\n" +
		"::error file=odd%2Cname%3Ax%25.yaml,title=test.error::a: b, c\n" +
		"::error title=test.error::whole repository\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := Write(&b, nil, "github"); err != nil || b.Len() != 0 {
		t.Errorf("empty list: %q, %v", b.String(), err)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	var b strings.Builder
	err := Write(&b, sample, "xml")
	if err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) || b.Len() != 0 {
		t.Errorf("got %v, output %q", err, b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

var errFail = &Error{List: List{{Rule: "x", Message: "disk full"}}}

func TestWriteError(t *testing.T) {
	for _, f := range Formats {
		if err := Write(failWriter{}, sample, f); err == nil {
			t.Errorf("%s: write error lost", f)
		}
	}
}

// TestTextCannotBeForged: a file name or message with a newline (a file
// named "x\ntenants/acme/api.yaml:1:1: fake.rule: ...") stays on its own
// line, escaped, so no reader of the text can be shown a forged finding.
func TestTextCannotBeForged(t *testing.T) {
	forged := "tenants/acme/x\ntenants/acme/api.yaml:1:1: fake.rule: all good"
	l := List{{Pos: Pos{File: forged, Line: 1}, Rule: "test.error", Message: "name\rwith\x1b[2Kcontrol\ncharacters"}}
	var b strings.Builder
	if err := Write(&b, l, "text"); err != nil {
		t.Fatal(err)
	}
	want := `"tenants/acme/x\ntenants/acme/api.yaml:1:1: fake.rule: all good":1: test.error: name\rwith\x1b[2Kcontrol\ncharacters` + "\n1 problem\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	var g strings.Builder
	if err := Write(&g, l, "github"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(g.String(), "\n"); n != 1 {
		t.Errorf("github format has %d lines, want 1:\n%s", n, g.String())
	}
}
