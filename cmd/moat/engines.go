package main

import (
	"fmt"
	"io"
	"os"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/engine/docker"
	"github.com/moat-platform/moat/engine/fake"
)

// engineHandle is the engine a command drives, plus its call counter.
type engineHandle struct {
	engine.Engine
	stats func() (total int, calls map[string]int)
}

// openEngine finds the engine as the docker CLI does (DOCKER_HOST, else the
// local socket). MOAT_FAKE_ENGINE=FILE selects the in-memory engine, kept
// in FILE between runs: for CLI scripts, never for production.
func openEngine(instance string) (*engineHandle, error) {
	if path := os.Getenv("MOAT_FAKE_ENGINE"); path != "" {
		f, err := fake.Open(path)
		if err != nil {
			return nil, fmt.Errorf("fake engine: %w", err)
		}
		return &engineHandle{Engine: f, stats: f.Stats}, nil
	}
	d, err := docker.New(docker.Options{Instance: instance})
	if err != nil {
		return nil, err
	}
	return &engineHandle{Engine: d, stats: d.Stats}, nil
}

// printStats writes the API call count, one line per endpoint.
func (h *engineHandle) printStats(w io.Writer) {
	if h == nil || h.stats == nil {
		return
	}
	total, calls := h.stats()
	fmt.Fprintf(w, "engine API calls: %d\n", total)
	for _, k := range sortedKeys(calls) {
		fmt.Fprintf(w, "  %4d %s\n", calls[k], k)
	}
}
