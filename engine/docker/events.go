package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/moat-platform/moat/engine"
)

// Heartbeat of the event stream: the engine sends nothing on a quiet
// stream, so a stream whose connection is held open by a dead peer (or a
// proxy that blackholes it) would look exactly like a quiet one. A ping
// with a deadline every heartbeatEvery tells them apart.
var (
	heartbeatEvery   = 10 * time.Second
	heartbeatTimeout = 5 * time.Second
)

// driftActions are the events that may mean drift. Starts and creates
// are moat's own doing or show up as a connect on one of its networks.
var (
	containerActions = []events.Action{events.ActionDie, events.ActionDestroy, events.ActionRename, events.ActionUpdate, events.ActionPause}
	networkActions   = []events.Action{events.ActionConnect, events.ActionDisconnect, events.ActionDestroy}
)

// Events implements engine.Engine with one GET /events, filtered on the
// server by type and action and here by instance: container events carry
// the container's labels and name, network events only the network's name,
// which moat always prefixes with "<instance>.". An unmanaged container
// attached to a tenant LAN is seen through the network's connect event.
func (e *Engine) Events(ctx context.Context, instance string) (<-chan engine.Event, <-chan error) {
	out := make(chan engine.Event, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		errc <- e.stream(ctx, eventFilter(), func(m events.Message) (engine.Event, bool) { return relevant(m, instance) }, out)
		close(errc)
	}()
	return out, errc
}

// eventFilter selects the single-host engine's drift events.
func eventFilter() filters.Args {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("type", string(events.NetworkEventType)))
	for _, a := range containerActions {
		f.Add("event", string(a))
	}
	for _, a := range networkActions {
		f.Add("event", string(a))
	}
	return f
}

// stream sends the events f selects and keep accepts to out until ctx
// ends or the stream fails.
func (e *Engine) stream(ctx context.Context, f filters.Args, keep func(events.Message) (engine.Event, bool), out chan<- engine.Event) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The SDK's Events blocks until the request is answered; a blackholed
	// engine must not block us, so it runs in its own goroutine and the
	// heartbeat below bounds the wait.
	type started struct {
		msgs <-chan events.Message
		errs <-chan error
	}
	ready := make(chan started, 1)
	go func() {
		msgs, errs := e.cli.Events(ctx, events.ListOptions{Filters: f})
		ready <- started{msgs, errs}
	}()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	var msgs <-chan events.Message
	var errs <-chan error
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-ready:
			msgs, errs = s.msgs, s.errs
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return wrap(err, "event stream")
		case <-beat.C:
			pctx, pcancel := context.WithTimeout(ctx, heartbeatTimeout)
			_, err := e.cli.Ping(pctx)
			pcancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("event stream: heartbeat: %w: %w", engine.ErrUnreachable, err)
			}
		case m := <-msgs:
			ev, ok := keep(m)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			default: // the consumer coalesces anyway; never block the stream
			}
		}
	}
}

// relevant keeps the events about instance's objects.
func relevant(m events.Message, instance string) (engine.Event, bool) {
	name := m.Actor.Attributes["name"]
	ev := engine.Event{Type: string(m.Type), Action: string(m.Action), Name: name, Time: time.Unix(0, m.TimeNano)}
	prefix := instance + "."
	switch m.Type {
	case events.ContainerEventType:
		// A rename's new name may drop the prefix; its old name is in
		// oldName. The labels are the container's (image labels merged),
		// so the name is what decides, as in Observe.
		return ev, strings.HasPrefix(name, prefix) || strings.HasPrefix(strings.TrimPrefix(m.Actor.Attributes["oldName"], "/"), prefix)
	case events.NetworkEventType:
		return ev, strings.HasPrefix(name, prefix)
	}
	return ev, false
}

// EngineID is the daemon's own id (GET /info), the same whatever socket or
// address reaches it: the instance lock is keyed on it, so that going
// through another path to the same engine cannot get around the lock.
func (e *Engine) EngineID(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, heartbeatTimeout+5*time.Second)
	defer cancel()
	info, err := e.cli.Info(ctx)
	if err != nil {
		return "", wrap(err, "engine info")
	}
	if info.ID == "" {
		return "", fmt.Errorf("engine info: the engine has no id")
	}
	return info.ID, nil
}
