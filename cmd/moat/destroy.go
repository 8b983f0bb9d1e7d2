package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/render"
	"github.com/moat-platform/moat/state"
	"github.com/spf13/cobra"
)

// volumeDeleteFlag registers --allow-volume-delete, the one spelling of
// "named volumes (data) may be removed" for every command that can remove
// them (destroy now, the volume guard of apply next).
func volumeDeleteFlag(c *cobra.Command, p *bool) {
	c.Flags().BoolVar(p, "allow-volume-delete", false, "also remove the instance's named volumes (their data is lost); without it volumes are kept")
}

func newDestroy() *cobra.Command {
	var (
		instance          string
		engineFlag        string
		allowMassDelete   bool
		allowVolumeDelete bool
		parallel          int
	)
	c := &cobra.Command{
		Use:   "destroy [DIR]",
		Short: "Remove everything moat created for DIR's instance (volumes only when asked)",
		Long: `destroy plans the removal of every container, network and host rule set
that moat manages for the instance named by the config in DIR (default
"."), or by --instance NAME when there is no valid config to read, shows the
plan, and applies it. With a config its platform chooses the engine; with
--instance, --engine docker|swarm does, else the engine that holds the
instance's objects (a Swarm manager with its services, overlays or secrets:
swarm). Only objects with moat's labels for that instance are
touched; containers moat did not create stay, and a LAN they are still on
is left in place (reported).

Removing an instance is a mass delete: like apply, destroy shows the plan
and refuses it without --allow-mass-delete. Named volumes (tenant data)
are kept unless --allow-volume-delete is given too.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if instance != "" && len(args) > 0 {
				return withCode(exitError, errors.New("give either DIR or --instance, not both"))
			}
			var kind string
			switch engineFlag {
			case "", state.EngineDocker, state.EngineSwarm:
			default:
				return withCode(exitError, fmt.Errorf("--engine %q: want docker or swarm", engineFlag))
			}
			if instance == "" {
				if engineFlag != "" {
					return withCode(exitError, errors.New("--engine goes with --instance: with a config, its platform chooses the engine"))
				}
				repo, err := loadRepo(c, args, "nothing destroyed (or pass --instance NAME)")
				if err != nil {
					return err
				}
				instance, kind = repo.Platform.Name, engineOf(repo.Platform)
			} else if kind = engineFlag; kind == "" {
				// No config to ask: the engine that holds the
				// instance's objects.
				k, why, err := discoverEngine(c.Context(), instance, c.ErrOrStderr())
				if err != nil {
					return withCode(exitInvalid, err)
				}
				kind = k
				if why != "" {
					fmt.Fprintf(c.ErrOrStderr(), "destroy: engine swarm (%s); --engine docker destroys the instance's single-host objects instead\n", why)
				}
			}
			// Destroy plans no Weave state: the container engine only.
			eng, err := openContainerEngine(instance, c.ErrOrStderr(), kind)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			lk, err := lockInstance(eng, instance, "moat destroy")
			if err != nil {
				return withCode(exitInvalid, err)
			}
			defer lk.Release()
			observed, err := eng.observe(c.Context(), instance, allowVolumeDelete)
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("observe live state: %w", err))
			}
			// The plan from what runs to nothing: the same Compute as
			// apply, so the same order (containers, then LANs, then host
			// rules and volumes) and the same care for unmanaged containers.
			nothing := &state.Desired{Instance: instance}
			if kind == state.EngineSwarm {
				nothing.Engine = state.EngineSwarm // a Swarm plan: services, secrets
			}
			p, err := reconcile.Compute(nothing, observed, reconcile.Options{
				PruneVolumes: allowVolumeDelete,
				Revision:     "destroy",
			})
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("plan: %w", err))
			}
			out := c.OutOrStdout()
			if err := render.Text(out, p); err != nil {
				return withCode(exitInvalid, err)
			}
			if p.Empty() {
				return nil
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			results, err := controller.Apply(c.Context(), eng, p, observed, controller.ApplyOptions{
				AllowMassDelete: allowMassDelete, AllowVolumeDelete: allowVolumeDelete, Parallel: parallel, Log: log, Firewall: eng.firewall,
			})
			if results != nil {
				printResults(out, results)
			}
			if err != nil {
				return withCode(exitInvalid, err)
			}
			if !allowVolumeDelete {
				fmt.Fprintf(out, "Named volumes of instance %s were kept; moat destroy --allow-volume-delete removes them.\n", instance)
			}
			return nil
		},
	}
	c.Flags().StringVar(&instance, "instance", "", "the instance to destroy, when there is no valid config to name it")
	c.Flags().StringVar(&engineFlag, "engine", "", "with --instance: the engine the instance runs on, docker or swarm (default: swarm when the engine is a Swarm manager holding the instance's services, networks or secrets, else docker)")
	c.Flags().BoolVar(&allowMassDelete, "allow-mass-delete", false, "required: destroy removes every managed container of the instance")
	volumeDeleteFlag(c, &allowVolumeDelete)
	c.Flags().IntVar(&parallel, "parallel", apply.DefaultParallel, "operations in flight at once")
	return c
}
