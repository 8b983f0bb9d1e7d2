package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateFixtures runs `moat validate` on every fixture of
// test/fixtures/validate: a valid one exits 0 and prints nothing on stdout;
// an invalid one exits 1 and prints exactly its golden diagnostics (then
// the "N problems" line).
func TestValidateFixtures(t *testing.T) {
	cases, _ := filepath.Glob("../../test/fixtures/validate/*/repo")
	if len(cases) < 30 {
		t.Fatalf("only %d fixtures", len(cases))
	}
	for _, repo := range cases {
		dir := filepath.Dir(repo)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "limits.json")); err == nil {
				t.Skip("needs shrunken limits: covered by validate.TestFixtures")
			}
			want, err := os.ReadFile(filepath.Join(dir, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := execute([]string{"validate", repo}, &out, &errb)
			if len(want) == 0 {
				if code != 0 || out.String() != "valid: "+repo+"\n" {
					t.Fatalf("valid fixture: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
				}
				return
			}
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
			}
			got := out.String()
			n := strings.Count(string(want), "\n")
			lines := strings.SplitAfter(got, "\n")
			if len(lines) < n || strings.Join(lines[:n], "") != string(want) {
				t.Fatalf("stdout differs from want.txt\n--- got\n%s--- want\n%s", got, want)
			}
			if rest := strings.Join(lines[n:], ""); !strings.HasSuffix(strings.TrimSpace(rest), "problem") && !strings.HasSuffix(strings.TrimSpace(rest), "problems") {
				t.Errorf("no summary line after the diagnostics: %q", rest)
			}
		})
	}
}
