package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestImageTagMoved is issue 6's "a tag moved to another image": the
// container keeps running the old image while the tag names a new one.
// The plan must see it (one image list per observe) and recreate the
// container, and the plan after the apply must be empty.
func TestImageTagMoved(t *testing.T) {
	e := newEnv(t)
	// A per-run tag inside the policy's image prefix, first on the echo
	// example, then on a copy of it with another id (a commit that only
	// adds a label: same behaviour, different image).
	ref := "localhost/moat-examples/" + e.instance + "/echo:1"
	var newID string
	// Images go after the containers that use them: run the env's
	// cleanup (idempotent) first, as it would otherwise run last.
	t.Cleanup(func() {
		e.cleanup()
		for _, img := range []string{ref, newID} {
			// Untagging ref removes the commit too when nothing else
			// holds it.
			if img == "" || exec.Command("docker", "image", "inspect", img).Run() != nil {
				continue
			}
			if out, err := exec.Command("docker", "rmi", img).CombinedOutput(); err != nil {
				t.Errorf("docker rmi %s: %v\n%s", img, err, out)
			}
		}
	})
	docker(t, "tag", "localhost/moat-examples/echo:1", ref)
	e.edit("tenants/acme/api.yaml", func(s string) string {
		return strings.Replace(s, "image: localhost/moat-examples/echo:1", "image: "+ref, 1)
	})
	e.apply()
	api := e.instance + ".acme.api.1"
	oldID := docker(t, "inspect", "-f", "{{.Image}}", api)
	e.plan(0)

	tmp := docker(t, "create", "--name", e.instance+"-commit", "localhost/moat-examples/echo:1")
	defer docker(t, "rm", tmp)
	newID = docker(t, "commit", "-c", "LABEL org.moattest.run="+e.instance, tmp)
	docker(t, "tag", newID, ref)
	if newID == oldID {
		t.Fatalf("the commit kept the image id %s", newID)
	}

	out := e.plan(2)
	if !regexp.MustCompile(`container\s+` + regexp.QuoteMeta(api) + `\s+recreate\s+# image changed`).MatchString(out) {
		t.Fatalf("plan does not recreate %s for the moved tag:\n%s", api, out)
	}
	if n := strings.Count(out, "image changed"); n != 1 {
		t.Errorf("%d containers planned for image changed, want 1 (only api uses the tag):\n%s", n, out)
	}
	e.apply()
	if got := docker(t, "inspect", "-f", "{{.Image}}", api); got != newID {
		t.Errorf("%s runs image %s after apply, want %s", api, got, newID)
	}
	e.plan(0)
}
