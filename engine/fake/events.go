package fake

import (
	"context"
	"strings"
	"time"

	"github.com/moat-platform/moat/engine"
)

// subscriber is one Events call.
type subscriber struct {
	instance string
	ch       chan engine.Event
}

// Events implements engine.Engine: the helpers that play the operator
// (Stop, Remove, ConnectUnmanaged, AddContainer) and moat's own removals
// and (dis)connections publish what the Docker engine would. Events of
// other instances are filtered out by name, as the Docker driver does.
// CutEvents ends every stream with an error, like a lost connection.
func (e *Engine) Events(ctx context.Context, instance string) (<-chan engine.Event, <-chan error) {
	out := make(chan engine.Event, 64)
	errc := make(chan error, 1)
	sub := &subscriber{instance: instance, ch: make(chan engine.Event, 64)}
	e.mu.Lock()
	if e.subs == nil {
		e.subs = map[*subscriber]bool{}
	}
	e.subs[sub] = true
	e.mu.Unlock()
	go func() {
		defer func() {
			e.mu.Lock()
			delete(e.subs, sub)
			e.mu.Unlock()
			close(out)
			close(errc)
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-sub.ch:
				if !ok {
					errc <- engine.ErrUnreachable
					return
				}
				out <- ev
			}
		}
	}()
	return out, errc
}

// CutEvents ends every open event stream with engine.ErrUnreachable.
func (e *Engine) CutEvents() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		close(s.ch)
		delete(e.subs, s)
	}
}

// publishLocked sends an event to the subscribers of name's instance;
// e.mu is held. A full subscriber drops it: consumers coalesce anyway.
// In Swarm mode names are "<instance>--..." and what happens to one of
// the instance's containers is a service event, as the Swarm engine's
// stream says (service, network and secret events).
func (e *Engine) publishLocked(typ, action, name string) {
	if e.quiet {
		return
	}
	for s := range e.subs {
		t := typ
		switch {
		case e.st.Swarm && strings.HasPrefix(name, s.instance+"--"):
			if t == "container" {
				t = "service"
			}
		case !strings.HasPrefix(name, s.instance+"."):
			continue
		}
		select {
		case s.ch <- engine.Event{Type: t, Action: action, Name: name, Time: time.Now()}:
		default:
		}
	}
}

// Publish sends an event as the engine would, without changing anything:
// with Quietly, a test makes the real engine's order (an event logged
// before the container list shows its change).
func (e *Engine) Publish(typ, action, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.publishLocked(typ, action, name)
}

// Quietly runs f with every event muted.
func (e *Engine) Quietly(f func()) {
	e.mu.Lock()
	e.quiet = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.quiet = false
		e.mu.Unlock()
	}()
	f()
}
