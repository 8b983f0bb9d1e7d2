package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
)

func repo(secrets map[string][]string) *config.Repo {
	r := &config.Repo{}
	for tenant, names := range secrets {
		r.Apps = append(r.Apps, &config.App{Tenant: tenant, Secrets: names})
	}
	return r
}

func write(t *testing.T, dir, rel, value string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDigestsKeyedStableAndRotating(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "acme/db", "s3cret")
	write(t, dir, "globex/db", "s3cret")
	r := repo(map[string][]string{"acme": {"db"}, "globex": {"db"}})
	a, err := Digests(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 2 || a["acme/db"] == "" {
		t.Fatalf("digests = %v", a)
	}
	for _, d := range a {
		if strings.Contains(d, "s3cret") {
			t.Fatal("digest contains the value")
		}
	}
	b, _ := Digests(dir, r)
	if a["acme/db"] != b["acme/db"] {
		t.Error("digest not stable across calls (key not reused?)")
	}
	write(t, dir, "acme/db", "rotated")
	c, _ := Digests(dir, r)
	if c["acme/db"] == a["acme/db"] || c["globex/db"] != a["globex/db"] {
		t.Errorf("rotation: acme %s -> %s, globex %s -> %s", a["acme/db"], c["acme/db"], a["globex/db"], c["globex/db"])
	}
	// Another store, another key: the same value digests differently, so a
	// digest says nothing about the value without the key.
	other := t.TempDir()
	write(t, other, "acme/db", "rotated")
	write(t, other, "globex/db", "s3cret")
	d, _ := Digests(other, r)
	if d["acme/db"] == c["acme/db"] {
		t.Error("digest does not depend on the store's key")
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
}

func TestDigestsErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "acme/big", strings.Repeat("x", MaxSecretBytes+1))
	write(t, dir, "globex/db", "theirs")
	if err := os.Symlink(filepath.Join(dir, "globex/db"), filepath.Join(dir, "acme/link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, tenant, name, want string
	}{
		{"", "acme", "db", "no secret store"},
		{dir, "acme", "missing", "not in the secret store"},
		{dir, "acme", "big", "larger than"},
		{dir, "acme", "link", "not a regular file"},
	} {
		_, err := Digests(tc.dir, repo(map[string][]string{tc.tenant: {tc.name}}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: err = %v, want %q", tc.tenant, tc.name, err, tc.want)
		}
	}
	if d, err := Digests("", repo(nil)); err != nil || len(d) != 0 {
		t.Errorf("no secrets in use: %v %v", d, err)
	}
}
