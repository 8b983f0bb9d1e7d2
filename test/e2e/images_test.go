package e2e

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// danglingEchoImages lists the untagged images built from the echo example
// (by its label), so the test sees only images of the build it runs.
func danglingEchoImages(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "images", "-q", "--no-trunc",
		"--filter", "dangling=true", "--filter", "label=org.moat.example.app=echo").Output()
	if err != nil {
		t.Fatalf("docker images: %v", err)
	}
	ids := strings.Fields(string(out))
	sort.Strings(ids)
	return ids
}

// Two concurrent builds of one image each tag a private name first and
// then move the real tag, so the loser's image is removed with its private
// tag instead of left dangling; the output is one line per image, without
// the builder's steps.
func TestConcurrentImageBuildsLeaveNoDangling(t *testing.T) {
	requireDocker(t)
	before := danglingEchoImages(t)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "../../scripts/build-images.sh", "echo")
			cmd.Env = append(cmd.Environ(), "FORCE=1")
			b, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(b), err
		}(i)
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("build %d: %v\n%s", i, errs[i], outs[i])
		}
		for _, line := range strings.Split(strings.TrimSpace(outs[i]), "\n") {
			if strings.Contains(line, "Step ") || strings.Contains(strings.ToLower(line), "deprecated") {
				t.Errorf("build %d printed the builder's output: %q", i, line)
			}
		}
		if !strings.Contains(outs[i], "built localhost/moat-examples/echo:1") {
			t.Errorf("build %d did not say what it built:\n%s", i, outs[i])
		}
	}
	if after := danglingEchoImages(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("dangling echo images before %v, after %v", before, after)
	}
	out, err := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "echo:1-build-") {
		t.Fatalf("a private build tag was left:\n%s", out)
	}
}
