package main

import (
	"fmt"
	"os"

	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/state"
	"github.com/spf13/cobra"
)

func newState() *cobra.Command {
	c := &cobra.Command{
		Use:   "state",
		Short: "Work with snapshots of live state",
	}
	var out string
	export := &cobra.Command{
		Use:   "export [DIR]",
		Short: "Write one snapshot of the live state of DIR's instance as JSON",
		Long: `export takes the same snapshot plan takes (the managed networks and
containers of the instance named by the config in DIR, default ".", plus
any container attached to its LANs) and writes it as versioned JSON, for
"moat plan --live FILE" in a pull-request check without Docker. It holds
no secret values.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			repo, err := loadRepo(c, args)
			if err != nil {
				return err
			}
			instance := repo.Platform.Name
			eng, err := openEngine(instance, c.ErrOrStderr())
			if err != nil {
				return withCode(exitInvalid, err)
			}
			o, err := eng.Observe(c.Context(), instance, controller.NeedVolumes(repo))
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("observe live state: %w", err))
			}
			w := c.OutOrStdout()
			if out != "" {
				fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return withCode(exitInvalid, err)
				}
				defer fh.Close()
				w = fh
			}
			if err := state.WriteSnapshot(w, &state.Snapshot{Instance: instance, Observed: o}); err != nil {
				return withCode(exitInvalid, fmt.Errorf("write snapshot: %w", err))
			}
			return nil
		},
	}
	export.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	c.AddCommand(export)
	return c
}
