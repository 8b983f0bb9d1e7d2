package watch

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// upstream is a repository made with go-git (no git binary), served to the
// source as a local path.
type upstream struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &upstream{t: t, dir: dir, repo: repo}
}

// commit writes files (content "" removes) and commits, signed by key
// when not nil.
func (u *upstream) commit(msg string, key *openpgp.Entity, files map[string]string) string {
	u.t.Helper()
	wt, err := u.repo.Worktree()
	if err != nil {
		u.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(u.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		u.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{AllowEmptyCommits: true, SignKey: key,
		Author: &object.Signature{Name: "t", Email: "t@example.test", When: time.Now()}})
	if err != nil {
		u.t.Fatal(err)
	}
	return h.String()
}

// reset moves main to an older commit (a force push).
func (u *upstream) reset(to string) {
	u.t.Helper()
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), plumbing.NewHash(to))
	if err := u.repo.Storer.SetReference(ref); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) source(opts GitOptions) *GitSource {
	u.t.Helper()
	opts.URL = u.dir
	opts.CacheDir = filepath.Join(u.t.TempDir(), "cache")
	s, err := NewGitSource(opts)
	if err != nil {
		u.t.Fatal(err)
	}
	return s
}

func TestGitSourceReadsTheCommitTreeWithoutGitBinary(t *testing.T) {
	t.Setenv("PATH", "") // no git binary can be found
	u := newUpstream(t)
	c1 := u.commit("one", nil, map[string]string{"cfg/a.yaml": "a: 1\n", "cfg/sub/b.yml": "b: 2\n", "cfg/README.md": "x", "cfg/.hidden/c.yaml": "c", "other.yaml": "o"})
	src := u.source(GitOptions{Path: "cfg"})
	rev, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.ID != c1 || rev.Summary != "one" {
		t.Fatalf("revision %s %q, want %s", rev.ID, rev.Summary, c1)
	}
	var got []string
	fs.WalkDir(rev.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return err
	})
	if strings.Join(got, ",") != "a.yaml,sub/b.yml" {
		t.Errorf("files %v, want a.yaml and sub/b.yml only", got)
	}
	if b, _ := fs.ReadFile(rev.FS, "sub/b.yml"); string(b) != "b: 2\n" {
		t.Errorf("content %q", b)
	}
	// Fetching again without a change returns the same revision.
	rev2, err := src.Fetch(context.Background(), c1)
	if err != nil || rev2 != rev {
		t.Errorf("refetch: %v %v", rev2, err)
	}
	c2 := u.commit("two", nil, map[string]string{"cfg/a.yaml": "a: 2\n"})
	rev3, err := src.Fetch(context.Background(), c1)
	if err != nil || rev3.ID != c2 {
		t.Fatalf("fast-forward: %v %v", rev3, err)
	}
}

func TestGitSourceRefusesForcePushUnlessAllowed(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("one", nil, map[string]string{"a.yaml": "a: 1\n"})
	c2 := u.commit("two", nil, map[string]string{"a.yaml": "a: 2\n"})
	src := u.source(GitOptions{})
	if _, err := src.Fetch(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	u.reset(c1)
	c3 := u.commit("rewritten", nil, map[string]string{"a.yaml": "a: 3\n"})
	_, err := src.Fetch(context.Background(), c2)
	var re *RefusedError
	if !errors.As(err, &re) || re.Revision != c3 || !strings.Contains(err.Error(), "force push") {
		t.Fatalf("force push: %v, want a refusal of %s", err, c3)
	}
	allowed := u.source(GitOptions{AllowForcePush: true})
	if rev, err := allowed.Fetch(context.Background(), c2); err != nil || rev.ID != c3 {
		t.Fatalf("allowed force push: %v %v", rev, err)
	}
}

func newKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, buf.String()
}

func writeTrust(t *testing.T, keys map[string]string, body string) *Trust {
	t.Helper()
	dir := t.TempDir()
	for name, armored := range keys {
		if err := os.WriteFile(filepath.Join(dir, name+".asc"), []byte(armored), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "trust.yaml")
	os.WriteFile(file, []byte(body), 0o644)
	tr, err := LoadTrust(file)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestPathScopedTrust: a tenant key may sign its own folder only; a
// platform key anything; unsigned commits and unknown keys never; one bad
// commit refuses the whole range.
func TestPathScopedTrust(t *testing.T) {
	platform, platformPub := newKey(t, "platform")
	acme, acmePub := newKey(t, "acme")
	stranger, _ := newKey(t, "stranger")
	trust := writeTrust(t, map[string]string{"platform": platformPub, "acme": acmePub},
		"platform: [platform.asc]\ntenants:\n  acme: [acme.asc]\n")

	u := newUpstream(t)
	base := u.commit("platform base", platform, map[string]string{"platform.yaml": "kind: Platform\n", "tenants/acme/web.yaml": "a\n", "tenants/globex/app.yaml": "g\n"})
	src := u.source(GitOptions{Trust: trust})
	if _, err := src.Fetch(context.Background(), ""); err != nil {
		t.Fatalf("platform-signed first revision: %v", err)
	}
	fetch := func() error { _, err := src.Fetch(context.Background(), base); return err }

	// acme's key on acme's folder: applied.
	ok := u.commit("acme edit", acme, map[string]string{"tenants/acme/web.yaml": "b\n"})
	if err := fetch(); err != nil {
		t.Fatalf("acme key on tenants/acme: %v", err)
	}
	cases := []struct {
		name string
		key  *openpgp.Entity
		file string
		want string
	}{
		{"acme key on globex", acme, "tenants/globex/app.yaml", "may not change tenants/globex/app.yaml"},
		{"acme key on a platform file", acme, "platform.yaml", "may not change platform.yaml"},
		{"unsigned", nil, "tenants/acme/web.yaml", "is not signed"},
		{"unknown key", stranger, "tenants/acme/web.yaml", "no trusted key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u.reset(ok)
			bad := u.commit(tc.name, tc.key, map[string]string{tc.file: tc.name + "\n"})
			// A good commit on top does not launder the bad one.
			head := u.commit("acme on top", acme, map[string]string{"tenants/acme/web.yaml": tc.name + " top\n"})
			err := fetch()
			var re *RefusedError
			if !errors.As(err, &re) || re.Revision != head {
				t.Fatalf("refusal: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bad[:12]) || !strings.Contains(err.Error(), "nothing of the range") {
				t.Errorf("message %q lacks %q or the commit %s", err, tc.want, bad[:12])
			}
		})
	}
	t.Run("platform key may change anything", func(t *testing.T) {
		u.reset(ok)
		u.commit("platform everywhere", platform, map[string]string{"platform.yaml": "kind: Platform\n# x\n", "tenants/globex/app.yaml": "p\n"})
		if err := fetch(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the first revision must be platform-signed", func(t *testing.T) {
		u.reset(ok)
		fresh := u.source(GitOptions{Trust: trust})
		if _, err := fresh.Fetch(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "platform key") {
			t.Fatalf("tenant-signed first revision: %v", err)
		}
	})
}
