package controller_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/render"
	"github.com/moat-platform/moat/state"
)

// TestTamperedSavedPlanIsRefused is issue 6's attack: a plan file passes
// from a CI job to the apply job and is edited on the way. Every edit the
// issue lists is refused, naming the operation and the field, even when
// the editor also rewrote the spec-hash labels to match; the untampered
// file still applies, and what it creates carries the hash moat computes.
func TestTamperedSavedPlanIsRefused(t *testing.T) {
	cfg := loadDir(t, "../examples/platform")
	secrets := t.TempDir()
	if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
		t.Fatal(err)
	}
	eng := fake.New()
	tg, obs, p := plan(t, eng, cfg, secrets)
	var file bytes.Buffer
	if err := render.JSON(&file, p); err != nil {
		t.Fatal(err)
	}
	const target = "demo.acme.api.1"
	opID := reconcile.OpID(reconcile.VerbCreate, reconcile.ResourceID{Kind: reconcile.KindContainer, Name: target}, "")

	edits := []struct {
		name  string
		field string // named in the refusal
		edit  func(*state.ContainerSpec)
	}{
		{"image outside the policy", "containerSpec.image", func(s *state.ContainerSpec) { s.Image = "docker.io/library/busybox:latest" }},
		{"user 0:0", "containerSpec.user", func(s *state.ContainerSpec) { s.User = "0:0" }},
		{"no cap-drop", "containerSpec.capDrop", func(s *state.ContainerSpec) { s.CapDrop = nil }},
		{"writable root", "containerSpec.readOnlyRootfs", func(s *state.ContainerSpec) { s.ReadOnlyRootfs = false }},
		{"no limits", "containerSpec.memory", func(s *state.ContainerSpec) { s.Memory, s.NanoCPUs, s.PidsLimit = 0, 0, 0 }},
		{"read-write bind of a host path", "containerSpec.mounts", func(s *state.ContainerSpec) {
			s.Mounts = append(s.Mounts, state.Mount{Type: "bind", Source: "/", Target: "/host"})
		}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			saved, err := render.ReadPlan(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for i := range saved.Operations {
				op := &saved.Operations[i]
				if op.ID == opID {
					e.edit(op.ContainerSpec)
					// A careful attacker makes the labels match the edit.
					*op.ContainerSpec = compile.Stamped(*op.ContainerSpec)
					found = true
				}
			}
			if !found {
				t.Fatalf("no operation %s in the plan", opID)
			}
			_, err = controller.VerifySaved(saved, tg, obs, controller.PlanOptions{})
			var se *controller.SavedPlanError
			if !errors.As(err, &se) {
				t.Fatalf("tampered plan accepted (err %v)", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, opID+": "+e.field) {
				t.Fatalf("refusal does not name %s %s:\n%s", opID, e.field, msg)
			}
			t.Logf("refused: %s", se.Diffs[0])
		})
	}

	t.Run("untampered applies", func(t *testing.T) {
		saved, err := render.ReadPlan(bytes.NewReader(file.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		run, err := controller.VerifySaved(saved, tg, obs, controller.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := controller.Apply(context.Background(), eng, run, obs, controller.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, _, next := plan(t, eng, cfg, secrets)
		if !next.Empty() {
			t.Fatalf("after applying the saved plan:\n%s", next)
		}
	})
}

// TestStaleSavedPlanIsRefused: a saved plan of another revision or of
// another live state is refused as stale.
func TestStaleSavedPlanIsRefused(t *testing.T) {
	cfg := loadDir(t, "../examples/platform")
	secrets := t.TempDir()
	if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
		t.Fatal(err)
	}
	eng := fake.New()
	tg, obs, p := plan(t, eng, cfg, secrets)
	if _, err := controller.Apply(context.Background(), eng, p, obs, controller.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	_, obs2, _ := plan(t, eng, cfg, secrets)
	if _, err := controller.VerifySaved(p, tg, obs2, controller.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("stale plan: %v", err)
	}
}

// TestCreateStampsTheHash: the executor computes the spec-hash labels of
// what it creates; a plan's labels are never copied onto a container.
func TestCreateStampsTheHash(t *testing.T) {
	cfg := loadDir(t, "../examples/platform")
	secrets := t.TempDir()
	if err := os.CopyFS(secrets, os.DirFS("../examples/platform-secrets")); err != nil {
		t.Fatal(err)
	}
	eng := fake.New()
	_, obs, p := plan(t, eng, cfg, secrets)
	var want string
	for i := range p.Operations {
		op := &p.Operations[i]
		if op.Verb == reconcile.VerbCreate && op.Resource.Name == "demo.acme.api.1" {
			want = op.ContainerSpec.Labels[state.LabelSpecHash]
			op.ContainerSpec.User = "0:0" // the spec changes, the label lies
		}
	}
	if _, err := controller.Apply(context.Background(), eng, p, obs, controller.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	live, err := eng.Observe(context.Background(), "demo", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range live.Containers {
		if c.Name == "demo.acme.api.1" {
			if got := c.Labels[state.LabelSpecHash]; got == want || got == "" {
				t.Fatalf("created container carries the plan's hash %s (want moat's own)", got)
			}
			_, _, next := plan(t, eng, cfg, secrets)
			if !strings.Contains(next.String(), "demo.acme.api.1 recreate  # spec changed: user") {
				t.Fatalf("the next plan does not fix the edited container:\n%s", next)
			}
			return
		}
	}
	t.Fatal("container not created")
}
