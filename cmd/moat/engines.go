package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/engine/docker"
	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/engine/hostfw"
	"github.com/moat-platform/moat/engine/weave"
	"github.com/moat-platform/moat/lock"
	"github.com/moat-platform/moat/state"
	"github.com/spf13/cobra"
)

// engineHandle is the engine a command drives, plus its call counter.
type engineHandle struct {
	engine.Engine
	firewall engine.Firewall
	stats    func() (total int, calls map[string]int)
	key      string // names the engine for the instance lock
	// id, when set, gives the engine's own id, which names it better than
	// the address (one engine, several sockets); one call, only to lock.
	id func(context.Context) (string, error)
}

// Close closes the engine's connection when it has one (the watcher
// closes an engine it no longer uses).
func (h *engineHandle) Close() error {
	if c, ok := h.Engine.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// HostFirewall is the firewall for host protection (the watcher asks).
func (h *engineHandle) HostFirewall() engine.Firewall { return h.firewall }

// observe takes the snapshot of the engine and of the host firewall.
func (h *engineHandle) observe(ctx context.Context, instance string, volumes bool) (*state.Observed, error) {
	return controller.Observe(ctx, h.Engine, h.firewall, instance, volumes)
}

// engineFlags are the root's engine flags (every command that talks to
// the engine honours them).
var engineFlags struct {
	read, write time.Duration
	retries     int
}

func registerEngineFlags(root *cobra.Command) {
	fs := root.PersistentFlags()
	fs.DurationVar(&engineFlags.read, "engine-timeout", docker.DefaultReadTimeout,
		"deadline of each engine read (ping, list, inspect)")
	fs.DurationVar(&engineFlags.write, "engine-write-timeout", docker.DefaultWriteTimeout,
		"deadline of each engine create, start, connect, disconnect or remove (a stop gets the app's stop timeout plus 15s)")
	fs.IntVar(&engineFlags.retries, "engine-retries", docker.DefaultRetries,
		"how often an engine call is sent again after a transient error (5xx, connection cut); 0: never")
}

// openEngine finds the engine as the docker CLI does (DOCKER_HOST, else the
// local socket). MOAT_FAKE_ENGINE=FILE selects the in-memory engine, kept
// in FILE between runs: for CLI scripts, never for production.
//
// When the platform runs its LANs on Weave, the engine also reads and
// drives the router named by network.weave.
func openEngine(instance string, stderr io.Writer, p *config.Platform) (*engineHandle, error) {
	h, err := openContainerEngine(instance, stderr, engineOf(p))
	if err != nil {
		return nil, err
	}
	if p == nil || p.Network.Driver != "weave" || p.Network.Weave == nil {
		return h, nil
	}
	w := p.Network.Weave
	if w.PasswordFile != "" {
		if err := weave.CheckPasswordFile(w.PasswordFile); err != nil {
			return nil, err
		}
	}
	r, err := weave.New(weave.Options{API: w.API, Bridge: w.Bridge})
	if err != nil {
		return nil, err
	}
	h.Engine = weave.WithRouter(h.Engine, r)
	return h, nil
}

// engineOf is the engine a platform chooses (config: engine), the single
// host when there is no platform to ask.
func engineOf(p *config.Platform) string {
	if p != nil && p.Engine == config.EngineSwarm {
		return state.EngineSwarm
	}
	return state.EngineDocker
}

// dockerEngine is what the CLI needs of a real engine beyond
// engine.Engine: its call counts, its address and its id (for the lock).
type dockerEngine interface {
	engine.Engine
	Stats() (total int, calls map[string]int)
	Host() string
	EngineID(ctx context.Context) (string, error)
}

// newDockerEngine opens the real engine of kind: the single host, or
// the Swarm manager the engine is.
func newDockerEngine(kind string, opts docker.Options) (dockerEngine, error) {
	if kind == state.EngineSwarm {
		return newSwarmEngine(opts)
	}
	return docker.New(opts)
}

// newSwarmEngine opens the Swarm engine (engine/docker's NewSwarm, which
// refuses an engine that is not an active Swarm manager).
var newSwarmEngine = func(opts docker.Options) (dockerEngine, error) {
	s, err := docker.NewSwarm(opts)
	if err != nil {
		return nil, err // not a nil *Swarm in a non-nil interface
	}
	return s, nil
}

// discoverEngine says which engine holds instance's objects when no
// config names it (destroy --instance): swarm when the engine is a Swarm
// manager holding services, overlays or secrets of the instance (named
// "<instance>--", the Swarm scheme), else docker. why says what was found.
func discoverEngine(ctx context.Context, instance string, stderr io.Writer) (kind, why string, err error) {
	if path := os.Getenv("MOAT_FAKE_ENGINE"); path != "" {
		f, err := fake.Open(path)
		if err != nil {
			return "", "", fmt.Errorf("fake engine: %w", err)
		}
		if !f.SwarmMode() {
			return state.EngineDocker, "", nil
		}
	}
	h, err := openContainerEngine(instance, stderr, state.EngineSwarm)
	if err != nil {
		// Not a Swarm manager (or unreachable, which opening the single
		// host then reports).
		return state.EngineDocker, "", nil
	}
	defer h.Close()
	obs, err := h.Observe(ctx, instance, false)
	if err != nil {
		return "", "", fmt.Errorf("observe the Swarm: %w", err)
	}
	prefix := instance + "--"
	var services, overlays int
	for _, c := range obs.Containers {
		if state.Managed(c.Labels, instance) && strings.HasPrefix(c.Name, prefix) {
			services++
		}
	}
	for _, n := range obs.Networks {
		if state.Managed(n.Labels, instance) && strings.HasPrefix(n.Name, prefix) {
			overlays++
		}
	}
	if services+overlays+len(obs.Secrets) == 0 {
		return state.EngineDocker, "", nil
	}
	return state.EngineSwarm, fmt.Sprintf("%d services, %d networks, %d secrets of instance %s on this Swarm", services, overlays, len(obs.Secrets), instance), nil
}

func openContainerEngine(instance string, stderr io.Writer, kind string) (*engineHandle, error) {
	if path := os.Getenv("MOAT_FAKE_ENGINE"); path != "" {
		f, err := fake.Open(path)
		if err != nil {
			return nil, fmt.Errorf("fake engine: %w", err)
		}
		// The fake plays the engine the platform chooses; the mode is
		// saved with the first change, so a plan leaves the file alone.
		f.SetSwarm(kind == state.EngineSwarm)
		abs, _ := filepath.Abs(path)
		fw := f.Firewall()
		fw.Deny = os.Getenv("MOAT_FAKE_FIREWALL_DENY")
		return &engineHandle{Engine: f, firewall: fw, stats: f.Stats, key: "fake://" + abs}, nil
	}
	retries := engineFlags.retries
	if retries == 0 {
		retries = -1 // the flag's 0 is "never"; the option's is "default"
	}
	d, err := newDockerEngine(kind, docker.Options{
		Instance:       instance,
		ConnectTimeout: engineFlags.read,
		Timeouts:       docker.Timeouts{Read: engineFlags.read, Write: engineFlags.write},
		Retries:        retries,
		// Retries are warnings: the run goes on, but the operator should
		// know the engine is flaky.
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	return &engineHandle{Engine: d, firewall: hostfw.New(), stats: d.Stats, key: lock.Key(d.Host()), id: d.EngineID}, nil
}

// lockInstance takes the instance lock (see package lock): two moat
// processes never reconcile the same instance on the same engine at once.
func lockInstance(h *engineHandle, instance, what string) (*lock.Lock, error) {
	key := h.key
	if h.id != nil {
		if id, err := h.id(context.Background()); err == nil {
			key = "docker-id:" + id
		}
	}
	return lock.Acquire(lock.Dir(), key, instance, what)
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

// UpdateContainer, CreateSecret and RemoveSecret pass the Swarm engine's
// operations through the handle, as ConnectPeer does the router's.
func (h *engineHandle) UpdateContainer(ctx context.Context, id string, spec state.ContainerSpec) error {
	u, ok := h.Engine.(engine.Updater)
	if !ok {
		return errors.New("this engine cannot update a container in place (the platform's engine is not swarm)")
	}
	return u.UpdateContainer(ctx, id, spec)
}

func (h *engineHandle) CreateSecret(ctx context.Context, spec state.SecretSpec) (string, error) {
	s, ok := h.Engine.(engine.SecretStore)
	if !ok {
		return "", errors.New("this engine has no secret store (the platform's engine is not swarm)")
	}
	return s.CreateSecret(ctx, spec)
}

func (h *engineHandle) RemoveSecret(ctx context.Context, name string) error {
	s, ok := h.Engine.(engine.SecretStore)
	if !ok {
		return errors.New("this engine has no secret store (the platform's engine is not swarm)")
	}
	return s.RemoveSecret(ctx, name)
}

// ConnectPeer and ForgetPeer pass the Weave router's peer operations
// through the handle: an embedded interface promotes only its own
// methods, so without these the executor would not see the router.
func (h *engineHandle) ConnectPeer(ctx context.Context, addr string) error {
	p, ok := h.Engine.(engine.Peers)
	if !ok {
		return errors.New("the engine drives no Weave router")
	}
	return p.ConnectPeer(ctx, addr)
}

func (h *engineHandle) ForgetPeer(ctx context.Context, addr string) error {
	p, ok := h.Engine.(engine.Peers)
	if !ok {
		return errors.New("the engine drives no Weave router")
	}
	return p.ForgetPeer(ctx, addr)
}
