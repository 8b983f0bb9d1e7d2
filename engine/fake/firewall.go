package fake

import (
	"context"
	"errors"
	"fmt"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// Firewall is the in-memory host firewall of a fake engine, kept in the same
// state file: per instance, the rule-set hash of each protected network.
// Deny makes Check fail, like a host where moat is not root.
type Firewall struct {
	e    *Engine
	Deny string
}

var _ engine.Firewall = (*Firewall)(nil)

// Firewall returns the engine's host firewall. MOAT_FAKE_FIREWALL_DENY (read
// by the CLI) sets Deny.
func (e *Engine) Firewall() *Firewall { return &Firewall{e: e} }

// Check fails when Deny is set.
func (f *Firewall) Check(context.Context) error {
	if f.Deny != "" {
		return errors.New(f.Deny)
	}
	return nil
}

// Observe returns the fake rules of instance: every rule set is complete
// (the fake has no partial rule sets), and the jumps exist while any rule
// does.
func (f *Firewall) Observe(_ context.Context, instance string) (*state.HostFirewall, error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	if f.Deny != "" {
		return &state.HostFirewall{Error: f.Deny}, nil
	}
	n := len(firewall.Rules(instance, state.HostRulesSpec{}))
	fw := &state.HostFirewall{Jumps: true, Rules: map[string]state.HostRuleSet{}}
	for network, hash := range f.e.st.HostRules[instance] {
		fw.Rules[network] = state.HostRuleSet{Count: n, Hashes: []string{hash}}
	}
	return fw, nil
}

// Ensure records spec's hash.
func (f *Firewall) Ensure(_ context.Context, instance string, spec state.HostRulesSpec) error {
	return f.e.call("EnsureHostRules", func() error {
		if f.Deny != "" {
			return fmt.Errorf("host rules of %s: %s", spec.Network, f.Deny)
		}
		if f.e.st.HostRules == nil {
			f.e.st.HostRules = map[string]map[string]string{}
		}
		if f.e.st.HostRules[instance] == nil {
			f.e.st.HostRules[instance] = map[string]string{}
		}
		f.e.st.HostRules[instance][spec.Network] = spec.Hash
		return nil
	})
}

// Remove forgets a network's rules.
func (f *Firewall) Remove(_ context.Context, instance, network string) error {
	return f.e.call("RemoveHostRules", func() error {
		delete(f.e.st.HostRules[instance], network)
		if len(f.e.st.HostRules[instance]) == 0 {
			delete(f.e.st.HostRules, instance)
		}
		return nil
	})
}
