package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/render"
	"github.com/spf13/cobra"
)

func newApply() *cobra.Command {
	var (
		f                 planFlags
		planFile          string
		allowMassDelete   bool
		allowVolumeDelete bool
		parallel          int
		verbose           bool
		grace             time.Duration
	)
	c := &cobra.Command{
		Use:   "apply [DIR]",
		Short: "Plan and apply the config repository to the local engine",
		Long: `apply validates DIR (default "."), takes one snapshot of the local engine,
computes the minimal plan, shows it, and applies it. With --plan FILE it
applies a plan saved by "moat plan --out FILE" instead: moat recomputes the
plan from the config and the live state and applies it only if the saved
one is identical, operation by operation and field by field; an edited or
stale file is refused, naming what differs.
A plan that would remove more than half of the managed containers, or
every container of a tenant, is refused without --allow-mass-delete.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			t, err := loadTarget(c, args, controller.LoadOptions{SecretsDir: f.secrets})
			if err != nil {
				return err
			}
			eng, err := openEngine(t.Desired.Instance, c.ErrOrStderr(), t.Repo.Platform)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			lk, err := lockInstance(eng, t.Desired.Instance, "moat apply")
			if err != nil {
				return withCode(exitInvalid, err)
			}
			defer lk.Release()
			observed, err := eng.observe(c.Context(), t.Desired.Instance, controller.NeedVolumes(t.Repo))
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("observe live state: %w", err))
			}
			if f.audit && planFile == "" {
				if err := controller.Inspect(c.Context(), eng.Engine, observed); err != nil {
					return withCode(exitInvalid, err)
				}
			}
			var p *reconcile.Plan
			if planFile != "" {
				saved, err := readPlan(planFile)
				if err != nil {
					return withCode(exitInvalid, err)
				}
				if p, err = controller.VerifySaved(saved, t, observed, controller.PlanOptions{EvictUnmanaged: f.evictUnmanaged}); err != nil {
					return withCode(exitInvalid, err)
				}
			} else if p, err = controller.Plan(t, observed, controller.PlanOptions{EvictUnmanaged: f.evictUnmanaged}); err != nil {
				return withCode(exitInvalid, fmt.Errorf("plan: %w", err))
			}
			out := c.OutOrStdout()
			if err := render.Text(out, p); err != nil {
				return withCode(exitInvalid, err)
			}
			if p.Empty() {
				printStats(c, f.stats, eng)
				return nil
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			results, err := controller.Apply(c.Context(), eng, p, observed, controller.ApplyOptions{
				AllowMassDelete: allowMassDelete, AllowVolumeDelete: allowVolumeDelete, Parallel: parallel, Log: log, Grace: grace, Firewall: eng.firewall,
			})
			printResults(out, results)
			printStats(c, f.stats, eng)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			return nil
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&planFile, "plan", "", "apply this saved plan (from moat plan --out) instead of planning anew")
	c.Flags().BoolVar(&allowVolumeDelete, "allow-volume-delete", false, "allow this apply to delete volumes (and their data) that the config no longer has (needs runtime.pruneVolumes)")
	c.Flags().BoolVar(&allowMassDelete, "allow-mass-delete", false, "allow a plan that removes more than half of the managed containers or all of a tenant's")
	c.Flags().IntVar(&parallel, "parallel", apply.DefaultParallel, "operations in flight at once")
	c.Flags().DurationVar(&grace, "grace", apply.DefaultGrace, "after the first SIGINT/SIGTERM, how long operations in flight may finish before they are cancelled")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every operation as it finishes")
	return c
}

func readPlan(path string) (*reconcile.Plan, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("saved plan: %w", err)
	}
	defer fh.Close()
	p, err := render.ReadPlan(fh)
	if err != nil {
		return nil, fmt.Errorf("saved plan %s: %w", path, err)
	}
	return p, nil
}

// printResults prints a one-line summary of outcomes, sorted by outcome.
func printResults(w io.Writer, results []apply.Result) {
	counts := map[apply.Outcome]int{}
	for _, r := range results {
		counts[r.Outcome]++
	}
	var parts []string
	for o, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, o))
	}
	sort.Strings(parts)
	fmt.Fprintf(w, "\nApply finished: %s.\n", strings.Join(parts, ", "))
}

func printStats(c *cobra.Command, on bool, eng *engineHandle) {
	if on {
		eng.printStats(c.ErrOrStderr())
	}
}
