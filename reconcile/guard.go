package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moat-platform/moat/state"
)

// GuardOptions tune Guard.
type GuardOptions struct {
	// AllowMassDelete lets any plan through (--allow-mass-delete).
	AllowMassDelete bool
	// AllowVolumeDelete lets a plan remove volumes (--allow-volume-delete).
	// runtime.pruneVolumes in the config says volumes no longer in config
	// may go; this flag, given on the apply itself, says this apply may
	// destroy their data: a config edit (a one-letter rename of a volume,
	// a deleted tenant folder) alone never does.
	AllowVolumeDelete bool
}

// guardListMax bounds how many removals the refusal lists.
const guardListMax = 20

// Guard refuses a plan that looks like a broken config rather than an
// intended change: one that removes more than half of the instance's
// managed containers, or every container of a tenant that has some (an
// emptied tenant folder, a bad merge). Recreates do not count: the
// container comes back. Pure, like Compute, and separate from it so that
// a plan can still be shown in full before it is refused.
func Guard(p *Plan, observed *state.Observed, opts GuardOptions) error {
	if p == nil {
		return nil
	}
	if !opts.AllowVolumeDelete {
		var vols []string
		for i := range p.Operations {
			if op := &p.Operations[i]; op.Verb == VerbRemoveVolume {
				vols = append(vols, op.Resource.Name)
			}
		}
		if len(vols) > 0 {
			slices.Sort(vols)
			return &GuardError{Removed: vols, msg: fmt.Sprintf(
				"refusing to delete %d volume(s) and their data: %s (no longer in the config: renamed or removed?). If the data may go, pass --allow-volume-delete to this command",
				len(vols), strings.Join(vols, ", "))}
		}
	}
	if opts.AllowMassDelete || observed == nil {
		return nil
	}
	total := 0
	perTenant := map[string]int{}
	for i := range observed.Containers {
		ct := &observed.Containers[i]
		if state.Managed(ct.Labels, p.Instance) {
			total++
			if t := ct.Labels[state.LabelTenant]; t != "" {
				perTenant[t]++
			}
		}
	}
	var removed []string
	removedPerTenant := map[string]int{}
	for i := range p.Operations {
		op := &p.Operations[i]
		if op.Resource.Kind == KindContainer && op.Verb == VerbRemove {
			removed = append(removed, op.Resource.Name)
			if op.Tenant != "" {
				removedPerTenant[op.Tenant]++
			}
		}
	}
	var why []string
	if 2*len(removed) > total {
		why = append(why, fmt.Sprintf("it removes %d of the %d managed containers of instance %q (more than half)", len(removed), total, p.Instance))
	}
	for _, t := range slices.Sorted(maps.Keys(removedPerTenant)) {
		if n := perTenant[t]; n > 0 && removedPerTenant[t] >= n {
			why = append(why, fmt.Sprintf("it removes every container of tenant %q (%d)", t, n))
		}
	}
	if len(why) == 0 {
		return nil
	}
	slices.Sort(removed)
	var b strings.Builder
	fmt.Fprintf(&b, "refusing a mass delete: %s.\nIt would remove:\n", strings.Join(why, ", and "))
	for i, name := range removed {
		if i == guardListMax {
			fmt.Fprintf(&b, "  ... and %d more\n", len(removed)-guardListMax)
			break
		}
		fmt.Fprintf(&b, "  - container %s\n", name)
	}
	b.WriteString("If this is intended, pass --allow-mass-delete.")
	return &GuardError{msg: b.String(), Removed: removed}
}

// GuardError is Guard's refusal; Removed lists the containers (or the
// volumes), sorted.
type GuardError struct {
	msg     string
	Removed []string
}

func (e *GuardError) Error() string { return e.msg }
