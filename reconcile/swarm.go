package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moat-platform/moat/state"
)

// Swarm (Desired.Engine == state.EngineSwarm) changes three things in a
// plan (docs/SWARM.md):
//   - a container is a service, so a spec change is one rolling update
//     (VerbUpdate, Action Update) carrying the full spec, networks
//     included, instead of a recreate; the engine starts the new task
//     before it stops the old one where the spec allows it;
//   - secrets are Swarm secret objects, one per value (immutable): a
//     missing version is created before the containers that mount it,
//     and a version no desired container mounts is removed after every
//     container operation, so that no service mounts it any more;
//   - an overlay's attachable and encrypted flags are compared with the
//     spec: a tenant overlay made attachable by hand lets any container
//     started on a node join it, so it is replaced like a changed subnet.

// Causes of the Swarm operations.
const (
	causeAttachable   = "attachable by hand"
	causeUnattachable = "no longer attachable"
	causeEncryption   = "encryption changed"
)

// swarm reports whether the plan is for the Swarm engine.
func (c *computer) swarm() bool { return c.d.Engine == state.EngineSwarm }

// planEngine is Plan.Engine: "" for the single-host engine (so that its
// plans stay as they were before Swarm), else the engine's name.
func planEngine(e string) string {
	if e == state.EngineDocker {
		return ""
	}
	return e
}

// indexSecrets indexes desired and observed secrets; duplicates are
// errors like for every other kind.
func (c *computer) indexSecrets() []string {
	var errs []string
	c.dSec = byName(c.d.Secrets, func(s *state.SecretSpec) string { return s.Name }, "desired secret %q is declared twice", &errs)
	// Every secret a container mounts must be declared, whether or not
	// the container changes: otherwise its next update would fail.
	for i := range c.d.Containers {
		for _, m := range c.d.Containers[i].Mounts {
			if m.Type == state.MountSecret && c.dSec[m.Source] == nil && !c.opts.UnknownSecrets {
				errs = append(errs, fmt.Sprintf("container %s mounts secret %s, which is not in the desired state", c.d.Containers[i].Name, m.Source))
			}
		}
	}
	c.oSec = byName(c.o.Secrets, func(s *state.Secret) string { return s.Name }, "observed secret %q is listed twice", &errs)
	return errs
}

// secretConflicts names desired secrets whose name a secret moat does not
// manage for this instance already holds.
func (c *computer) secretConflicts() []string {
	var out []string
	for name := range c.dSec {
		if s := c.oSec[name]; s != nil && !state.Managed(s.Labels, c.inst) {
			out = append(out, "secret "+name+" "+owner(s.Labels))
		}
	}
	return out
}

// secretCreates emits a create of every missing secret version. Without
// the secret store (UnknownSecrets) the versions are not known, so no
// secret operation is planned at all.
func (c *computer) secretCreates() {
	c.secCreate = map[string]string{}
	if c.opts.UnknownSecrets {
		return
	}
	live := map[[2]string]bool{}
	for _, have := range c.oSec {
		if state.Managed(have.Labels, c.inst) && have.Labels[state.LabelSecret] != "" {
			live[secretKey(have.Labels)] = true
		}
	}
	for name, want := range c.dSec {
		if c.oSec[name] != nil {
			continue
		}
		cause := causeMissing
		if live[secretKey(want.Labels)] {
			cause = "new version (rotated)"
		}
		spec := *want
		spec.Labels = maps.Clone(want.Labels)
		c.secCreate[name] = c.add(Operation{Resource: ResourceID{KindSecret, name}, Action: Create,
			Verb: VerbCreateSecret, Cause: cause, Tenant: want.Labels[state.LabelTenant], SecretSpec: &spec})
	}
}

// secretDeps are the creates of the secret versions spec mounts, which its
// create or update waits for.
func (c *computer) secretDeps(spec *state.ContainerSpec) ([]string, error) {
	var deps []string
	for _, m := range spec.Mounts {
		if m.Type != state.MountSecret || c.opts.UnknownSecrets {
			continue
		}
		if c.dSec[m.Source] == nil {
			return nil, fmt.Errorf("reconcile: container %s mounts secret %s, which is not in the desired state", spec.Name, m.Source)
		}
		if id := c.secCreate[m.Source]; id != "" {
			deps = append(deps, id)
		}
	}
	return deps, nil
}

// secretRemovals emits the removal of every managed secret version that
// is no longer desired, after every container operation of the plan: the
// one that stops mounting it may be any of them, and Swarm refuses to
// remove a secret a service still uses.
func (c *computer) secretRemovals() {
	if c.opts.UnknownSecrets {
		return
	}
	var after []string
	for i := range c.ops {
		if op := &c.ops[i]; op.Resource.Kind == KindContainer && op.Action != Report {
			after = append(after, op.ID)
		}
	}
	// A rotation says which version replaces the old one.
	current := map[[2]string]string{}
	for name, want := range c.dSec {
		current[secretKey(want.Labels)] = name
	}
	for name, have := range c.oSec {
		if c.dSec[name] != nil || !state.Managed(have.Labels, c.inst) {
			continue
		}
		cause := causeGone
		if now := current[secretKey(have.Labels)]; now != "" && have.Labels[state.LabelSecret] != "" {
			cause = "old version (now " + now + ")"
		}
		c.add(Operation{Resource: ResourceID{KindSecret, name}, Action: Delete, Verb: VerbRemoveSecret,
			Cause: cause, Tenant: have.Labels[state.LabelTenant], LiveID: have.ID, DependsOn: slices.Clone(after)})
	}
}

// overlayDrift names how a live network's Swarm flags differ from the
// spec ("" when they do not, and always on the single-host engine, whose
// list does not report them). Encryption is the overlay driver option
// "encrypted".
func (c *computer) overlayDrift(want *state.NetworkSpec, have *state.Network) string {
	if !c.swarm() {
		return ""
	}
	var d []string
	switch {
	case have.Attachable && !want.Attachable:
		d = append(d, causeAttachable)
	case !have.Attachable && want.Attachable:
		d = append(d, causeUnattachable)
	}
	if have.Encrypted != (want.Options["encrypted"] == "true") {
		d = append(d, causeEncryption)
	}
	return strings.Join(d, ", ")
}

// networkCause is why a live network must be replaced ("" when it need
// not): "spec changed: subnet", "attachable by hand", or both.
func (c *computer) networkCause(want *state.NetworkSpec, have *state.Network) string {
	var why []string
	if d := networkDiff(want, have); d != "" {
		why = append(why, "spec changed: "+d)
	}
	if d := c.overlayDrift(want, have); d != "" {
		why = append(why, d)
	}
	return strings.Join(why, "; ")
}

// notRunning is the cause of a start of a live container whose spec is
// current ("" when none is needed). On one host only a stopped or
// created container is started (a dead one is recreated, a paused one
// unpaused, a restarting one left to its policy); a Swarm service with
// no running task is restarted by the engine (a forced update), whatever
// state its task reports.
func (c *computer) notRunning(have *state.Container) string {
	switch {
	case c.swarm():
		if have.State == "running" {
			return ""
		}
		if have.State == "" {
			return "no running task"
		}
		return "no running task (" + have.State + ")"
	case have.State == "exited":
		return "stopped"
	case have.State == "created":
		return "created, not running"
	}
	return ""
}

// secretKey is the tenant and the tenant's secret a version belongs to.
func secretKey(labels map[string]string) [2]string {
	return [2]string{labels[state.LabelTenant], labels[state.LabelSecret]}
}
