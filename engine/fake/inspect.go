package fake

import (
	"context"
	"maps"
	"slices"

	"github.com/moat-platform/moat/state"
)

// InspectContainers fills Inspect from what each container was created
// with (its spec), plus the Tamper settings a test set: the fake's
// equivalent of docker inspect.
func (e *Engine) InspectContainers(_ context.Context, obs *state.Observed) error {
	return e.call("InspectContainers", func() error {
		for i := range obs.Containers {
			c := e.st.container(obs.Containers[i].ID)
			if c == nil {
				continue
			}
			in := &state.Inspect{Restart: state.Restart{Name: "no"}}
			if s := c.Spec; s != nil {
				*in = state.Inspect{
					CapAdd: slices.Clone(s.CapAdd), CapDrop: slices.Clone(s.CapDrop), ReadOnlyRootfs: s.ReadOnlyRootfs,
					User: s.User, Memory: s.Memory, MemorySwap: s.Memory, NanoCPUs: s.NanoCPUs, PidsLimit: s.PidsLimit,
					SecurityOpt: slices.Clone(s.SecurityOpt), Mounts: slices.Clone(s.Mounts), Ports: slices.Clone(s.Ports),
					Restart: s.Restart, Sysctls: maps.Clone(s.Sysctls),
				}
			}
			if c.Privileged {
				in.Privileged = true
			}
			if c.Memory != 0 {
				in.Memory, in.MemorySwap = c.Memory, c.Memory
			}
			obs.Containers[i].Inspect = in
		}
		return nil
	})
}
