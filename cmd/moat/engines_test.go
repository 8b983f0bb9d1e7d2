package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
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
