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
