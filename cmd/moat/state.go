package main

import (
	"fmt"
	"github.com/moat-platform/moat/config"
	"os"
	"sort"

	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/state"
	"github.com/spf13/cobra"
)

func newState() *cobra.Command {
	c := &cobra.Command{
		Use:   "state",
		Short: "Work with snapshots of live state",
	}
	var out, format string
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
			if err := checkFormat(format, "json"); err != nil {
				return err
			}
			repo, eng, err := repoEngine(c, args, "nothing exported")
			if err != nil {
				return err
			}
			instance := repo.Platform.Name
			o, err := eng.observe(c.Context(), instance, controller.NeedVolumes(repo))
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
	// -o is the output format in every command; the file is --out, as
	// for plan.
	export.Flags().StringVar(&out, "out", "", "write the snapshot to this file instead of stdout")
	export.Flags().StringVarP(&format, "output", "o", "json", "output format: json (the only one; a snapshot is versioned JSON)")
	c.AddCommand(export, newRemoveHostRules())
	return c
}

// newRemoveHostRules tears down the host protection of an instance: for
// removing an instance altogether (make demo-clean, test cleanup), since
// apply keeps the rules of every LAN that still exists.
func newRemoveHostRules() *cobra.Command {
	return &cobra.Command{
		Use:   "rm-host-rules [DIR]",
		Short: "Remove every host protection rule (and moat's chains) of DIR's instance",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			repo, eng, err := repoEngine(c, args, "no rule removed")
			if err != nil {
				return err
			}
			instance := repo.Platform.Name
			fw := eng.firewall
			got, err := fw.Observe(c.Context(), instance)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			nets := make([]string, 0, len(got.Rules)+1)
			for n := range got.Rules {
				nets = append(nets, n)
			}
			sort.Strings(nets)
			for _, n := range append(nets, "") { // "": the chains and jumps, even when empty
				if err := fw.Remove(c.Context(), instance, n); err != nil {
					return withCode(exitInvalid, err)
				}
			}
			fmt.Fprintf(c.OutOrStdout(), "removed the host rules of %d network(s) of instance %s\n", len(nets)-btoi(got.Rules[""].Count > 0), instance)
			return nil
		},
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// repoEngine validates DIR and opens the engine of its instance: the
// start of every state subcommand. nothing says what an invalid repo
// leaves undone.
func repoEngine(c *cobra.Command, args []string, nothing string) (*config.Repo, *engineHandle, error) {
	repo, err := loadRepo(c, args, nothing)
	if err != nil {
		return nil, nil, err
	}
	eng, err := openEngine(repo.Platform.Name, c.ErrOrStderr(), repo.Platform)
	if err != nil {
		return nil, nil, withCode(exitInvalid, err)
	}
	return repo, eng, nil
}
