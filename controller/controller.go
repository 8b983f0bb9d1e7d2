// Package controller runs moat's pipeline for the CLI and the watcher:
// load and validate a revision, compile it, take one snapshot of live state,
// compute the plan, guard it, and apply it. It holds the order of the steps
// and nothing else: every decision is made by the pure packages below it.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/secrets"
	"github.com/moat-platform/moat/state"
	"github.com/moat-platform/moat/validate"
)

// Target is a validated, compiled revision: what the host should look like.
type Target struct {
	Repo     *config.Repo
	Desired  *state.Desired
	Revision string
	// NoSecrets: compiled without the secret store; plans are display-only.
	NoSecrets bool
}

// InvalidError carries the diagnostics of a revision that must not be
// applied.
type InvalidError struct{ Diagnostics diag.List }

func (e *InvalidError) Error() string {
	return fmt.Sprintf("the configuration is invalid (%d problems): %s", len(e.Diagnostics), e.Diagnostics.Err())
}

// LoadOptions say where the host's secret store is.
type LoadOptions struct {
	// SecretsDir is the host's secret store (may be "" when no app uses
	// secrets).
	SecretsDir string
	// NoSecrets compiles without the store, for plans that are only shown
	// (pull-request checks): see compile.Options.UnknownSecrets.
	NoSecrets bool
}

// Load validates the repository in fsys and compiles it.
func Load(fsys fs.FS, opts LoadOptions) (*Target, error) {
	repo, err := Validate(fsys)
	if err != nil {
		return nil, err
	}
	return Compile(repo, opts)
}

// Compile compiles a validated repository against the host's secret
// store. The watcher validates a revision once and compiles it each
// round, so that a rotated secret is seen without a new revision.
func Compile(repo *config.Repo, opts LoadOptions) (*Target, error) {
	secretsDir := opts.SecretsDir
	var err error
	if secretsDir != "" {
		// Bind mounts need an absolute host path; a relative flag is
		// relative to where moat runs.
		if secretsDir, err = filepath.Abs(secretsDir); err != nil {
			return nil, fmt.Errorf("secret store: %w", err)
		}
	}
	var digests map[string]string
	if !opts.NoSecrets {
		if digests, err = secrets.Digests(secretsDir, repo); err != nil {
			return nil, err
		}
	}
	desired, err := compile.Compile(repo, compile.Options{SecretsDir: secretsDir, SecretDigests: digests, UnknownSecrets: opts.NoSecrets})
	if err != nil {
		return nil, err
	}
	return &Target{Repo: repo, Desired: desired, Revision: repo.Digest, NoSecrets: opts.NoSecrets}, nil
}

// Validate validates the repository in fsys; an invalid one is an
// *InvalidError.
func Validate(fsys fs.FS) (*config.Repo, error) {
	repo, ds := validate.Run(fsys, validate.Options{})
	if len(ds) > 0 {
		return nil, &InvalidError{Diagnostics: ds}
	}
	return repo, nil
}

// PlanOptions tune planning.
type PlanOptions struct {
	EvictUnmanaged bool
}

// Plan computes the plan from observed to target. Pure.
func Plan(t *Target, observed *state.Observed, opts PlanOptions) (*reconcile.Plan, error) {
	return reconcile.Compute(t.Desired, observed, reconcile.Options{
		EvictUnmanaged: opts.EvictUnmanaged,
		PruneVolumes:   t.Repo.Platform != nil && t.Repo.Platform.Runtime.PruneVolumes,
		Revision:       t.Revision,
		UnknownSecrets: t.NoSecrets,
	})
}

// NeedVolumes says whether the snapshot must list volumes. Always: a plan
// lists every volume the config no longer has, kept or removed, so that a
// tenant removal or a renamed volume never strands or loses data without
// saying so. This costs one label-filtered list per plan (docs/DESIGN.md).
func NeedVolumes(*config.Repo) bool { return true }

// Observe takes the one snapshot of live state: the engine's, and the host
// firewall's part for the instance when fw is not nil. A firewall that
// cannot be read (not root) is recorded in the snapshot rather than
// failing: the plan then shows the rules it would ensure, and Apply
// refuses before changing anything.
func Observe(ctx context.Context, eng engine.Engine, fw engine.Firewall, instance string, volumes bool) (*state.Observed, error) {
	o, err := eng.Observe(ctx, instance, volumes)
	if err != nil {
		return nil, err
	}
	if fw != nil {
		hf, err := fw.Observe(ctx, instance)
		if err != nil {
			hf = &state.HostFirewall{Error: err.Error()}
		}
		o.HostFirewall = hf
	}
	return o, nil
}

// Inspect fills the snapshot's per-container settings (one inspect per
// container) so that plan and audit can compare them: N more engine calls,
// which the plain plan does not make. An engine that cannot inspect is an
// error: an audit that silently saw nothing would pass.
func Inspect(ctx context.Context, eng engine.Engine, obs *state.Observed) error {
	in, ok := eng.(engine.Inspector)
	if !ok {
		return errors.New("this engine cannot inspect containers")
	}
	if err := in.InspectContainers(ctx, obs); err != nil {
		return fmt.Errorf("inspect containers: %w", err)
	}
	if u, ok := eng.(interface{ Unenforceable() map[string]string }); ok {
		obs.Unenforceable = u.Unenforceable()
	}
	return nil
}

// ApplyOptions tune applying.
type ApplyOptions struct {
	AllowMassDelete bool
	// AllowVolumeDelete lets the plan remove volumes with their data.
	AllowVolumeDelete bool
	Parallel          int
	Log               *slog.Logger
	// Grace: how long operations in flight may go on after ctx ends
	// (apply.DefaultGrace when 0).
	Grace time.Duration
	// Firewall applies host rule operations (engine/hostfw).
	Firewall engine.Firewall
}

var errNoSecrets = errors.New("this plan was made without the secret store (--no-secrets) and can only be shown; plan with --secrets DIR to apply")

// Apply guards p against observed and executes it on eng.
func Apply(ctx context.Context, eng engine.Engine, p *reconcile.Plan, observed *state.Observed, opts ApplyOptions) ([]apply.Result, error) {
	if p.SecretsUnknown {
		return nil, errNoSecrets
	}
	if err := reconcile.Guard(p, observed, reconcile.GuardOptions{AllowMassDelete: opts.AllowMassDelete, AllowVolumeDelete: opts.AllowVolumeDelete}); err != nil {
		return nil, err
	}
	if apply.NeedsFirewall(p) {
		// Before the first operation: without the permission a plan must
		// not half-apply (a LAN created, its protection not).
		if opts.Firewall == nil {
			return nil, errors.New("the plan changes host protection rules but no host firewall is available; nothing was changed")
		}
		if err := opts.Firewall.Check(ctx); err != nil {
			return nil, fmt.Errorf("host protection: %w; nothing was changed", err)
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return apply.Run(ctx, eng, p, apply.Options{
		Parallel: opts.Parallel,
		Grace:    opts.Grace,
		Firewall: opts.Firewall,
		OnResult: func(r apply.Result) {
			attrs := []any{"op", r.Op.ID, "outcome", r.Outcome, "cause", r.Op.Cause, "took", r.Duration.Round(1e6)}
			if r.Err != nil {
				log.Error("operation failed", append(attrs, "err", r.Err)...)
				return
			}
			log.Info("operation done", attrs...)
		},
	})
}

// CheckSaved refuses a saved plan whose revision or live-state fingerprint
// no longer matches: applying it would act on a world it was not computed
// for (Terraform's "saved plan is stale").
func CheckSaved(p *reconcile.Plan, t *Target, observed *state.Observed) error {
	if t != nil && p.Revision != t.Revision {
		return fmt.Errorf("saved plan is stale: it was computed for config revision %s, the config is now at %s; run moat plan again", p.Revision, t.Revision)
	}
	if fp := state.Fingerprint(observed); p.Fingerprint != fp {
		return fmt.Errorf("saved plan is stale: live state changed since it was computed (fingerprint %s, now %s); run moat plan again", p.Fingerprint, fp)
	}
	return nil
}

// SavedPlanError is the refusal of a saved plan that is not what moat
// computes: Diffs name each operation and field that differ.
type SavedPlanError struct{ Diffs []string }

func (e *SavedPlanError) Error() string {
	return "refusing the saved plan: it differs from the plan moat computes now from the config and the live state " +
		"(edited, or planned with other flags such as --evict-unmanaged):\n  " + strings.Join(e.Diffs, "\n  ")
}

// VerifySaved returns the plan to apply for a saved plan: moat recomputes
// the plan from the config and the live state and applies its own, only
// if the saved one is identical in every operation and spec. A saved plan
// is input that travelled between jobs; executing its specs would make it
// a way around validation (an image outside the policy, user 0:0, a
// writable root), so it is only ever a promise of what moat will do, which
// this checks.
func VerifySaved(saved *reconcile.Plan, t *Target, observed *state.Observed, opts PlanOptions) (*reconcile.Plan, error) {
	if saved.SecretsUnknown {
		return nil, errNoSecrets
	}
	if err := CheckSaved(saved, t, observed); err != nil {
		return nil, err
	}
	fresh, err := Plan(t, observed, opts)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if diffs := reconcile.CompareSaved(saved, fresh); len(diffs) > 0 {
		return nil, &SavedPlanError{Diffs: diffs}
	}
	return fresh, nil
}
