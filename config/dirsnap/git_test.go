package dirsnap

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func gitCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// TestCheckGit: a config folder inside a git work tree is compared with
// HEAD; edits, new and deleted config files are named, other files and
// dot-folders are not.
func TestCheckGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git binary to build the test repository")
	}
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	cfg := filepath.Join(repo, "config")
	write(t, cfg, "a.yaml", "kind: Lan\nname: a\n")
	write(t, cfg, "b.yaml", "kind: Lan\nname: b\n")
	write(t, cfg, "c.yaml", "kind: Lan\nname: c\n")
	write(t, cfg, "README.md", "docs\n")
	write(t, repo, "outside.yaml", "kind: Lan\n")
	if err := os.Symlink("a.yaml", filepath.Join(cfg, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, repo, "add", "-A")
	gitCmd(t, repo, "commit", "-q", "-m", "one")

	d, err := CheckGit(cfg, mustRead(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || !d.Clean() || len(d.Head) != 40 {
		t.Fatalf("fresh checkout: %+v, want clean at a commit", d)
	}

	write(t, cfg, "a.yaml", "kind: Lan\nname: a2\n")
	write(t, cfg, "new.yaml", "kind: Lan\nname: n\n")
	write(t, cfg, "README.md", "changed docs are not config\n")
	write(t, cfg, ".hidden/x.yaml", "kind: Lan\n")
	if err := os.Remove(filepath.Join(cfg, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	d, err = CheckGit(cfg, mustRead(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := &GitDrift{Head: d.Head, Modified: []string{"a.yaml"}, Added: []string{"new.yaml"}, Deleted: []string{"b.yaml"}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("drift %+v, want %+v", d, want)
	}
	if s := d.String(); !strings.Contains(s, "modified: a.yaml") || !strings.Contains(s, "not committed: new.yaml") || !strings.Contains(s, "deleted: b.yaml") {
		t.Errorf("message %q does not name the files", s)
	}

	// Not a work tree: no drift, no error.
	plain := t.TempDir()
	write(t, plain, "a.yaml", "kind: Lan\n")
	if d, err := CheckGit(plain, mustRead(t, plain)); d != nil || err != nil {
		t.Fatalf("outside git: %+v, %v", d, err)
	}
}
