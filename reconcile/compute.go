package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moat-platform/moat/audit"
	"github.com/moat-platform/moat/state"
)

// Options tune Compute.
type Options struct {
	// EvictUnmanaged disconnects a container that moat does not manage
	// from a tenant LAN instead of only reporting it.
	EvictUnmanaged bool
	// PruneVolumes removes managed volumes that are no longer desired.
	// Only possible when the snapshot listed volumes; off by default
	// because a volume holds data that a config typo must not destroy.
	PruneVolumes bool
	// Revision is the config revision, copied into Plan.Revision.
	Revision string
	// UnknownSecrets: the desired state was compiled without the secret
	// store (compile.Options.UnknownSecrets), so a difference in the
	// "secrets" part alone is not a change; the plan is marked and can
	// only be shown, not applied.
	UnknownSecrets bool
}

// DefaultStopTimeout (seconds) is used to remove a container whose spec is
// no longer known (Docker's own default).
const DefaultStopTimeout = 10

// Causes shared by several places and by tests.
const (
	causeMissing = "missing"
	causeGone    = "no longer in config"
	causeStray   = "attached to a network it must not be on"
	// causeImageChanged: the container runs another image than the one
	// its spec's reference names now.
	causeImageChanged = "image changed"
)

// Compute returns the plan that turns observed into desired. It is pure and
// deterministic: the order of the input slices does not matter, and the
// operations come out in the fixed order of sortOps. Only objects managed
// for desired.Instance are acted on; an object moat does not manage that
// holds a desired name is an error, never touched.
//
// Design notes (why the DAG looks the way it does):
//   - A replaced network is two operations, remove then create, not one:
//     containers that stay must be disconnected before the removal and
//     connected (or recreated) after the creation, which no single
//     operation on either side could express.
//   - A recreate stays one operation (remove+create of the container, as
//     the executor does it); when the old container sits on a network being
//     replaced, a disconnect runs first and the recreate waits for the new
//     network.
//   - A network that must go while an unmanaged container is attached is
//     left alone (reported, with what it blocks) unless EvictUnmanaged:
//     Docker would refuse the removal after moat had already detached its
//     own containers, leaving a tenant cut off until someone intervened.
//   - Containers of another moat instance on one of this instance's LANs
//     are treated as unmanaged: to this instance they are outsiders.
//   - Plan.Fingerprint is state.Fingerprint(observed), so that a saved plan
//     can be refused when the live state moved on.
func Compute(desired *state.Desired, observed *state.Observed, opts Options) (*Plan, error) {
	if desired == nil || observed == nil {
		return nil, errors.New("reconcile: desired and observed state are both required")
	}
	if desired.Instance == "" {
		return nil, errors.New("reconcile: desired state has no instance name")
	}
	c := &computer{inst: desired.Instance, opts: opts, d: desired, o: observed}
	if err := c.index(); err != nil {
		return nil, err
	}
	c.networks()
	c.volumes()
	c.secretCreates()
	if err := c.containers(); err != nil {
		return nil, err
	}
	c.foreign()
	c.removals()
	c.secretRemovals()
	if err := c.hostRules(); err != nil {
		return nil, err
	}
	if err := c.weave(); err != nil {
		return nil, err
	}
	p := &Plan{Instance: desired.Instance, Revision: opts.Revision, Engine: planEngine(desired.Engine), Operations: c.ops,
		Fingerprint: state.Fingerprint(observed), SecretsUnknown: opts.UnknownSecrets}
	if p.Operations == nil {
		p.Operations = []Operation{}
	}
	if err := finish(p); err != nil {
		return nil, err
	}
	return p, nil
}

// computer holds the indexes of one Compute and the operations emitted.
type computer struct {
	inst string
	opts Options
	d    *state.Desired
	o    *state.Observed

	dNet map[string]*state.NetworkSpec
	dVol map[string]*state.VolumeSpec
	dCon map[string]bool
	dSec map[string]*state.SecretSpec
	oSec map[string]*state.Secret
	oNet map[string]*state.Network   // every listed network
	oCon map[string]*state.Container // every listed container
	oVol map[string]*state.Volume    // nil when volumes were not listed

	// netChange is the pending change of each network that will be
	// removed (deleted or replaced); blocked ones are dropped from it.
	netChange map[string]string
	// netCreate maps a network to the ID of the op that creates it.
	netCreate map[string]string
	volCreate map[string]string
	secCreate map[string]string // secret name -> op id
	// detach lists, per network, the ops that take a live container off
	// it: its removal must wait for all of them (Docker refuses to remove
	// a network with endpoints).
	detach map[string][]string
	// gone lists container removals, recreates and updates: what a volume removal
	// waits for (the snapshot does not say which container mounts what).
	gone []string

	ops []Operation
}

func (c *computer) add(op Operation) string {
	op.ID = OpID(op.Verb, op.Resource, op.Network)
	c.ops = append(c.ops, op)
	return op.ID
}

// byName indexes items by name; a name seen twice adds dup (a format
// with one %q) to errs.
func byName[T any](items []T, name func(*T) string, dup string, errs *[]string) map[string]*T {
	out := make(map[string]*T, len(items))
	for i := range items {
		n := name(&items[i])
		if out[n] != nil {
			*errs = append(*errs, fmt.Sprintf(dup, n))
		}
		out[n] = &items[i]
	}
	return out
}

// index builds the name indexes and refuses duplicates and name conflicts.
func (c *computer) index() error {
	var errs []string
	c.dNet = byName(c.d.Networks, func(n *state.NetworkSpec) string { return n.Name }, "desired network %q is declared twice", &errs)
	c.dVol = byName(c.d.Volumes, func(v *state.VolumeSpec) string { return v.Name }, "desired volume %q is declared twice", &errs)
	c.dCon = make(map[string]bool, len(c.d.Containers))
	for i := range c.d.Containers {
		name := c.d.Containers[i].Name
		if c.dCon[name] {
			errs = append(errs, fmt.Sprintf("desired container %q is declared twice", name))
		}
		c.dCon[name] = true
	}
	c.oNet = byName(c.o.Networks, func(n *state.Network) string { return n.Name }, "observed network %q is listed twice", &errs)
	c.oCon = byName(c.o.Containers, func(ct *state.Container) string { return ct.Name }, "observed container %q is listed twice", &errs)
	if c.o.Volumes != nil {
		c.oVol = make(map[string]*state.Volume, len(c.o.Volumes))
		for i := range c.o.Volumes {
			c.oVol[c.o.Volumes[i].Name] = &c.o.Volumes[i]
		}
	}
	errs = append(errs, c.indexSecrets()...)
	if len(errs) > 0 {
		slices.Sort(errs)
		return errors.New("reconcile: " + strings.Join(errs, "; "))
	}

	// Conflicts: a desired name held by an object that is not ours. Moat
	// never touches it, and creating ours would fail or (for a volume)
	// silently mount someone else's data, so the whole plan is refused.
	var conflicts []string
	for name := range c.dNet {
		if n := c.oNet[name]; n != nil && !state.Managed(n.Labels, c.inst) {
			conflicts = append(conflicts, "network "+name+" "+owner(n.Labels))
		}
	}
	for name := range c.dCon {
		if ct := c.oCon[name]; ct != nil && !state.Managed(ct.Labels, c.inst) {
			conflicts = append(conflicts, "container "+name+" "+owner(ct.Labels))
		}
	}
	for name := range c.dVol {
		if v := c.oVol[name]; v != nil && !state.Managed(v.Labels, c.inst) {
			conflicts = append(conflicts, "volume "+name+" "+owner(v.Labels))
		}
	}
	conflicts = append(conflicts, c.secretConflicts()...)
	if len(conflicts) > 0 {
		slices.Sort(conflicts)
		return fmt.Errorf("reconcile: name conflict: %s; moat never touches objects it does not manage for instance %q: rename or remove them by hand",
			strings.Join(conflicts, "; "), c.inst)
	}
	return nil
}

// owner says whose an object is, for the conflict error.
func owner(labels map[string]string) string {
	if labels[state.LabelManagedBy] == state.ManagedBy {
		return fmt.Sprintf("belongs to moat instance %q", labels[state.LabelInstance])
	}
	return "exists and is not managed by moat"
}

// networks emits network creates, replaces and deletes. A network that must
// go but still has an unmanaged container attached (and eviction is off) is
// left alone: removing it would fail after moat had already detached its
// own containers, leaving a tenant half cut off. The report says why.
func (c *computer) networks() {
	c.netChange = map[string]string{}
	c.netCreate = map[string]string{}
	c.detach = map[string][]string{}
	for name, want := range c.dNet {
		have := c.oNet[name]
		if have == nil {
			c.netCreate[name] = c.add(networkOp(want, Create, VerbCreateNetwork, causeMissing))
			continue
		}
		if cause := c.networkCause(want, have); cause != "" {
			c.netChange[name] = cause
		}
	}
	for name, have := range c.oNet {
		if c.dNet[name] == nil && state.Managed(have.Labels, c.inst) {
			c.netChange[name] = causeGone
		}
	}
	if !c.opts.EvictUnmanaged {
		for i := range c.o.Containers {
			ct := &c.o.Containers[i]
			if state.Managed(ct.Labels, c.inst) {
				continue
			}
			for _, n := range ct.Networks {
				delete(c.netChange, n)
			}
		}
	}
	for name, cause := range c.netChange {
		have := c.oNet[name]
		if want := c.dNet[name]; want != nil {
			rm := networkOp(want, Replace, VerbRemoveNetwork, cause)
			rm.NetworkSpec, rm.LiveID = nil, have.ID
			c.add(rm)
			mk := networkOp(want, Replace, VerbCreateNetwork, cause)
			mk.DependsOn = []string{OpID(VerbRemoveNetwork, rm.Resource, "")}
			c.netCreate[name] = c.add(mk)
			continue
		}
		c.add(Operation{
			Resource: ResourceID{KindNetwork, name}, Action: Delete, Verb: VerbRemoveNetwork,
			Cause: cause, Tenant: have.Labels[state.LabelTenant], LiveID: have.ID,
		})
	}
}

func networkOp(n *state.NetworkSpec, a Action, v Verb, cause string) Operation {
	spec := *n
	return Operation{
		Resource: ResourceID{KindNetwork, n.Name}, Action: a, Verb: v, Cause: cause,
		Tenant: n.Labels[state.LabelTenant], NetworkSpec: &spec,
	}
}

// networkDiff names the compared fields that differ. Only what the engine
// reports back is compared; options and gateway are not listed by it.
func networkDiff(want *state.NetworkSpec, have *state.Network) string {
	var d []string
	if want.Driver != have.Driver {
		d = append(d, "driver")
	}
	if want.Internal != have.Internal {
		d = append(d, "internal")
	}
	if want.Subnet != have.Subnet {
		d = append(d, "subnet")
	}
	// The bridge name is moat's (host protection matches it); a network
	// listed without one predates it or was made by hand.
	if b := want.Options[state.OptionBridgeName]; b != "" && b != have.Bridge {
		d = append(d, "bridge")
	}
	return strings.Join(d, ", ")
}

// volumes emits creates of missing volumes and, with PruneVolumes, removals
// (their dependencies are filled in by removals). Without a volume list
// (the no-op path stays at one container and one network list) there are
// no volume operations: a container create or recreate carries the specs
// of its volumes in EnsureVolumes, and the executor creates them first
// (idempotent), so the plan does not show as new what may well exist.
func (c *computer) volumes() {
	c.volCreate = map[string]string{}
	if c.oVol == nil {
		return
	}
	for name, want := range c.dVol {
		if c.oVol[name] == nil {
			c.volCreate[name] = c.add(volumeOp(want, causeMissing))
		}
	}
}

func volumeOp(v *state.VolumeSpec, cause string) Operation {
	spec := *v
	return Operation{
		Resource: ResourceID{KindVolume, v.Name}, Action: Create, Verb: VerbCreateVolume,
		Cause: cause, Tenant: v.Labels[state.LabelTenant], VolumeSpec: &spec,
	}
}

// createDeps are what a container create or recreate waits for: the
// creates of its networks and volumes; and, when volumes were not listed,
// the volumes it must ensure itself.
func (c *computer) createDeps(spec *state.ContainerSpec) ([]string, []state.VolumeSpec, error) {
	var (
		deps   []string
		ensure []state.VolumeSpec
	)
	for _, ep := range spec.Networks {
		if c.dNet[ep.Network] == nil {
			return nil, nil, fmt.Errorf("reconcile: container %s is on network %s, which is not in the desired state", spec.Name, ep.Network)
		}
		if id := c.netCreate[ep.Network]; id != "" {
			deps = append(deps, id)
		}
	}
	for _, m := range spec.Mounts {
		if m.Type != "volume" {
			continue
		}
		if c.dVol[m.Source] == nil {
			return nil, nil, fmt.Errorf("reconcile: container %s mounts volume %s, which is not in the desired state", spec.Name, m.Source)
		}
		if c.oVol == nil {
			ensure = append(ensure, *c.dVol[m.Source])
		} else if id := c.volCreate[m.Source]; id != "" {
			deps = append(deps, id)
		}
	}
	sec, err := c.secretDeps(spec)
	if err != nil {
		return nil, nil, err
	}
	return append(deps, sec...), ensure, nil
}

// containers emits the ops for every desired container: create when
// missing; recreate when its spec hash differs or it cannot be fixed in
// place; otherwise in-place network fixes and a start.
func (c *computer) containers() error {
	for i := range c.d.Containers {
		want := &c.d.Containers[i]
		hash := want.Labels[state.LabelSpecHash]
		if hash == "" {
			return fmt.Errorf("reconcile: desired container %s has no %s label", want.Name, state.LabelSpecHash)
		}
		res := ResourceID{KindContainer, want.Name}
		tenant := want.Labels[state.LabelTenant]
		have := c.oCon[want.Name]
		if have == nil {
			deps, ensure, err := c.createDeps(want)
			if err != nil {
				return err
			}
			spec := *want
			c.add(Operation{Resource: res, Action: Create, Verb: VerbCreate, Cause: causeMissing,
				Tenant: tenant, ContainerSpec: &spec, EnsureVolumes: ensure, DependsOn: deps})
			continue
		}

		cause := ""
		if have.Labels[state.LabelSpecHash] != hash {
			cause = specCause(want.Labels[state.LabelSpecParts], have.Labels[state.LabelSpecParts], c.opts.UnknownSecrets)
		} else if have.State == "dead" && !c.swarm() {
			// A dead service task is Swarm's to replace: a start
			// (forced update) below asks it to.
			cause = have.State
		} else if id := state.ResolveImage(c.o.Images, want.Image); id != "" && have.ImageID != "" && have.ImageID != id {
			// The tag moved to another image since the container was
			// created: the spec hash cannot see it (same reference).
			// Not checked when the snapshot resolved no images.
			cause = causeImageChanged
		} else if have.Inspect != nil {
			// Inspected (apply's audit): a container whose live settings
			// are not what moat creates (forged with moat's labels, or
			// changed by docker update) is recreated, whatever its label.
			cause = auditCause(want, have.Inspect, !c.opts.UnknownSecrets, c.o.Unenforceable)
		}
		if cause != "" {
			deps, ensure, err := c.createDeps(want)
			if err != nil {
				return err
			}
			spec := *want
			timeout := want.StopTimeout
			if timeout <= 0 {
				timeout = DefaultStopTimeout
			}
			op := Operation{Resource: res, Action: Replace, Verb: VerbRecreate, Cause: cause,
				Tenant: tenant, LiveID: have.ID, ContainerSpec: &spec, EnsureVolumes: ensure, StopTimeout: timeout, DependsOn: deps}
			if c.swarm() {
				// One rolling update sets everything, networks included:
				// no connect or disconnect of its own, and no stop timeout
				// (the spec carries the one Swarm uses).
				op.Action, op.Verb, op.StopTimeout = Update, VerbUpdate, 0
			}
			id := c.add(op)
			c.gone = append(c.gone, id)
			// The old container leaves every network with the recreate,
			// except a network being replaced that the new one is on too:
			// the recreate waits for that network's new version, so the
			// old container must be disconnected from the old one first.
			for _, n := range have.Networks {
				if _, changing := c.netChange[n]; !changing {
					continue
				}
				if c.dNet[n] != nil && onNetwork(want, n) >= 0 {
					c.detach[n] = append(c.detach[n], c.add(Operation{Resource: res, Action: Update,
						Verb: VerbDisconnect, Cause: "network " + n + " is being replaced", Tenant: tenant,
						Network: n, LiveID: have.ID}))
				} else {
					c.detach[n] = append(c.detach[n], id)
				}
			}
			continue
		}

		// In place. A start waits for the network fixes, so that a stopped
		// container never runs while still on a network it must not be on.
		// A paused container is resumed first: pausing by hand freezes the
		// app, it does not change what it is, so recreating it would throw
		// away its state for nothing.
		var fixes, first []string
		if have.State == "paused" && !c.swarm() {
			id := c.add(Operation{Resource: res, Action: Update, Verb: VerbUnpause, Cause: "paused",
				Tenant: tenant, LiveID: have.ID})
			fixes, first = append(fixes, id), []string{id}
		}
		stale := c.staleEndpoints(have)
		for _, n := range have.Networks {
			if onNetwork(want, n) < 0 {
				deps := slices.Clone(first)
				if id := c.netCreate[n]; id != "" && stale[n] {
					deps = append(deps, id) // a stale endpoint goes only by name
				}
				id := c.add(Operation{Resource: res, Action: Update, Verb: VerbDisconnect, Cause: causeStray,
					Tenant: tenant, Network: n, LiveID: have.ID, DependsOn: deps})
				fixes = append(fixes, id)
				if _, changing := c.netChange[n]; changing {
					c.detach[n] = append(c.detach[n], id)
				}
			}
		}
		for _, ep := range want.Networks {
			if c.dNet[ep.Network] == nil {
				return fmt.Errorf("reconcile: container %s is on network %s, which is not in the desired state", want.Name, ep.Network)
			}
			var cause string
			deps := slices.Clone(first)
			if id := c.netCreate[ep.Network]; id != "" {
				deps = append(deps, id)
			}
			if !slices.Contains(have.Networks, ep.Network) {
				cause = "not attached to " + ep.Network
			} else if stale[ep.Network] {
				// The network was removed by hand (and is created again
				// by this plan, or was already): the endpoint points at
				// an id that no longer exists and the container would not
				// start. A forced disconnect by name, once the network of
				// that name exists again, drops the stale endpoint.
				id := c.add(Operation{Resource: res, Action: Update, Verb: VerbDisconnect,
					Cause: "attached to a removed network", Tenant: tenant,
					Network: ep.Network, LiveID: have.ID, DependsOn: slices.Clone(deps)})
				fixes = append(fixes, id)
				deps = append(deps, id)
				cause = "network " + ep.Network + " was removed by hand"
			} else {
				if _, changing := c.netChange[ep.Network]; !changing {
					continue
				}
				// Detach from the old network, attach to the new one.
				id := c.add(Operation{Resource: res, Action: Update, Verb: VerbDisconnect,
					Cause: "network " + ep.Network + " is being replaced", Tenant: tenant,
					Network: ep.Network, LiveID: have.ID})
				c.detach[ep.Network] = append(c.detach[ep.Network], id)
				fixes = append(fixes, id)
				cause = "network " + ep.Network + " was replaced"
				deps = append(deps, id)
			}
			fixes = append(fixes, c.add(Operation{Resource: res, Action: Update, Verb: VerbConnect, Cause: cause,
				Tenant: tenant, Network: ep.Network, Aliases: slices.Clone(ep.Aliases), LiveID: have.ID, DependsOn: deps}))
		}
		if cause := c.notRunning(have); cause != "" {
			// It also waits for the creates of its networks: a start
			// on a network that does not exist yet fails.
			deps := slices.Clone(fixes)
			for _, ep := range want.Networks {
				if id := c.netCreate[ep.Network]; id != "" && !slices.Contains(deps, id) {
					deps = append(deps, id)
				}
			}
			// A service's task mounts its secrets when it starts.
			sec, err := c.secretDeps(want)
			if err != nil {
				return err
			}
			deps = append(deps, sec...)
			c.add(Operation{Resource: res, Action: Update, Verb: VerbStart, Cause: cause,
				Tenant: tenant, LiveID: have.ID, DependsOn: deps})
		}
	}
	return nil
}

// staleEndpoints are the networks of have whose endpoint points at a
// network id that is no longer the live network of that name: removed by
// hand (and maybe created again since). Only moat's networks count; the
// snapshot does not list others.
func (c *computer) staleEndpoints(have *state.Container) map[string]bool {
	var out map[string]bool
	for n, id := range have.NetworkIDs {
		live := c.oNet[n]
		if (live == nil && c.dNet[n] == nil) || (live != nil && live.ID == id) {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[n] = true
	}
	return out
}

// auditCause names the failed audit checks of a live container ("" when
// it passes).
// Checks the engine cannot enforce (Observed.Unenforceable) are left to
// the audit's report: an update for them would change nothing.
func auditCause(want *state.ContainerSpec, have *state.Inspect, knownBinds bool, unenforceable map[string]string) string {
	var checks []string
	for _, f := range audit.ContainerFindings(want, have, knownBinds) {
		if _, skip := unenforceable[f.Check]; !skip {
			checks = append(checks, f.Check)
		}
	}
	if len(checks) == 0 {
		return ""
	}
	slices.Sort(checks)
	return "audit failed: " + strings.Join(slices.Compact(checks), ", ")
}

// onNetwork returns the index of network n among spec's endpoints, or -1.
func onNetwork(spec *state.ContainerSpec, n string) int {
	for i := range spec.Networks {
		if spec.Networks[i].Network == n {
			return i
		}
	}
	return -1
}

// specCause names the parts of a spec that changed by comparing the
// "part=hash,..." labels; "spec changed" alone when either is missing or
// they do not tell (an older moat wrote other parts). Slices rather than
// maps: a recreate of every container must stay cheap, and there are only
// a handful of parts.
//
// With unknownSecrets a changed "secrets" part is not a change (its digest
// is a placeholder): only the other parts count, and none means no cause.
func specCause(want, have string, unknownSecrets bool) string {
	w, h := parseParts(want), parseParts(have)
	if w == nil || h == nil {
		return "spec changed"
	}
	var diff []string
	for _, kv := range w {
		if v, ok := lookup(h, kv[0]); !ok || v != kv[1] {
			diff = append(diff, kv[0])
		}
	}
	for _, kv := range h {
		if _, ok := lookup(w, kv[0]); !ok {
			diff = append(diff, kv[0])
		}
	}
	if unknownSecrets {
		diff = slices.DeleteFunc(diff, func(p string) bool { return p == "secrets" })
		if len(diff) == 0 {
			return ""
		}
	}
	if len(diff) == 0 {
		return "spec changed"
	}
	slices.Sort(diff)
	return "spec changed: " + strings.Join(slices.Compact(diff), ", ")
}

// parseParts splits "k=v,..." into pairs; nil when empty or malformed.
func parseParts(s string) [][2]string {
	if s == "" {
		return nil
	}
	out := make([][2]string, 0, strings.Count(s, ",")+1)
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

func lookup(parts [][2]string, k string) (string, bool) {
	for _, kv := range parts {
		if kv[0] == k {
			return kv[1], true
		}
	}
	return "", false
}
