package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

// swarmPoll is the pause between looks at a service that Swarm changes
// asynchronously (tasks starting, an update rolling, tasks going away).
var swarmPoll = 250 * time.Millisecond

// maxVersionRetries bounds the re-reads after a service update lost the
// race against another update of the same service.
const maxVersionRetries = 5

// CreateNetwork creates an overlay network; the single-host create does
// it (driver, internal, attachable, subnet and options come from the
// spec), including the takeover of an interrupted run's network.
func (s *Swarm) CreateNetwork(ctx context.Context, spec state.NetworkSpec) (string, error) {
	if spec.Driver != "overlay" {
		return "", fmt.Errorf("create network %s: driver %q: a Swarm network must be an overlay (rule swarm.driver)", spec.Name, spec.Driver)
	}
	return s.Engine.CreateNetwork(ctx, spec)
}

// RemoveNetwork removes a managed network. The task containers of a
// service just removed leave it asynchronously (on every node): while the
// engine says it has active endpoints (a task on this node) or is in use
// by a task (the manager's answer for a task on another node, whose
// containers RemoveContainer cannot see), it is tried again until the
// write deadline.
func (s *Swarm) RemoveNetwork(ctx context.Context, name string) error {
	until := time.Now().Add(s.timeouts.Write)
	for {
		err := s.Engine.RemoveNetwork(ctx, name)
		if err == nil {
			break
		}
		if !isMessage(err, "active endpoints", "in use by task") || time.Now().After(until) {
			return err
		}
		if err := sleep(ctx, swarmPoll); err != nil {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
	}
	// The manager forgets the network at once, but the node's own copy
	// goes a moment later: a create of the same name in between (a
	// replaced network) meets it, takes it over as an interrupted run's
	// network, and every connect to it then fails with "not found". So
	// the removal ends when the name is gone.
	for {
		_, err := s.inspectNetwork(ctx, name)
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil && !isMessage(err, "not found") {
			return fmt.Errorf("remove network %s: wait until it is gone: %w", name, err)
		}
		if time.Now().After(until) {
			return fmt.Errorf("remove network %s: still listed %s after its removal", name, s.timeouts.Write)
		}
		if err := sleep(ctx, swarmPoll); err != nil {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
	}
}

// CreateContainer creates the service of spec and waits (bounded by the
// write deadline) until its task runs. A service of that name left by an
// interrupted run of this instance is updated to spec instead.
func (s *Swarm) CreateContainer(ctx context.Context, spec state.ContainerSpec) (string, error) {
	s.warnNoNewPrivileges(spec)
	ids, err := s.secretIDs(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	svc, err := serviceSpec(spec, ids, s.caps)
	if err != nil {
		return "", fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	// Sent again on a transient error: a create that happened meets its
	// own service (a conflict) and is taken over below.
	resp, err := call(s.Engine, ctx, "create service "+spec.Name, write, func(ctx context.Context) (swarm.ServiceCreateResponse, error) {
		return s.cli.ServiceCreate(ctx, svc, swarm.ServiceCreateOptions{QueryRegistry: false})
	})
	if err != nil {
		if !cerrdefs.IsConflict(err) && !isMessage(err, "already exists", "name conflicts") {
			return "", wrap(err, "create service %s", spec.Name)
		}
		old, ierr := s.inspectService(ctx, spec.Name)
		if ierr != nil {
			return "", wrap(ierr, "create service %s: inspect the service of that name", spec.Name)
		}
		if !state.Managed(old.Spec.Labels, spec.Labels[state.LabelInstance]) {
			return "", fmt.Errorf("create service %s: %w: a service of that name already exists and is not this instance's; rename or remove it by hand",
				spec.Name, engine.ErrNotManaged)
		}
		s.log.Warn("updating the service left by an interrupted run", "service", spec.Name, "id", old.ID)
		return old.ID, s.UpdateContainer(ctx, old.ID, spec)
	}
	if err := s.waitRunning(ctx, resp.ID, spec.Name); err != nil {
		// As on one host, a failed create leaves nothing behind: the
		// service would keep Swarm retrying a task that cannot run, and
		// the next plan creates it again. Removed even when ctx ended
		// (that may be why the wait failed), under the cleanup deadline.
		step := fmt.Errorf("create service %s: %w", spec.Name, err)
		rerr := s.do(context.WithoutCancel(ctx), "remove service "+spec.Name, cleanup, 0, func(ctx context.Context) error {
			return s.cli.ServiceRemove(ctx, resp.ID)
		})
		if rerr := ignoreNotFound(rerr); rerr != nil {
			return "", fmt.Errorf("%w (and removing the service failed: %v; the next apply updates it)", step, rerr)
		}
		return "", step
	}
	return resp.ID, nil
}

// UpdateContainer replaces a service's spec with spec's (a rolling update
// in spec.Swarm.UpdateOrder) and waits until Swarm reports the update
// completed. ForceUpdate is raised every time, so that every update rolls
// (and reports its end) even when only the service-level settings changed.
func (s *Swarm) UpdateContainer(ctx context.Context, id string, spec state.ContainerSpec) error {
	s.warnNoNewPrivileges(spec)
	ids, err := s.secretIDs(ctx, spec)
	if err != nil {
		return fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	svc, err := serviceSpec(spec, ids, s.caps)
	if err != nil {
		return fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	mu := s.lock(id)
	defer mu.Unlock()
	return s.updateService(ctx, id, "update service "+spec.Name, func(old *swarm.Service) (swarm.ServiceSpec, error) {
		if !s.mayDelete(old.Spec.Labels) {
			return swarm.ServiceSpec{}, fmt.Errorf("%w: it lacks the labels %s=%s/%s", engine.ErrNotManaged, state.LabelManagedBy, state.ManagedBy, state.LabelInstance)
		}
		svc.TaskTemplate.ForceUpdate = old.Spec.TaskTemplate.ForceUpdate + 1
		return svc, nil
	})
}

// StartContainer restarts the task of a service whose task is not
// running (it exhausted its restart attempts): a forced update.
func (s *Swarm) StartContainer(ctx context.Context, id string) error {
	mu := s.lock(id)
	defer mu.Unlock()
	return s.updateService(ctx, id, "start service "+id, func(old *swarm.Service) (swarm.ServiceSpec, error) {
		spec := old.Spec
		spec.TaskTemplate.ForceUpdate++
		return spec, nil
	})
}

// UnpauseContainer: a service is never paused (its tasks are Swarm's).
func (s *Swarm) UnpauseContainer(context.Context, string) error { return nil }

// RemoveContainer removes a managed service and waits until its task
// containers on this node are gone (they get timeout seconds to stop), so
// that its networks can be removed next. A missing service is success.
func (s *Swarm) RemoveContainer(ctx context.Context, id string, timeout int) error {
	svc, err := s.inspectService(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove service %s: inspect", id)
	}
	if !s.mayDelete(svc.Spec.Labels) {
		return fmt.Errorf("remove service %s: %w: it lacks the labels %s=%s/%s", id, engine.ErrNotManaged,
			state.LabelManagedBy, state.ManagedBy, state.LabelInstance)
	}
	name := svc.Spec.Name
	err = s.do(ctx, "remove service "+name, write, 0, func(ctx context.Context) error {
		return s.cli.ServiceRemove(ctx, svc.ID)
	})
	if err := ignoreNotFound(err); err != nil {
		return wrap(err, "remove service %s", name)
	}
	grace := time.Duration(max(timeout, 0)) * time.Second
	if svc.Spec.TaskTemplate.ContainerSpec != nil && svc.Spec.TaskTemplate.ContainerSpec.StopGracePeriod != nil {
		grace = max(grace, *svc.Spec.TaskTemplate.ContainerSpec.StopGracePeriod)
	}
	wctx, cancel := context.WithTimeout(ctx, grace+s.timeouts.StopMargin)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", labelSwarmServiceID+"="+svc.ID))
	for {
		left, err := call(s.Engine, wctx, "list task containers of "+name, read, func(ctx context.Context) ([]container.Summary, error) {
			return s.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		})
		if err == nil && len(left) == 0 {
			return nil
		}
		if wctx.Err() != nil || (err != nil && ctx.Err() != nil) {
			return fmt.Errorf("remove service %s: its task containers did not go away within %s (%d left): %w",
				name, grace+s.timeouts.StopMargin, len(left), errors.Join(err, wctx.Err()))
		}
		if err := sleep(wctx, swarmPoll); err != nil && ctx.Err() != nil {
			return fmt.Errorf("remove service %s: %w", name, err)
		}
	}
}

// Connect attaches a service to a network with aliases (an update of the
// service's networks, which rolls its task); an existing attachment is
// success. A plain container (one started by hand) is connected as on
// one host.
func (s *Swarm) Connect(ctx context.Context, netName, ctr string, aliases []string) error {
	return s.attach(ctx, netName, ctr, func(nets []swarm.NetworkAttachmentConfig, i int, target string) ([]swarm.NetworkAttachmentConfig, bool) {
		if i >= 0 {
			return nets, false
		}
		return append(nets, swarm.NetworkAttachmentConfig{Target: target, Aliases: aliases}), true
	}, func() error { return s.Engine.Connect(ctx, netName, ctr, aliases) })
}

// Disconnect detaches a service (or a plain container) from a network;
// no attachment, no service or no network is success.
func (s *Swarm) Disconnect(ctx context.Context, netName, ctr string) error {
	return s.attach(ctx, netName, ctr, func(nets []swarm.NetworkAttachmentConfig, i int, _ string) ([]swarm.NetworkAttachmentConfig, bool) {
		if i < 0 {
			return nets, false
		}
		return slices.Delete(nets, i, i+1), true
	}, func() error { return s.Engine.Disconnect(ctx, netName, ctr) })
}

// attach is the read-modify-write of a service's networks: change gets
// the attachments, the index of netName among them (-1) and the target
// to add, and says whether it changed anything. plain handles a name that
// is no service.
func (s *Swarm) attach(ctx context.Context, netName, ctr string,
	change func([]swarm.NetworkAttachmentConfig, int, string) ([]swarm.NetworkAttachmentConfig, bool), plain func() error) error {
	mu := s.lock(ctr)
	defer mu.Unlock()
	if _, err := s.inspectService(ctx, ctr); cerrdefs.IsNotFound(err) {
		return plain()
	}
	n, err := s.inspectNetwork(ctx, netName)
	netID := ""
	switch {
	case err == nil:
		netID = n.ID
	case !cerrdefs.IsNotFound(err):
		return wrap(err, "attach service %s to network %s: inspect network", ctr, netName)
	}
	err = s.updateService(ctx, ctr, "change networks of service "+ctr, func(old *swarm.Service) (swarm.ServiceSpec, error) {
		spec := old.Spec
		nets := slices.Clone(spec.TaskTemplate.Networks)
		i := slices.IndexFunc(nets, func(a swarm.NetworkAttachmentConfig) bool {
			return a.Target == netName || (netID != "" && a.Target == netID)
		})
		nets, changed := change(nets, i, netName)
		if !changed {
			return swarm.ServiceSpec{}, errNoChange
		}
		spec.TaskTemplate.Networks = nets
		return spec, nil
	})
	if errors.Is(err, errNoChange) || cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

var errNoChange = errors.New("no change")

// updateService reads the service, lets mutate make the new spec from it
// and sends it with the version read, again when another update came
// first; then waits until the rolling update completed. mutate's error
// ends it unchanged.
func (s *Swarm) updateService(ctx context.Context, id, what string, mutate func(*swarm.Service) (swarm.ServiceSpec, error)) error {
	for attempt := 0; ; attempt++ {
		old, err := s.inspectService(ctx, id)
		if err != nil {
			return wrap(err, "%s: inspect", what)
		}
		if rolling(old.UpdateStatus) && attempt < maxVersionRetries {
			// An update already rolling (one made by hand, still in its
			// monitor window) would count the task ours replaces as a
			// failure of its own and roll back over ours: let it end
			// first.
			if err := s.waitSettled(ctx, old.ID); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			continue
		}
		spec, err := mutate(&old)
		if err != nil {
			if errors.Is(err, errNoChange) {
				return err
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		var prev time.Time
		if old.UpdateStatus != nil && old.UpdateStatus.StartedAt != nil {
			prev = *old.UpdateStatus.StartedAt
		}
		// Not sent again by do on a transient error: with the version
		// read above, a second send after a first that happened is a
		// version conflict, handled here by reading again.
		_, err = call(s.Engine, ctx, what, write, func(ctx context.Context) (swarm.ServiceUpdateResponse, error) {
			return s.cli.ServiceUpdate(ctx, old.ID, old.Version, spec, swarm.ServiceUpdateOptions{QueryRegistry: false})
		})
		if err != nil && isMessage(err, "update out of sequence") && attempt < maxVersionRetries {
			continue
		}
		if err != nil {
			return wrap(err, "%s", what)
		}
		if err := s.waitUpdated(ctx, old.ID, prev); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// rolling reports whether a service's update or rollback is in progress.
func rolling(us *swarm.UpdateStatus) bool {
	return us != nil && (us.State == swarm.UpdateStateUpdating || us.State == swarm.UpdateStateRollbackStarted)
}

// waitSettled polls the service until no update or rollback of it is in
// progress, bounded by the write deadline.
func (s *Swarm) waitSettled(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, s.timeouts.Write)
	defer cancel()
	for {
		svc, err := s.inspectService(wctx, id)
		if err != nil {
			return s.waitErr(ctx, wctx, id, "the update in progress to end", err)
		}
		if !rolling(svc.UpdateStatus) {
			return nil
		}
		if err := sleep(wctx, swarmPoll); err != nil {
			return s.waitErr(ctx, wctx, id, "the update in progress to end", err)
		}
	}
}

// waitUpdated polls the service until the update started after prev
// completed, bounded by the write deadline. A rollback or a pause is an
// error naming the failed task's error.
func (s *Swarm) waitUpdated(ctx context.Context, id string, prev time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, s.timeouts.Write)
	defer cancel()
	for {
		svc, err := s.inspectService(wctx, id)
		if err != nil {
			return s.waitErr(ctx, wctx, id, "the update to complete", err)
		}
		if us := svc.UpdateStatus; us != nil && us.StartedAt != nil && us.StartedAt.After(prev) {
			switch us.State {
			case swarm.UpdateStateCompleted:
				return nil
			case swarm.UpdateStatePaused, swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
				return fmt.Errorf("rolling update %s: %s%s", us.State, us.Message, s.taskError(ctx, id))
			}
		}
		if err := sleep(wctx, swarmPoll); err != nil {
			return s.waitErr(ctx, wctx, id, "the update to complete", err)
		}
	}
}

// waitRunning polls the service's tasks until one runs, bounded by the
// write deadline; a task that failed or was rejected (no such image, a
// secret missing) ends the wait with its error.
func (s *Swarm) waitRunning(ctx context.Context, id, name string) error {
	wctx, cancel := context.WithTimeout(ctx, s.timeouts.Write)
	defer cancel()
	f := filters.NewArgs(filters.Arg("service", id))
	for {
		tasks, err := call(s.Engine, wctx, "list tasks of "+name, read, func(ctx context.Context) ([]swarm.Task, error) {
			return s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		})
		if err != nil {
			return s.waitErr(ctx, wctx, id, "a running task", err)
		}
		for _, t := range tasks {
			switch t.Status.State {
			case swarm.TaskStateRunning:
				return nil
			case swarm.TaskStateFailed, swarm.TaskStateRejected:
				return fmt.Errorf("task %s: %s", t.Status.State, taskMessage(t))
			}
		}
		if err := sleep(wctx, swarmPoll); err != nil {
			return s.waitErr(ctx, wctx, id, "a running task", err)
		}
	}
}

// waitErr explains a wait that ended: the caller's ctx, or the write
// deadline (with the last task's state: "no suitable node" and the like).
func (s *Swarm) waitErr(ctx, wctx context.Context, id, what string, err error) error {
	if ctx.Err() != nil || wctx.Err() == nil {
		return err
	}
	return fmt.Errorf("no %s within %s%s", what, s.timeouts.Write, s.taskError(ctx, id))
}

// taskError describes the newest task of a service that did not run
// (": task failed: ..."), for error messages; "" when there is none.
func (s *Swarm) taskError(ctx context.Context, id string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeouts.Cleanup)
	defer cancel()
	tasks, err := call(s.Engine, ctx, "list tasks of "+id, cleanup, func(ctx context.Context) ([]swarm.Task, error) {
		return s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	})
	if err != nil {
		return ""
	}
	var last *swarm.Task
	for i := range tasks {
		t := &tasks[i]
		if t.Status.State == swarm.TaskStateRunning {
			continue
		}
		if last == nil || t.Status.Timestamp.After(last.Status.Timestamp) {
			last = t
		}
	}
	if last == nil {
		return ""
	}
	return fmt.Sprintf(": task %s: %s", last.Status.State, taskMessage(*last))
}

func taskMessage(t swarm.Task) string {
	if t.Status.Err != "" {
		if isMessage(errors.New(t.Status.Err), "no such image") {
			return t.Status.Err + " (moat never pulls; build or load the image on every node first)"
		}
		return t.Status.Err
	}
	return t.Status.Message
}

// inspectService reads a service by name or id.
func (s *Swarm) inspectService(ctx context.Context, ref string) (swarm.Service, error) {
	return call(s.Engine, ctx, "inspect service "+ref, read, func(ctx context.Context) (swarm.Service, error) {
		svc, _, err := s.cli.ServiceInspectWithRaw(ctx, ref, swarm.ServiceInspectOptions{})
		return svc, err
	})
}

// lock returns the locked mutex of one service.
func (s *Swarm) lock(ref string) *sync.Mutex {
	v, _ := s.locks.LoadOrStore(ref, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu
}

// CreateSecret creates a secret version from the value at spec.Source
// (read here, at most Swarm's 500 KiB, never logged or kept). A secret of
// that name of this instance is the same version (the name carries the
// value's digest): taken over.
func (s *Swarm) CreateSecret(ctx context.Context, spec state.SecretSpec) (string, error) {
	data, err := readSecret(spec.Source)
	if err != nil {
		return "", fmt.Errorf("create secret %s: %w", spec.Name, err)
	}
	defer clear(data)
	resp, err := call(s.Engine, ctx, "create secret "+spec.Name, write, func(ctx context.Context) (swarm.SecretCreateResponse, error) {
		return s.cli.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: spec.Name, Labels: spec.Labels}, Data: data})
	})
	if err == nil {
		return resp.ID, nil
	}
	if !cerrdefs.IsConflict(err) && !isMessage(err, "already exists") {
		return "", wrap(err, "create secret %s", spec.Name)
	}
	old, _, ierr := s.inspectSecret(ctx, spec.Name)
	if ierr != nil || !state.Managed(old.Spec.Labels, spec.Labels[state.LabelInstance]) {
		return "", fmt.Errorf("create secret %s: %w: a secret of that name exists and is not this instance's: %w", spec.Name, engine.ErrNotManaged, err)
	}
	return old.ID, nil
}

// readSecret reads a secret value, refusing one larger than Swarm takes.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretSize {
		clear(data)
		return nil, fmt.Errorf("the value is larger than Swarm's limit of %d KiB", maxSecretSize/1024)
	}
	return data, nil
}

func (s *Swarm) inspectSecret(ctx context.Context, ref string) (swarm.Secret, []byte, error) {
	var raw []byte
	sec, err := call(s.Engine, ctx, "inspect secret "+ref, read, func(ctx context.Context) (swarm.Secret, error) {
		var sec swarm.Secret
		var err error
		sec, raw, err = s.cli.SecretInspectWithRaw(ctx, ref)
		return sec, err
	})
	return sec, raw, err
}

// RemoveSecret removes a managed secret; a missing one is success.
func (s *Swarm) RemoveSecret(ctx context.Context, name string) error {
	sec, _, err := s.inspectSecret(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove secret %s: inspect", name)
	}
	if !s.mayDelete(sec.Spec.Labels) {
		return fmt.Errorf("remove secret %s: %w", name, engine.ErrNotManaged)
	}
	err = s.do(ctx, "remove secret "+name, write, 0, func(ctx context.Context) error {
		return s.cli.SecretRemove(ctx, sec.ID)
	})
	if err := ignoreNotFound(err); err != nil {
		return wrap(err, "remove secret %s", name)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
