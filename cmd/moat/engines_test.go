package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
	"github.com/moat-platform/moat/watch"
)

// TestEngineSelection: the platform chooses the engine; the fake plays
// the one chosen, and the handle passes the Swarm operations through.
func TestEngineSelection(t *testing.T) {
	if got := engineOf(nil); got != state.EngineDocker {
		t.Errorf("no platform: %q", got)
	}
	if got := engineOf(&config.Platform{Engine: config.EngineSwarm}); got != state.EngineSwarm {
		t.Errorf("engine swarm: %q", got)
	}
	t.Setenv("MOAT_FAKE_ENGINE", filepath.Join(t.TempDir(), "engine.json"))
	ctx := context.Background()
	spec := state.SecretSpec{Name: "s1", Source: "/nowhere", Labels: map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "demo"}}
	h, err := openContainerEngine("demo", io.Discard, state.EngineDocker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateSecret(ctx, spec); err == nil || !strings.Contains(err.Error(), "not a Swarm manager") {
		t.Errorf("secret on the single host: %v", err)
	}
	h, err = openContainerEngine("demo", io.Discard, state.EngineSwarm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateSecret(ctx, spec); err != nil {
		t.Fatal(err)
	}
	obs, err := h.observe(ctx, "demo", false)
	if err != nil || len(obs.Secrets) != 1 {
		t.Fatalf("observed secrets %v, %v", obs, err)
	}
	if err := h.RemoveSecret(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
}

// TestDestroyFindsTheEngine: destroy --instance without a config finds the
// Swarm when the engine is a Swarm manager holding the instance's services
// (or secrets), and the single host otherwise; --engine overrides.
func TestDestroyFindsTheEngine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engine.json")
	t.Setenv("MOAT_FAKE_ENGINE", path)
	t.Setenv("MOAT_LOCK_DIR", filepath.Join(t.TempDir(), "locks"))
	labels := func(kind string) map[string]string {
		return map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "demo", state.LabelKind: kind, state.LabelTenant: "acme"}
	}
	// A single-host instance on an engine that is no Swarm manager.
	h, err := openContainerEngine("demo", io.Discard, state.EngineDocker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateNetwork(ctx, state.NetworkSpec{Name: "demo.acme.lan", Driver: "bridge", Subnet: "10.1.0.0/24", Labels: labels(state.KindLan)}); err != nil {
		t.Fatal(err)
	}
	if kind, why, err := discoverEngine(ctx, "demo", io.Discard); err != nil || kind != state.EngineDocker || why != "" {
		t.Errorf("single host: %q %q %v", kind, why, err)
	}
	// The same engine as a Swarm manager with a service of the instance.
	h, err = openContainerEngine("demo", io.Discard, state.EngineSwarm)
	if err != nil {
		t.Fatal(err)
	}
	if kind, _, err := discoverEngine(ctx, "demo", io.Discard); err != nil || kind != state.EngineDocker {
		t.Errorf("Swarm manager without the instance's services: %q %v", kind, err)
	}
	if _, err := h.CreateNetwork(ctx, state.NetworkSpec{Name: "demo--acme--lan", Driver: "overlay", Subnet: "10.2.0.0/24", Labels: labels(state.KindLan)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateContainer(ctx, state.ContainerSpec{Name: "demo--acme--web--1", Image: "img", Labels: labels(state.KindApp),
		Networks: []state.Endpoint{{Network: "demo--acme--lan"}}}); err != nil {
		t.Fatal(err)
	}
	kind, why, err := discoverEngine(ctx, "demo", io.Discard)
	if err != nil || kind != state.EngineSwarm || !strings.Contains(why, "1 services, 1 networks") {
		t.Fatalf("Swarm with the instance's service: %q %q %v", kind, why, err)
	}
	if kind, _, _ := discoverEngine(ctx, "other", io.Discard); kind != state.EngineDocker {
		t.Errorf("another instance: %q", kind)
	}

	// destroy --instance: a Swarm plan (services), everything of the
	// instance the manager lists goes.
	var out, errb strings.Builder
	if code := execute([]string{"destroy", "--instance", "demo", "--allow-mass-delete"}, &out, &errb); code != 0 {
		t.Fatalf("destroy: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "destroy: engine swarm (1 services") || !strings.Contains(out.String(), "service  demo--acme--web--1") {
		t.Errorf("destroy did not plan on the Swarm:\n%s\n%s", out.String(), errb.String())
	}
	h, err = openContainerEngine("demo", io.Discard, state.EngineSwarm)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := h.observe(ctx, "demo", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Containers)+len(obs.Networks) != 0 {
		t.Errorf("after destroy: containers %v, networks %v", obs.Containers, obs.Networks)
	}
	if kind, _, _ := discoverEngine(ctx, "demo", io.Discard); kind != state.EngineDocker {
		t.Errorf("nothing of demo left on the Swarm: discovered %q", kind)
	}
	out.Reset()
	if code := execute([]string{"destroy", "--instance", "demo", "--engine", "swarm", "--allow-mass-delete"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "No changes") {
		t.Errorf("destroy --engine swarm again: exit %d\n%s", code, out.String())
	}
	if code := execute([]string{"destroy", "--engine", "swarm", "."}, &out, &errb); code != exitError {
		t.Errorf("--engine with a config: exit %d", code)
	}
	if code := execute([]string{"destroy", "--instance", "demo", "--engine", "k8s"}, &out, &errb); code != exitError {
		t.Errorf("--engine k8s: exit %d", code)
	}
}

// TestStatusNamesTheEngine: moat status says which engine the watcher
// drives.
func TestStatusNamesTheEngine(t *testing.T) {
	var b strings.Builder
	printStatus(&b, &watch.Status{Instance: "demo", Engine: state.EngineSwarm, EngineReachable: true, Ready: true}, time.Now())
	if !strings.Contains(b.String(), "(engine swarm reachable), instance demo") {
		t.Errorf("status:\n%s", b.String())
	}
}
