package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// newVolumeInit is `moat volume-init --uid U --gid G --mode M PATH...`: it
// gives each directory PATH (a volume's mount point) to uid:gid with mode
// M, and nothing more. The engine driver runs it in moat's own image as a
// one-shot container (root, every capability dropped but CHOWN and FOWNER,
// no network, read-only root) when it creates a tenant volume, so that the
// tenant's apps, which run as the tenant's uid, can write the volume and
// no other tenant's uid can. Only the directory itself changes: the
// volume's content was written by the tenant and stays as it is.
func newVolumeInit() *cobra.Command {
	var uid, gid uint32
	var mode string
	c := &cobra.Command{
		Use:    "volume-init --uid UID --gid GID --mode MODE PATH...",
		Short:  "Give volume mount points to a tenant's uid:gid (run by the engine in moat's image)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, paths []string) error {
			m, err := strconv.ParseUint(mode, 8, 32)
			if err != nil || m&^0o7777 != 0 {
				return withCode(exitError, fmt.Errorf("--mode %q: want an octal mode like 0700", mode))
			}
			if uid == 0 || gid == 0 {
				return withCode(exitError, errors.New("--uid and --gid are required and must not be 0 (root)"))
			}
			for _, p := range paths {
				changed, err := initDir(p, int(uid), int(gid), uint32(m))
				if err != nil {
					return fmt.Errorf("volume-init %s: %w", p, err)
				}
				what := "already"
				if changed {
					what = "now"
				}
				fmt.Fprintf(c.OutOrStdout(), "%s: %s owned by %d:%d, mode %04o\n", p, what, uid, gid, m)
			}
			return nil
		},
	}
	c.Flags().Uint32Var(&uid, "uid", 0, "owner uid (not 0)")
	c.Flags().Uint32Var(&gid, "gid", 0, "owner gid (not 0)")
	c.Flags().StringVar(&mode, "mode", "0700", "octal mode of the directory")
	return c
}
