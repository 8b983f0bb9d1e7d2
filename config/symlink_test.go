package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLoadSymlinks uses a real directory: os.DirFS follows links on Open,
// so this is where reading outside the root would actually happen.
func TestLoadSymlinks(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "repo")
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(top, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Skipf("symlinks not supported here: %v", err)
		}
	}
	secret := "kind: App\nname: stolen\n"
	write("outside.yaml", secret)
	write("outside/x.yaml", secret)
	write("repo/real.yaml", "kind: App\nname: real\n")
	write("repo/tenants/acme/apps.yaml", "kind: App\nname: web\n")

	write("repo/tenants/globex/g.yaml", "kind: App\nname: globex-app\n")
	link("../../real.yaml", "tenants/acme/shared.yaml")  // a platform file into a tenant folder: refused
	link("apps.yaml", "tenants/acme/same.yaml")          // inside its own tenant folder: read under the link's name
	link("../globex/g.yaml", "tenants/acme/stolen.yaml") // another tenant's file: refused
	link("../tenants/acme/apps.yaml", "platform/p.yaml") // a tenant's file as a platform file: refused
	link("../real.yaml", "sub/up.yaml")                  // inside, through ..
	link("real.yaml", "chain1.yaml")                     // a chain of links inside
	link("chain1.yaml", "chain2.yaml")                   //
	link("ok.txt.target", "notes.txt")                   // non-YAML name, dangling: ignored
	link("real.yaml", "alias.txt")                       // non-YAML name, inside: ignored
	link("../outside.yaml", "out.yaml")                  // leaves the root
	link(filepath.Join(top, "outside.yaml"), "abs.yaml") // absolute
	link("../outside", "evil")                           // directory outside: not followed
	link("evil/x.yaml", "via.yaml")                      // leaves through another link
	link("tenants/acme", "tlink")                        // directory inside: not followed
	link("../tlink/../real.yaml", "sub/trick.yaml")      // .. after a link is physical: tenants/real.yaml
	link("loop2.yaml", "loop1.yaml")                     // a loop
	link("loop1.yaml", "loop2.yaml")                     //
	link("missing.yaml", "dangling.yaml")                // points to nothing
	link("../outside.yaml", "README")                    // non-YAML name leaving the root: reported
	link("real.yaml/x", "below.yaml")                    // a file used as a directory
	link(".", "self.yaml")                               // the root itself

	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, fsys := range map[string]fs.FS{"DirFS": os.DirFS(root), "Root": r.FS()} {
		t.Run(name, func(t *testing.T) { checkSymlinkRepo(t, fsys, top) })
	}
}

func checkSymlinkRepo(t *testing.T, fsys fs.FS, top string) {
	docs, ds := Load(fsys, Limits{})
	for _, d := range docs {
		if d.Name == "stolen" {
			t.Errorf("%s: read a file outside the root", d.File)
		}
	}
	wantDocs := []string{
		"chain1.yaml#0 App/real tenant=",
		"chain2.yaml#0 App/real tenant=",
		"real.yaml#0 App/real tenant=",
		"sub/up.yaml#0 App/real tenant=",
		"tenants/acme/apps.yaml#0 App/web tenant=acme",
		"tenants/acme/same.yaml#0 App/web tenant=acme",
		"tenants/globex/g.yaml#0 App/globex-app tenant=globex",
	}
	if got := docIDs(docs); !slices.Equal(got, wantDocs) {
		t.Errorf("documents:\n got %q\nwant %q", got, wantDocs)
	}
	absTarget := filepath.Join(top, "outside.yaml")
	want := strings.Join([]string{
		"README: input.symlink: symbolic link leads out of the repository; links must stay inside the repository, replace the link with the file itself",
		`abs.yaml: input.symlink: symbolic link points to the absolute path "` + absTarget + `"; links must stay inside the repository, replace the link with the file itself`,
		"below.yaml: input.symlink: symbolic link points below real.yaml, which is not a directory; replace the link with the file itself",
		"dangling.yaml: input.symlink: symbolic link points to missing.yaml, which does not exist; replace the link with the file itself",
		"evil: input.symlink: symbolic link leads out of the repository; links must stay inside the repository, replace the link with the file itself",
		"loop1.yaml: input.symlink: too many levels of symbolic links; replace the link with the file itself",
		"loop2.yaml: input.symlink: too many levels of symbolic links; replace the link with the file itself",
		"out.yaml: input.symlink: symbolic link leads out of the repository; links must stay inside the repository, replace the link with the file itself",
		`platform/p.yaml: input.symlink: symbolic link points to "tenants/acme/apps.yaml", outside the platform's files (everything outside tenants/); a link must stay inside its owner's folder, replace it with the file itself`,
		`self.yaml: input.symlink: symbolic link to the directory "." is not followed; move the files into the repository instead`,
		"sub/trick.yaml: input.symlink: symbolic link points to tenants/real.yaml, which does not exist; replace the link with the file itself",
		`tenants/acme/shared.yaml: input.symlink: symbolic link points to "real.yaml", outside tenants/acme/; a link must stay inside its owner's folder, replace it with the file itself`,
		`tenants/acme/stolen.yaml: input.symlink: symbolic link points to "tenants/globex/g.yaml", outside tenants/acme/; a link must stay inside its owner's folder, replace it with the file itself`,
		`tlink: input.symlink: symbolic link to the directory "tenants/acme" is not followed; move the files into the repository instead`,
		"via.yaml: input.symlink: symbolic link leads out of the repository; links must stay inside the repository, replace the link with the file itself",
	}, "\n") + "\n"
	if got := lines(ds); got != want {
		t.Errorf("diagnostics:\n--- got\n%s--- want\n%s", got, want)
	}
}
