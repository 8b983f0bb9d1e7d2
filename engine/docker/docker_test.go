package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// Test objects carry these labels; cleanup selects by the run label only,
// so a test never touches anything it did not create.
const (
	labelTest    = "org.moat.test"
	labelTestRun = "org.moat.test.run"
)

// connect returns an engine or skips; with MOAT_REQUIRE_DOCKER=1 (CI) a
// missing engine fails instead.
func connect(t *testing.T, opts Options) *Engine {
	t.Helper()
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	e, err := New(opts)
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_DOCKER") == "1" {
			t.Fatalf("MOAT_REQUIRE_DOCKER=1 but the Docker engine is unreachable: %v", err)
		}
		t.Skipf("skipping real-engine test: Docker engine unreachable (set MOAT_REQUIRE_DOCKER=1 to make this a failure): %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testRun owns a per-run name prefix and removes every object labelled
// with it at the end, also when the test fails.
type testRun struct {
	t      *testing.T
	e      *Engine
	prefix string
	image  string
}

func newTestRun(t *testing.T, e *Engine) *testRun {
	b := make([]byte, 4)
	rand.Read(b)
	r := &testRun{t: t, e: e, prefix: "moattest-" + hex.EncodeToString(b)}
	r.image = "localhost/" + r.prefix + ":1"
	t.Cleanup(r.cleanup)
	return r
}

func (r *testRun) labels(extra map[string]string) map[string]string {
	l := map[string]string{labelTest: "true", labelTestRun: r.prefix}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// managed are the labels moat puts on objects of the test instance.
func (r *testRun) managed() map[string]string {
	return r.labels(map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: r.prefix})
}

func (r *testRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := r.e.cli
	f := filters.NewArgs(filters.Arg("label", labelTestRun+"="+r.prefix))
	if cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err == nil {
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				r.t.Logf("cleanup: remove container %s: %v", c.ID, err)
			}
		}
	} else {
		r.t.Logf("cleanup: list containers: %v", err)
	}
	if ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f}); err == nil {
		for _, n := range ns {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil {
				r.t.Logf("cleanup: remove network %s: %v", n.Name, err)
			}
		}
	} else {
		r.t.Logf("cleanup: list networks: %v", err)
	}
	if vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f}); err == nil {
		for _, v := range vs.Volumes {
			if err := cli.VolumeRemove(ctx, v.Name, true); err != nil {
				r.t.Logf("cleanup: remove volume %s: %v", v.Name, err)
			}
		}
	} else {
		r.t.Logf("cleanup: list volumes: %v", err)
	}
	if _, err := cli.ImageRemove(ctx, r.image, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
		r.t.Logf("cleanup: remove image %s: %v", r.image, err)
	}
}

// sleeperSrc is the test image's program: it waits for SIGTERM (PID 1
// ignores signals it does not handle, so a plain sleep would make every
// stop wait for the timeout) and answers "health" for the healthcheck.
const sleeperSrc = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
`

// buildImage builds a FROM scratch image holding a static sleeper binary.
func (r *testRun) buildImage(ctx context.Context) {
	t := r.t
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(sleeperSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "sleeper", "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sleeper: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "sleeper"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("Dockerfile", 0o644, []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n"))
	add("sleeper", 0o755, bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := r.e.cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{r.image}, Remove: true, ForceRemove: true,
		Labels: r.labels(nil), Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("build image: read output: %v", err)
		}
		if msg.Error != "" {
			t.Fatalf("build image: %s", msg.Error)
		}
	}
}

// createNetwork creates a managed network on a random /24 in 10.x,
// retrying when another network on the host already uses the pool.
func (r *testRun) createNetwork(ctx context.Context, name string, internal bool) (state.NetworkSpec, string) {
	r.t.Helper()
	for range 8 {
		b, c := 100+mrand.IntN(150), mrand.IntN(256)
		spec := state.NetworkSpec{
			Name: name, Driver: "bridge", Internal: internal,
			Subnet:  fmt.Sprintf("10.%d.%d.0/24", b, c),
			Gateway: fmt.Sprintf("10.%d.%d.1", b, c),
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"},
			Labels:  r.managed(),
		}
		id, err := r.e.CreateNetwork(ctx, spec)
		if err == nil {
			return spec, id
		}
		if !strings.Contains(err.Error(), "overlap") {
			r.t.Fatalf("create network: %v", err)
		}
	}
	r.t.Fatalf("create network %s: no free subnet after 8 tries", name)
	return state.NetworkSpec{}, ""
}

func (r *testRun) observe(ctx context.Context, volumes bool) *state.Observed {
	r.t.Helper()
	obs, err := r.e.Observe(ctx, r.prefix, volumes)
	if err != nil {
		r.t.Fatalf("observe: %v", err)
	}
	return obs
}

func findContainer(obs *state.Observed, name string) *state.Container {
	for i := range obs.Containers {
		if obs.Containers[i].Name == name {
			return &obs.Containers[i]
		}
	}
	return nil
}

func TestDockerEngine(t *testing.T) {
	e := connect(t, Options{})
	r := newTestRun(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r.buildImage(ctx)

	vol := r.prefix + "-data"
	volSpec := state.VolumeSpec{Name: vol, Labels: r.managed()}
	for i := range 2 { // idempotent
		if err := e.CreateVolume(ctx, volSpec); err != nil {
			t.Fatalf("create volume (try %d): %v", i+1, err)
		}
	}
	netA, _ := r.createNetwork(ctx, r.prefix+"-a", true)
	netB, _ := r.createNetwork(ctx, r.prefix+"-b", false)

	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := r.prefix + ".app-1" // moat names start "<instance>."
	spec := state.ContainerSpec{
		Name:  name,
		Image: r.image,
		Env:   []string{"A=1", "B=2"},
		User:  "65534:65534",
		Labels: r.labels(map[string]string{
			state.LabelManagedBy: state.ManagedBy, state.LabelInstance: r.prefix,
			state.LabelKind: state.KindApp, state.LabelSpecHash: "abc",
		}),
		Networks: []state.Endpoint{
			{Network: netA.Name, Aliases: []string{"app-a"}},
			{Network: netB.Name, Aliases: []string{"app-b", "app"}},
		},
		Mounts: []state.Mount{
			{Type: "volume", Source: vol, Target: "/data"},
			{Type: "bind", Source: secret, Target: "/run/secrets/token", ReadOnly: true},
		},
		Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=1m"},
		Ports:          []state.Port{{HostIP: "127.0.0.1", HostPort: 0, ContainerPort: 8080, Protocol: "tcp"}},
		ReadOnlyRootfs: true,
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"NET_BIND_SERVICE"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Memory:         64 << 20,
		NanoCPUs:       500_000_000,
		PidsLimit:      64,
		Restart:        state.Restart{Name: "on-failure", MaxRetries: 3},
		StopTimeout:    3,
		Healthcheck: &state.Healthcheck{
			Test: []string{"CMD", "/sleeper", "health"}, Interval: int64(5 * time.Second),
			Timeout: int64(time.Second), Retries: 2,
		},
	}
	id, err := e.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("create container: %v", err)
	}

	t.Run("observe costs ping plus three lists", func(t *testing.T) {
		fresh := connect(t, Options{})
		obs, err := fresh.Observe(ctx, r.prefix, false)
		if err != nil {
			t.Fatal(err)
		}
		total, calls := fresh.Stats()
		want := map[string]int{"HEAD /_ping": 1, "GET /containers/json": 1, "GET /networks": 1, "GET /images/json": 1}
		if total != 4 || !reflect.DeepEqual(calls, want) {
			t.Errorf("no-op observe made %d API calls %v, want exactly %v", total, calls, want)
		}
		if len(obs.Networks) != 2 || obs.Networks[0].Name != netA.Name || obs.Networks[1].Name != netB.Name {
			t.Fatalf("networks = %+v", obs.Networks)
		}
		if n := obs.Networks[0]; n.Subnet != netA.Subnet || !n.Internal || n.Driver != "bridge" || !state.Managed(n.Labels, r.prefix) {
			t.Errorf("network a = %+v, want subnet %s internal", n, netA.Subnet)
		}
		if len(obs.Containers) != 1 {
			t.Fatalf("containers = %+v", obs.Containers)
		}
		c := obs.Containers[0]
		if c.ID != id || c.Name != name || c.State != "running" || c.Image != r.image ||
			!reflect.DeepEqual(c.Networks, []string{netA.Name, netB.Name}) || c.Labels[state.LabelSpecHash] != "abc" {
			t.Errorf("container = %+v", c)
		}
		if obs.Volumes != nil {
			t.Errorf("volumes listed without being asked: %v", obs.Volumes)
		}
	})

	t.Run("hardening applied", func(t *testing.T) {
		in, err := e.cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		hc := in.HostConfig
		if !hc.ReadonlyRootfs {
			t.Error("ReadonlyRootfs not set")
		}
		if !slices.ContainsFunc(hc.CapDrop, func(c string) bool { return c == "ALL" || c == "CAP_ALL" }) {
			t.Errorf("CapDrop = %v", hc.CapDrop)
		}
		if !slices.ContainsFunc(hc.CapAdd, func(c string) bool { return strings.HasSuffix(c, "NET_BIND_SERVICE") }) {
			t.Errorf("CapAdd = %v", hc.CapAdd)
		}
		if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("SecurityOpt = %v", hc.SecurityOpt)
		}
		if hc.PidsLimit == nil || *hc.PidsLimit != 64 {
			t.Errorf("PidsLimit = %v", hc.PidsLimit)
		}
		if hc.MemorySwap != hc.Memory {
			t.Errorf("memory+swap %d, want %d (no swap)", hc.MemorySwap, hc.Memory)
		}
		if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 {
			t.Errorf("Memory = %d NanoCPUs = %d", hc.Memory, hc.NanoCPUs)
		}
		if in.Config.User != "65534:65534" {
			t.Errorf("User = %q", in.Config.User)
		}
		if hc.Tmpfs["/tmp"] != "rw,noexec,nosuid,size=1m" {
			t.Errorf("Tmpfs = %v", hc.Tmpfs)
		}
		if hc.RestartPolicy.Name != "on-failure" || hc.RestartPolicy.MaximumRetryCount != 3 {
			t.Errorf("RestartPolicy = %+v", hc.RestartPolicy)
		}
		if in.Config.StopTimeout == nil || *in.Config.StopTimeout != 3 {
			t.Errorf("StopTimeout = %v", in.Config.StopTimeout)
		}
		if in.Config.Healthcheck == nil || !reflect.DeepEqual(in.Config.Healthcheck.Test, spec.Healthcheck.Test) {
			t.Errorf("Healthcheck = %+v", in.Config.Healthcheck)
		}
		// The engine adds PATH; ours must be there.
		if !slices.Contains(in.Config.Env, "A=1") || !slices.Contains(in.Config.Env, "B=2") {
			t.Errorf("Env = %v", in.Config.Env)
		}
		if pb := hc.PortBindings["8080/tcp"]; len(pb) != 1 || pb[0].HostIP != "127.0.0.1" {
			t.Errorf("PortBindings = %v", hc.PortBindings)
		}
		var sawVol, sawBind bool
		for _, m := range in.Mounts {
			switch m.Destination {
			case "/data":
				sawVol = m.Type == "volume" && m.Name == vol && m.RW
			case "/run/secrets/token":
				sawBind = m.Type == "bind" && !m.RW
			}
		}
		if !sawVol || !sawBind {
			t.Errorf("Mounts = %+v", in.Mounts)
		}
		if ep := in.NetworkSettings.Networks[netB.Name]; ep == nil || !slices.Contains(ep.Aliases, "app-b") || !slices.Contains(ep.Aliases, "app") {
			t.Errorf("aliases on %s = %+v", netB.Name, ep)
		}
		if ep := in.NetworkSettings.Networks[netA.Name]; ep == nil || !slices.Contains(ep.Aliases, "app-a") {
			t.Errorf("aliases on %s = %+v", netA.Name, ep)
		}
		if _, onBridge := in.NetworkSettings.Networks["bridge"]; onBridge {
			t.Error("attached to the default bridge")
		}
	})

	t.Run("stop and start", func(t *testing.T) {
		timeout := 5
		if err := e.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		if c := findContainer(r.observe(ctx, false), name); c == nil || c.State != "exited" {
			t.Fatalf("after stop: %+v", c)
		}
		for range 2 { // starting a running container is success
			if err := e.StartContainer(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if c := findContainer(r.observe(ctx, false), name); c == nil || c.State != "running" {
			t.Fatalf("after start: %+v", c)
		}
		err := e.StartContainer(ctx, r.prefix+"-missing")
		if !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("start missing container: %v, want ErrNotFound", err)
		}
	})

	t.Run("disconnect and connect", func(t *testing.T) {
		for range 2 { // the second time is already done: success
			if err := e.Disconnect(ctx, netB.Name, name); err != nil {
				t.Fatal(err)
			}
		}
		if c := findContainer(r.observe(ctx, false), name); c == nil || !reflect.DeepEqual(c.Networks, []string{netA.Name}) {
			t.Fatalf("after disconnect: %+v", c)
		}
		for range 2 {
			if err := e.Connect(ctx, netB.Name, name, []string{"app-b"}); err != nil {
				t.Fatal(err)
			}
		}
		if c := findContainer(r.observe(ctx, false), name); c == nil || !reflect.DeepEqual(c.Networks, []string{netA.Name, netB.Name}) {
			t.Fatalf("after connect: %+v", c)
		}
	})

	// An unmanaged container attached by hand to a managed LAN, and a
	// container of another moat instance that is on no managed network.
	intruder := r.prefix + "-intruder"
	resp, err := e.cli.ContainerCreate(ctx, &container.Config{Image: r.image, Labels: r.labels(nil)},
		&container.HostConfig{NetworkMode: container.NetworkMode(netA.Name)}, nil, nil, intruder)
	if err != nil {
		t.Fatal(err)
	}
	intruderID := resp.ID
	if err := e.cli.ContainerStart(ctx, intruderID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	other := r.prefix + "-other"
	if _, err := e.cli.ContainerCreate(ctx, &container.Config{Image: r.image,
		Labels: r.labels(map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: r.prefix + "-x"})},
		&container.HostConfig{NetworkMode: network.NetworkNone}, nil, nil, other); err != nil {
		t.Fatal(err)
	}

	t.Run("unmanaged container on a managed network is observed", func(t *testing.T) {
		obs := r.observe(ctx, false)
		c := findContainer(obs, intruder)
		if c == nil || c.ID != intruderID || !reflect.DeepEqual(c.Networks, []string{netA.Name}) || state.Managed(c.Labels, r.prefix) {
			t.Fatalf("intruder = %+v", c)
		}
		if findContainer(obs, other) != nil {
			t.Error("a container of another instance was observed")
		}
		if len(obs.Containers) != 2 {
			t.Errorf("containers = %+v", obs.Containers)
		}
	})

	t.Run("unmanaged objects are refused", func(t *testing.T) {
		if err := e.RemoveContainer(ctx, intruderID, 1); !errors.Is(err, engine.ErrNotManaged) {
			t.Errorf("remove unmanaged container: %v, want ErrNotManaged", err)
		}
		conflict := spec
		conflict.Name = intruder
		_, err := e.CreateContainer(ctx, conflict)
		if !errors.Is(err, engine.ErrNotManaged) || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("create over unmanaged name: %v, want a refusal", err)
		}
		if in, err := e.cli.ContainerInspect(ctx, intruder); err != nil || in.ID != intruderID || !in.State.Running {
			t.Errorf("the unmanaged container was touched: %v %+v", err, in.State)
		}
		unmanagedNet := r.prefix + "-unmanaged"
		if _, err := e.cli.NetworkCreate(ctx, unmanagedNet, network.CreateOptions{Driver: "bridge", Labels: r.labels(nil)}); err != nil {
			t.Fatal(err)
		}
		if err := e.RemoveNetwork(ctx, unmanagedNet); !errors.Is(err, engine.ErrNotManaged) {
			t.Errorf("remove unmanaged network: %v, want ErrNotManaged", err)
		}
		if _, err := e.cli.NetworkInspect(ctx, unmanagedNet, network.InspectOptions{}); err != nil {
			t.Errorf("unmanaged network gone: %v", err)
		}
		// An engine bound to one instance refuses another instance's objects.
		bound := connect(t, Options{Instance: r.prefix})
		if err := bound.RemoveContainer(ctx, other, 1); !errors.Is(err, engine.ErrNotManaged) {
			t.Errorf("remove other instance's container: %v, want ErrNotManaged", err)
		}
	})

	t.Run("evict intruder by disconnect", func(t *testing.T) {
		if err := e.Disconnect(ctx, netA.Name, intruder); err != nil {
			t.Fatal(err)
		}
		if c := findContainer(r.observe(ctx, false), intruder); c != nil {
			t.Errorf("still observed after disconnect: %+v", c)
		}
	})

	t.Run("leftover of an interrupted run is replaced", func(t *testing.T) {
		newID, err := e.CreateContainer(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if newID == id {
			t.Fatal("same id: the leftover was not replaced")
		}
		c := findContainer(r.observe(ctx, false), name)
		if c == nil || c.ID != newID || c.State != "running" || len(c.Networks) != 2 {
			t.Errorf("recreated = %+v", c)
		}
		id = newID
	})

	t.Run("removal is idempotent", func(t *testing.T) {
		for range 2 {
			if err := e.RemoveContainer(ctx, id, 2); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []string{netA.Name, netB.Name} {
			for range 2 {
				if err := e.RemoveNetwork(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
		}
		obs := r.observe(ctx, true)
		if len(obs.Containers) != 0 || len(obs.Networks) != 0 || len(obs.Volumes) != 1 || obs.Volumes[0].Name != vol {
			t.Fatalf("after removal: %+v", obs)
		}
		for range 2 {
			if err := e.RemoveVolume(ctx, vol); err != nil {
				t.Fatal(err)
			}
		}
		if obs := r.observe(ctx, true); obs.Volumes == nil || len(obs.Volumes) != 0 {
			t.Errorf("volumes after removal: %+v", obs.Volumes)
		}
	})
}

func TestCreateContainerMissingImage(t *testing.T) {
	e := connect(t, Options{})
	r := newTestRun(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.CreateContainer(ctx, state.ContainerSpec{Name: r.prefix + ".noimg", Image: r.image, Labels: r.managed()})
	if !errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), "never pulls") {
		t.Fatalf("err = %v, want a not-found error with a hint", err)
	}
}

func TestUnreachable(t *testing.T) {
	_, err := New(Options{Host: "unix://" + filepath.Join(t.TempDir(), "no.sock"), ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, engine.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Errorf("message lacks a hint: %v", err)
	}
}
