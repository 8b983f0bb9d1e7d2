package docker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/moat-platform/moat/state"
)

// inspectParallel bounds the inspects in flight: each is a cheap read, and
// the engine, not moat, is what they load.
const inspectParallel = 8

// InspectContainers fills Inspect of every container of obs with one
// inspect each (bounded parallelism, each under the read deadline). A
// container removed meanwhile keeps Inspect nil. This is what costs N
// calls, so it runs only for moat audit and apply's audit, never in the
// plain no-op plan (docs/DESIGN.md, "Audit").
func (e *Engine) InspectContainers(ctx context.Context, obs *state.Observed) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, inspectParallel)
	)
	for i := range obs.Containers {
		c := &obs.Containers[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := e.inspectContainer(ctx, c.ID)
			if err != nil {
				if cerrdefs.IsNotFound(err) {
					return
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = wrap(err, "inspect container %s", c.Name)
				}
				mu.Unlock()
				return
			}
			c.Inspect = inspectOf(resp)
		}()
	}
	wg.Wait()
	return firstErr
}

// inspectOf keeps the security-relevant settings of an inspect.
func inspectOf(r container.InspectResponse) *state.Inspect {
	in := &state.Inspect{}
	if r.Config != nil {
		in.User = r.Config.User
	}
	hc := r.HostConfig
	if hc == nil {
		return in
	}
	in.Privileged = hc.Privileged
	in.CapAdd = slices.Sorted(slices.Values(hc.CapAdd))
	in.CapDrop = slices.Sorted(slices.Values(hc.CapDrop))
	in.ReadOnlyRootfs = hc.ReadonlyRootfs
	in.Memory = hc.Memory
	in.MemorySwap = hc.MemorySwap
	in.NanoCPUs = hc.NanoCPUs
	in.CPUQuota = hc.CPUQuota
	if hc.PidsLimit != nil {
		in.PidsLimit = *hc.PidsLimit
	}
	in.SecurityOpt = slices.Sorted(slices.Values(hc.SecurityOpt))
	in.NetworkMode = string(hc.NetworkMode)
	in.PidMode = string(hc.PidMode)
	in.IpcMode = string(hc.IpcMode)
	in.UTSMode = string(hc.UTSMode)
	in.UsernsMode = string(hc.UsernsMode)
	in.CgroupnsMode = string(hc.CgroupnsMode)
	for _, d := range hc.Devices {
		in.Devices = append(in.Devices, d.PathOnHost)
	}
	in.Restart = state.Restart{Name: string(hc.RestartPolicy.Name), MaxRetries: hc.RestartPolicy.MaximumRetryCount}
	if len(hc.Sysctls) > 0 {
		in.Sysctls = hc.Sysctls
	}
	// Mounts as the engine resolved them (binds given with -v included).
	for _, m := range r.Mounts {
		src := m.Source
		if m.Type == "volume" {
			src = m.Name
		}
		in.Mounts = append(in.Mounts, state.Mount{Type: string(m.Type), Source: src, Target: m.Destination, ReadOnly: !m.RW})
	}
	slices.SortFunc(in.Mounts, func(a, b state.Mount) int { return strings.Compare(a.Target, b.Target) })
	for port, bs := range hc.PortBindings {
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			in.Ports = append(in.Ports, state.Port{HostIP: b.HostIP, HostPort: hp, ContainerPort: port.Int(), Protocol: port.Proto()})
		}
	}
	slices.SortFunc(in.Ports, func(a, b state.Port) int {
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort - b.ContainerPort
		}
		return strings.Compare(a.Protocol+a.HostIP, b.Protocol+b.HostIP)
	})
	return in
}
