package controller_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/state"
)

// converge applies the example platform to eng and returns what it needs
// to plan again.
func converge(t *testing.T) (*fake.Engine, func() (*controller.Target, *state.Observed, string), func() error) {
	t.Helper()
	cfg := loadDir(t, "../examples/platform")
	secrets := t.TempDir()
	if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
		t.Fatal(err)
	}
	eng := fake.New()
	replan := func() (*controller.Target, *state.Observed, string) {
		tg, obs, p := plan(t, eng, cfg, secrets)
		return tg, obs, p.String()
	}
	doApply := func() error {
		_, obs, p := plan(t, eng, cfg, secrets)
		_, err := controller.Apply(context.Background(), eng, p, obs, controller.ApplyOptions{})
		return err
	}
	if err := doApply(); err != nil {
		t.Fatal(err)
	}
	return eng, replan, doApply
}

// TestLanRemovedByHandHealsInOneApply is issue 6's reproduction on the
// in-memory engine (test/e2e has it on the real one): the containers of a
// LAN are stopped and the LAN removed by hand; they keep endpoints that
// point at the removed network's id. One apply must bring everything back,
// acme's gateway to the shared log sink included, and the next plan is
// empty.
func TestLanRemovedByHandHealsInOneApply(t *testing.T) {
	eng, replan, doApply := converge(t)
	const lan = "demo.acme.backend"
	_, obs, _ := replan()
	var onLan []string
	for _, c := range obs.Containers {
		if slices.Contains(c.Networks, lan) {
			onLan = append(onLan, c.Name)
			if err := eng.Stop(c.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	const gw = "demo.acme.logging.gateway"
	if !slices.Contains(onLan, gw) {
		t.Fatalf("acme's gateway to the log sink is not on %s: %v", lan, onLan)
	}
	if err := eng.RemoveNetworkByHand(lan); err != nil {
		t.Fatal(err)
	}
	_, _, p := replan()
	t.Logf("plan:\n%s", p)
	for _, want := range []string{
		"+   network/" + lan + " create",
		"~   container/" + gw + " disconnect " + lan + "  # attached to a removed network",
		"~   container/" + gw + " connect " + lan + "  # network " + lan + " was removed by hand",
		"~   container/" + gw + " start",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if err := doApply(); err != nil {
		t.Fatalf("one apply did not heal: %v", err)
	}
	if _, _, p := replan(); p != "No changes.\n" {
		t.Fatalf("after one apply:\n%s", p)
	}
	for _, name := range onLan {
		c, _ := eng.Container(name)
		if c.State != "running" {
			t.Errorf("%s is %s", name, c.State)
		}
	}
}

// TestPausedIsUnpaused: a container paused by hand is resumed in place,
// the same container (id), not recreated.
func TestPausedIsUnpaused(t *testing.T) {
	eng, replan, doApply := converge(t)
	before, _ := eng.Container("demo.acme.api.1")
	if err := eng.SetState("demo.acme.api.1", "paused"); err != nil {
		t.Fatal(err)
	}
	if _, _, p := replan(); !strings.Contains(p, "~   container/demo.acme.api.1 unpause  # paused") || strings.Contains(p, "recreate  #") {
		t.Fatalf("plan:\n%s", p)
	}
	if err := doApply(); err != nil {
		t.Fatal(err)
	}
	after, _ := eng.Container("demo.acme.api.1")
	if after.ID != before.ID || after.State != "running" {
		t.Fatalf("after apply: id %s (was %s), state %s", after.ID, before.ID, after.State)
	}
	if _, _, p := replan(); p != "No changes.\n" {
		t.Fatalf("after one apply:\n%s", p)
	}
}

// TestVolumeRenameNeedsItsOwnFlag: a one-letter rename of a volume in
// config never removes the old one silently. Without runtime.pruneVolumes
// the plan says it is kept; with it, the plan says it is removed and the
// apply is refused unless --allow-volume-delete is given to that apply.
func TestVolumeRenameNeedsItsOwnFlag(t *testing.T) {
	for _, prune := range []bool{false, true} {
		cfg := loadDir(t, "../examples/platform")
		secrets := t.TempDir()
		if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
			t.Fatal(err)
		}
		if prune {
			p := cfg["platform.yaml"]
			p.Data = []byte(strings.Replace(string(p.Data), "  stopTimeout: 2", "  stopTimeout: 2\n  pruneVolumes: true", 1))
		}
		eng := fake.New()
		ctx := context.Background()
		_, obs, p := plan(t, eng, cfg, secrets)
		if _, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		v := cfg["tenants/acme/volumes.yaml"]
		v.Data = []byte(strings.Replace(string(v.Data), "name: cache", "name: cachf", 1))
		a := cfg["tenants/acme/api.yaml"]
		a.Data = []byte(strings.Replace(string(a.Data), "{volume: cache,", "{volume: cachf,", 1))
		_, obs, p = plan(t, eng, cfg, secrets)
		text := p.String()
		if !strings.Contains(text, "+   volume/demo.acme.cachf create") {
			t.Errorf("prune %v: the new volume is not created:\n%s", prune, text)
		}
		if !prune {
			if !strings.Contains(text, "!   volume/demo.acme.cache kept") {
				t.Errorf("the old volume is not listed as kept:\n%s", text)
			}
			if _, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{}); err != nil || !eng.HasVolume("demo.acme.cache") {
				t.Fatalf("apply: %v; old volume still there: %v", err, eng.HasVolume("demo.acme.cache"))
			}
			continue
		}
		if !strings.Contains(text, "-   volume/demo.acme.cache remove") {
			t.Fatalf("the old volume's removal is not shown:\n%s", text)
		}
		_, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{AllowMassDelete: true})
		if err == nil || !strings.Contains(err.Error(), "--allow-volume-delete") || !strings.Contains(err.Error(), "demo.acme.cache") {
			t.Fatalf("removal without --allow-volume-delete: %v", err)
		}
		if !eng.HasVolume("demo.acme.cache") {
			t.Fatal("the volume was removed although the apply was refused")
		}
		if _, err := controller.Apply(ctx, eng, p, obs, controller.ApplyOptions{AllowVolumeDelete: true}); err != nil {
			t.Fatal(err)
		}
		if eng.HasVolume("demo.acme.cache") || !eng.HasVolume("demo.acme.cachf") {
			t.Fatal("with --allow-volume-delete the old volume should be gone and the new one there")
		}
	}
}
