package repogen_test

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/internal/repogen"
	"github.com/moat-platform/moat/validate"
)

// requireLoader skips while config.Load is still a stub (it returns
// nothing at all for a non-empty repository).
func requireLoader(t *testing.T) {
	t.Helper()
	fsys := fstest.MapFS{"platform.yaml": {Data: []byte("kind: Platform\nname: x\n")}}
	if docs, ds := config.Load(fsys, config.Limits{}); len(docs) == 0 && len(ds) == 0 {
		t.Skip("config.Load is not implemented yet")
	}
}

func TestValidateGenerated(t *testing.T) {
	requireLoader(t)
	for _, o := range []repogen.Options{
		{Tenants: 10, AppsPerTenant: 10},
		{Tenants: 4, AppsPerTenant: 6, LansPerTenant: 3, ReplicasPerApp: 2, FilePerApp: true},
	} {
		repo, ds := validate.Run(repogen.Generate(o), validate.Options{})
		for _, d := range ds {
			t.Errorf("%+v: %v", o, d)
		}
		if repo == nil || len(repo.Apps) != o.Tenants*o.AppsPerTenant {
			t.Errorf("%+v: validate.Run read %v", o, repo)
		}
	}
}

func TestValidateExamplePlatform(t *testing.T) {
	requireLoader(t)
	_, ds := validate.Run(os.DirFS(exampleDir), validate.Options{})
	for _, d := range ds {
		t.Error(d)
	}
}
