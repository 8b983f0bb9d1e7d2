// Package hostfw applies moat's host protection rules with the iptables
// commands (iptables-save to read, iptables-restore --noflush to write, one
// atomic commit per change). It is the only package that touches the host
// firewall; which rules exist is decided by package firewall (pure), and
// when by the plan. Every command runs under a deadline and holds the
// xtables lock only as long as it takes (-w).
package hostfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// ErrUnavailable wraps every failure to use iptables at all (not root, no
// binary, no DOCKER-USER chain), so that apply can refuse before acting.
var ErrUnavailable = errors.New("host firewall unavailable")

// Timeout bounds each iptables command.
const Timeout = 20 * time.Second

// Firewall drives iptables for one process. The mutex serialises moat's own
// read-modify-write cycles (the executor runs operations in parallel); the
// xtables lock (-w) serialises against everyone else.
type Firewall struct {
	// Save and Restore are the commands; tests may point them elsewhere.
	Save, Restore string
	mu            sync.Mutex
}

// New returns a Firewall using iptables-save and iptables-restore from PATH
// (with /usr/sbin and /sbin appended, where distributions put them).
func New() *Firewall {
	return &Firewall{Save: "iptables-save", Restore: "iptables-restore"}
}

func (f *Firewall) run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	path, err := lookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (install iptables): %w", ErrUnavailable, name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(filterWarnings(errb.String()))
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: timed out after %s: %w", name, Timeout, ctx.Err())
		}
		if os.Geteuid() != 0 || strings.Contains(strings.ToLower(msg), "permission denied") {
			return "", fmt.Errorf("%w: %s: %s (moat must run as root to manage host protection, or set network.hostProtection: false in the platform): %w",
				ErrUnavailable, name, msg, err)
		}
		return "", fmt.Errorf("%s: %s: %w", name, msg, err)
	}
	return out.String(), nil
}

// filterWarnings drops iptables-nft's notice about legacy tables.
func filterWarnings(s string) string {
	var keep []string
	for l := range strings.Lines(s) {
		if !strings.HasPrefix(l, "# Warning:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// save reads the filter table.
func (f *Firewall) save(ctx context.Context) (string, error) {
	out, err := f.run(ctx, "", f.Save, "-t", "filter")
	if err != nil {
		return "", fmt.Errorf("read host firewall: %w", err)
	}
	return out, nil
}

// Check says whether moat may change the firewall: iptables-save works and
// Docker's DOCKER-USER chain exists (Docker manages iptables). Apply calls
// it before the first operation, so a missing permission changes nothing.
func (f *Firewall) Check(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: moat runs as uid %d; managing host protection needs root (or set network.hostProtection: false in the platform)", ErrUnavailable, os.Geteuid())
	}
	out, err := f.save(ctx)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "\n:DOCKER-USER ") {
		return fmt.Errorf("%w: the filter table has no DOCKER-USER chain: Docker does not manage iptables on this host (iptables: false?), so moat cannot protect it", ErrUnavailable)
	}
	return nil
}

// Observe reads what the firewall holds of instance's rules.
func (f *Firewall) Observe(ctx context.Context, instance string) (*state.HostFirewall, error) {
	out, err := f.save(ctx)
	if err != nil {
		return nil, err
	}
	return firewall.Parse(out, instance).Observe(), nil
}

// Ensure makes network's rules exactly spec's (replacing any older version
// of them), keeping every other network's, and puts the jumps in place.
func (f *Firewall) Ensure(ctx context.Context, instance string, spec state.HostRulesSpec) error {
	return f.change(ctx, instance, spec.Network, firewall.Rules(instance, spec))
}

// Remove deletes network's rules; with none left, the chains and jumps go.
func (f *Firewall) Remove(ctx context.Context, instance, network string) error {
	return f.change(ctx, instance, network, nil)
}

func (f *Firewall) change(ctx context.Context, instance, network string, rules []firewall.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	out, err := f.save(ctx)
	if err != nil {
		return err
	}
	cur := firewall.Parse(out, instance)
	want := map[string][]firewall.Rule{}
	if rules != nil {
		want[network] = rules
	}
	in := firewall.Restore(instance, cur, want, func(n string) bool { return n != network })
	if _, err := f.run(ctx, in, f.Restore, "--noflush", "-w", "10"); err != nil {
		return fmt.Errorf("host rules of %s: %w", network, err)
	}
	return nil
}
