package docker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/internal/faultproxy"
)

// A service create the engine never answers ends at the write deadline
// as ErrUnreachable; nothing is created (the proxy held the request).
func TestSwarmCreateDeadline(t *testing.T) {
	s := connectSwarm(t, Options{})
	r := newSwarmRun(t, s)
	upstream, ok := strings.CutPrefix(s.Host(), "unix://")
	if !ok {
		t.Fatalf("the fault proxy needs a unix socket engine, not %s", s.Host())
	}
	p, err := faultproxy.Start(t.TempDir(), upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s2 := connectSwarm(t, Options{Host: p.Host(), Instance: r.prefix, Timeouts: Timeouts{Write: 2 * time.Second}})
	p.Add(faultproxy.Rule{Method: "POST", Path: `^/services/create`, Action: faultproxy.Blackhole})

	spec := r.hardened(r.prefix+"--acme--web--1", "", "")
	spec.Networks, spec.Mounts = nil, nil
	start := time.Now()
	_, err = s2.CreateContainer(context.Background(), spec)
	took := time.Since(start)
	if !errors.Is(err, engine.ErrUnreachable) || !strings.Contains(err.Error(), "did not answer within 2s") {
		t.Fatalf("err = %v, want ErrUnreachable naming the 2s deadline", err)
	}
	if took > 6*time.Second {
		t.Fatalf("CreateContainer took %s with a 2s write deadline", took)
	}
}
