package validate_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/validate"
)

var update = flag.Bool("update", false, "rewrite the want.txt goldens of test/fixtures/validate")

const fixtures = "../test/fixtures/validate"

// TestFixtures runs every case of test/fixtures/validate: <case>/repo is a
// config repository, <case>/want.txt its expected diagnostics, one per line
// (empty for a valid repository).
func TestFixtures(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(fixtures, "*", "repo"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no fixtures under %s (%v)", fixtures, err)
	}
	for _, repo := range cases {
		dir := filepath.Dir(repo)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			var opts validate.Options
			// limits.json shrinks the hostile-input limits so that a small
			// committed repo can show them.
			if b, err := os.ReadFile(filepath.Join(dir, "limits.json")); err == nil {
				if err := json.Unmarshal(b, &opts.Limits); err != nil {
					t.Fatalf("limits.json: %v", err)
				}
			}
			_, ds := validate.Run(os.DirFS(repo), opts)
			got := render(ds)
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("read golden: %v (run go test ./validate -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", wantFile, got, want)
			}
		})
	}
}

// TestEveryRuleHasAFailingFixture keeps the catalogue honest: a rule that
// no fixture triggers is a rule nobody has seen work.
func TestEveryRuleHasAFailingFixture(t *testing.T) {
	wants, _ := filepath.Glob(filepath.Join(fixtures, "*", "want.txt"))
	var all strings.Builder
	for _, w := range wants {
		b, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, r := range diag.Rules() {
		if untestable[r.ID] != "" {
			continue
		}
		if !strings.Contains(all.String(), ": "+r.ID+": ") {
			t.Errorf("rule %s has no failing fixture under %s", r.ID, fixtures)
		}
	}
}

// untestable names the rules no committed file can show, with the test
// that covers them instead.
var untestable = map[string]string{
	"input.file": "config TestLoad: a pipe or device is never opened (git cannot store one)",
}

func render(ds diag.List) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}
