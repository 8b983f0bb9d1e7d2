package validate_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/validate"
)

// FuzzValidate runs the whole validator (loader, CUE schema, Go rules) on
// a valid repository with one tenant file replaced by fuzzed bytes: no
// input may panic, and every diagnostic must name a file and a registered
// rule. Seeds: every YAML file of the fixtures.
func FuzzValidate(f *testing.F) {
	base := fstest.MapFS{}
	root := filepath.Join(fixtures, "valid-minimal", "repo")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		base[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	seeds, _ := filepath.Glob(filepath.Join(fixtures, "*", "repo", "tenants", "*", "*.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{}
		for k, v := range base {
			fsys[k] = v
		}
		fsys["tenants/acme/apps.yaml"] = &fstest.MapFile{Data: data}
		_, ds := validate.Run(fsys, validate.Options{Workers: 1})
		for _, d := range ds {
			if d.File == "" {
				t.Fatalf("diagnostic without a file: %v", d)
			}
			if _, ok := diag.Lookup(d.Rule); !ok {
				t.Fatalf("diagnostic with unregistered rule: %v", d)
			}
		}
	})
}
