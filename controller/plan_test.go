package controller_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the plan goldens of test/fixtures/plans/config")

// TestPlanFromConfig runs the plan cases written as config: each
// test/fixtures/plans/config/<case>.txtar starts from the example platform
// (examples/platform), and its comment is a script:
//
//	apply            apply the config as it is now to the in-memory engine
//	stop|rm NAME     drift made by hand on the engine
//	connect NET NAME
//	run NAME NET     an unmanaged container on a LAN
//	run-spoofed NAME NET  the same, with moat's labels from its image
//	delete PATH      remove a config file or folder
//	edit             overlay the archive's files (except plan.golden) on the config
//	rotate T/NAME V  give a secret a new value
//	plan             the plan now must equal the archive's plan.golden
//
// The observed state is what the engine holds after the script's steps,
// so every case plans against a state moat itself produced.
func TestPlanFromConfig(t *testing.T) {
	cases, _ := filepath.Glob("../test/fixtures/plans/config/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	base := loadDir(t, "../examples/platform")
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg := fstest.MapFS{}
			for k, v := range base {
				cfg[k] = &fstest.MapFile{Data: v.Data}
			}
			secrets := t.TempDir()
			if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
				t.Fatal(err)
			}
			eng := fake.New()
			ctx := context.Background()
			var got string
			for _, line := range strings.Split(string(ar.Comment), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.HasPrefix(f[0], "#") {
					continue
				}
				switch f[0] {
				case "apply":
					tg, obs, p := plan(t, eng, cfg, secrets)
					if _, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{AllowMassDelete: true}); err != nil {
						t.Fatalf("apply %s: %v", tg.Revision, err)
					}
				case "stop":
					must(t, eng.Stop(f[1]))
				case "rm":
					must(t, eng.Remove(f[1]))
				case "connect":
					must(t, eng.ConnectUnmanaged(f[1], f[2]))
				case "run":
					_, err := eng.AddUnmanagedContainer(f[1], "localhost/moat-examples/probe:1", f[2:]...)
					must(t, err)
				case "run-spoofed":
					// As if made from an image that carries moat's labels.
					labels := map[string]string{"org.moat.managed-by": "moat", "org.moat.instance": "demo", "org.moat.tenant": "acme"}
					_, err := eng.AddContainer(f[1], "localhost/evil:1", labels, f[2:]...)
					must(t, err)
				case "delete":
					for k := range cfg {
						if k == f[1] || strings.HasPrefix(k, f[1]+"/") {
							delete(cfg, k)
						}
					}
				case "edit":
					for _, af := range ar.Files {
						if af.Name != "plan.golden" {
							cfg[af.Name] = &fstest.MapFile{Data: af.Data}
						}
					}
				case "rotate":
					must(t, os.WriteFile(filepath.Join(secrets, f[1]), []byte(f[2]), 0o600))
				case "plan":
					_, _, p := plan(t, eng, cfg, secrets)
					got = p.String()
				default:
					t.Fatalf("unknown step %q", line)
				}
			}
			golden(t, file, ar, got)
		})
	}
}

func plan(t *testing.T, eng *fake.Engine, cfg fstest.MapFS, secrets string) (*controller.Target, *state.Observed, *reconcile.Plan) {
	t.Helper()
	tg, err := controller.Load(cfg, controller.LoadOptions{SecretsDir: secrets})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	obs, err := eng.Observe(context.Background(), tg.Desired.Instance, controller.NeedVolumes(tg.Repo))
	if err != nil {
		t.Fatal(err)
	}
	p, err := controller.Plan(tg, obs, controller.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tg, obs, p
}

func golden(t *testing.T, file string, ar *txtar.Archive, got string) {
	t.Helper()
	var want *txtar.File
	for i := range ar.Files {
		if ar.Files[i].Name == "plan.golden" {
			want = &ar.Files[i]
		}
	}
	if *update {
		if want == nil {
			ar.Files = append(ar.Files, txtar.File{Name: "plan.golden"})
			want = &ar.Files[len(ar.Files)-1]
		}
		want.Data = []byte(got)
		must(t, os.WriteFile(file, txtar.Format(ar), 0o644))
		return
	}
	if want == nil {
		t.Fatalf("%s has no plan.golden (run with -update)", file)
	}
	if got != string(want.Data) {
		t.Errorf("plan differs from %s\n--- got\n%s--- want\n%s", file, got, want.Data)
	}
}

func loadDir(t *testing.T, dir string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("step: %w", err))
	}
}
