package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/render"
	"github.com/moat-platform/moat/state"
	"github.com/spf13/cobra"
)

// planFlags are shared by plan and apply.
type planFlags struct {
	live           string
	secrets        string
	noSecrets      bool
	evictUnmanaged bool
	stats          bool
	audit          bool
}

func (f *planFlags) register(c *cobra.Command, withLive bool) {
	if withLive {
		c.Flags().StringVar(&f.live, "live", "docker", `live state: "docker" (the local engine) or a snapshot file from "moat state export"`)
	}
	c.Flags().StringVar(&f.secrets, "secrets", "", "the host's secret store: DIR/<tenant>/<secret>")
	if withLive {
		c.Flags().BoolVar(&f.noSecrets, "no-secrets", false, "plan without the secret store (pull-request checks): rotations not shown, plan not applicable")
	}
	c.Flags().BoolVar(&f.evictUnmanaged, "evict-unmanaged", false, "disconnect containers moat did not create from tenant LANs (default: report them)")
	c.Flags().BoolVar(&f.stats, "stats", false, "print the number of engine API calls to stderr")
	// apply audits by default (it is where a forged or updated container
	// must not survive); plan only when asked, so that the no-op plan
	// stays at 3 engine calls (docs/DESIGN.md, "Audit").
	c.Flags().BoolVar(&f.audit, "audit", !withLive, "inspect every container (one engine call each) and recreate the managed ones whose settings differ from moat's (moat audit's checks)")
}

func newPlan() *cobra.Command {
	var (
		f        planFlags
		format   string
		out      string
		detailed bool
		linkBase string
	)
	c := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Show what apply would change, without changing anything",
		Long: `plan validates the config repository DIR (default "."), compiles it, takes
one snapshot of live state (the local engine, or a snapshot file with
--live FILE so that a pull-request check needs no Docker), and prints the
minimal plan. Exit 0 success, 1 error; with --detailed-exitcode 0 no
changes, 1 error, 2 changes present.`,
		// Usage errors are 1 here, see SetFlagErrorFunc below.
		Args: func(c *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(c, args); err != nil {
				return withCode(exitInvalid, err)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json", "markdown"); err != nil {
				return withCode(exitInvalid, err)
			}
			if f.noSecrets && f.secrets != "" {
				return withCode(exitInvalid, errors.New("--secrets and --no-secrets exclude each other"))
			}
			t, err := loadTargetAs(c, args, controller.LoadOptions{SecretsDir: f.secrets, NoSecrets: f.noSecrets}, format, linkBase)
			if err != nil {
				return err
			}
			observed, st, err := observe(c.Context(), c.ErrOrStderr(), f.live, t, f.audit)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			p, err := controller.Plan(t, observed, controller.PlanOptions{EvictUnmanaged: f.evictUnmanaged})
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("plan: %w", err))
			}
			if err := renderPlan(c.OutOrStdout(), p, format); err != nil {
				return withCode(exitInvalid, err)
			}
			if out != "" {
				if err := savePlan(out, p); err != nil {
					return withCode(exitInvalid, err)
				}
			}
			if f.stats && st != nil {
				st(c.ErrOrStderr())
			}
			if detailed && !p.Empty() {
				return withCode(exitChanges, nil)
			}
			return nil
		},
	}
	f.register(c, true)
	c.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json or markdown (a pull-request comment)")
	c.Flags().StringVar(&out, "out", "", "also save the plan (JSON) for moat apply --plan")
	c.Flags().StringVar(&linkBase, "link-base", "", "-o markdown: URL prefixed to file paths in links to diagnostics (https://github.com/OWNER/REPO/blob/SHA/)")
	c.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	// With --detailed-exitcode, 2 means "changes": a usage error must not
	// look like one, so plan reports usage errors as 1, as terraform does.
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitInvalid, fmt.Errorf("%w (see moat plan --help)", err))
	})
	return c
}

// loadTarget validates and compiles the config; invalid config prints its
// diagnostics to stderr and exits 1.
func loadTarget(c *cobra.Command, args []string, opts controller.LoadOptions) (*controller.Target, error) {
	return loadTargetAs(c, args, opts, "text", "")
}

// loadTargetAs is loadTarget for a command with an output format: with
// json or markdown, the diagnostics of an invalid config go to stdout in
// that format (a pull-request comment must show them), still exit 1.
func loadTargetAs(c *cobra.Command, args []string, opts controller.LoadOptions, format, linkBase string) (*controller.Target, error) {
	dir, err := repoDir(args)
	if err != nil {
		return nil, withCode(exitInvalid, err)
	}
	fsys, err := readRepo(c, dir)
	if err != nil {
		return nil, withCode(exitInvalid, err)
	}
	t, err := controller.Load(fsys, opts)
	var inv *controller.InvalidError
	if errors.As(err, &inv) && format != "text" {
		var werr error
		if format == "markdown" {
			werr = diag.WriteMarkdown(c.OutOrStdout(), inv.Diagnostics, linkBase)
		} else {
			werr = diag.Write(c.OutOrStdout(), inv.Diagnostics, format)
		}
		if werr != nil {
			return nil, withCode(exitInvalid, werr)
		}
		return nil, withCode(exitInvalid, fmt.Errorf("%s is invalid: %s; nothing planned or applied", dir, problems(len(inv.Diagnostics))))
	}
	if err := invalid(c, dir, "nothing planned or applied", err); err != nil {
		return nil, err
	}
	return t, nil
}

// loadRepo validates the config without compiling it (no secrets needed);
// what says what an invalid config stops ("nothing exported").
func loadRepo(c *cobra.Command, args []string, what string) (*config.Repo, error) {
	dir, err := repoDir(args)
	if err != nil {
		return nil, withCode(exitInvalid, err)
	}
	fsys, err := readRepo(c, dir)
	if err != nil {
		return nil, withCode(exitInvalid, err)
	}
	repo, err := controller.Validate(fsys)
	if err := invalid(c, dir, what, err); err != nil {
		return nil, err
	}
	return repo, nil
}

// invalid turns a validation failure into exit 1 with the diagnostics on
// stderr.
// what says what was not done ("nothing planned or applied").
func invalid(c *cobra.Command, dir, what string, err error) error {
	var inv *controller.InvalidError
	if errors.As(err, &inv) {
		_ = diag.Write(c.ErrOrStderr(), inv.Diagnostics, "text")
		return withCode(exitInvalid, fmt.Errorf("%s is invalid: %s; %s", dir, problems(len(inv.Diagnostics)), what))
	}
	if err != nil {
		return withCode(exitInvalid, err)
	}
	return nil
}

// problems is "1 problem" or "N problems", as validate says it.
func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// observe takes the one snapshot of live state: from the engine, or from a
// snapshot file. It returns a stats printer when the engine counts calls.
func observe(ctx context.Context, stderr io.Writer, live string, t *controller.Target, inspect bool) (*state.Observed, func(io.Writer), error) {
	if live != "docker" {
		fh, err := os.Open(live)
		if err != nil {
			return nil, nil, fmt.Errorf("live state: %w", err)
		}
		defer fh.Close()
		snap, err := state.ReadSnapshot(fh)
		if err != nil {
			return nil, nil, fmt.Errorf("live state %s: %w", live, err)
		}
		if snap.Instance != t.Desired.Instance {
			return nil, nil, fmt.Errorf("live state %s is a snapshot of instance %q, the config is instance %q", live, snap.Instance, t.Desired.Instance)
		}
		return snap.Observed, nil, nil
	}
	eng, err := openEngine(t.Desired.Instance, stderr, t.Repo.Platform)
	if err != nil {
		return nil, nil, err
	}
	o, err := eng.observe(ctx, t.Desired.Instance, controller.NeedVolumes(t.Repo))
	if err != nil {
		return nil, nil, fmt.Errorf("observe live state: %w", err)
	}
	if inspect {
		if err := controller.Inspect(ctx, eng.Engine, o); err != nil {
			return nil, nil, err
		}
	}
	return o, eng.printStats, nil
}

func renderPlan(w io.Writer, p *reconcile.Plan, format string) error {
	switch format {
	case "json":
		return render.JSON(w, p)
	case "markdown":
		return render.Markdown(w, p)
	}
	return render.Text(w, p)
}

func savePlan(path string, p *reconcile.Plan) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := render.JSON(fh, p); err != nil {
		fh.Close()
		return fmt.Errorf("save plan: %w", err)
	}
	return fh.Close()
}
