package main

import (
	"os"
	"strings"
	"testing"
)

// TestPRCheckWorkflow keeps docs/pr-check.yml in step with the CLI: every
// moat command line in it must parse with the flags moat has today.
func TestPRCheckWorkflow(t *testing.T) {
	b, err := os.ReadFile("../../docs/pr-check.yml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "- "), "run:"))
		if !strings.HasPrefix(line, "moat ") {
			continue
		}
		args := strings.Fields(strings.SplitN(line, ">", 2)[0])[1:]
		for i, a := range args {
			args[i] = strings.Trim(a, `"`)
		}
		root := newRoot()
		c, rest, err := root.Find(args)
		if err != nil || c == root {
			t.Errorf("%q: no such command (%v)", line, err)
			continue
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Errorf("%q: %v", line, err)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("found %d moat commands in docs/pr-check.yml, want validate and plan", n)
	}
}
