package main

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/moat-platform/moat/config/dirsnap"
	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/validate"
	"github.com/spf13/cobra"
)

func newValidate() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a config repository against the schema and every security rule",
		Long: `validate reads every YAML file under DIR (default "."), checks it against
the embedded CUE schema and the cross-document rules, and prints every
problem with its file:line:col and rule id. Exit 0 valid, 1 invalid,
2 usage or I/O error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkFormat(format, diag.Formats...); err != nil {
				return err
			}
			dir, err := repoDir(args)
			if err != nil {
				return err
			}
			fsys, err := readRepo(c, dir)
			if err != nil {
				return withCode(exitError, err)
			}
			_, ds := validate.Run(fsys, validate.Options{})
			if err := diag.Write(c.OutOrStdout(), ds, format); err != nil {
				return withCode(exitError, err)
			}
			if len(ds) > 0 {
				return withCode(exitInvalid, nil)
			}
			if format == "text" {
				// Results go to stdout, whatever they are; stderr is
				// for errors of moat itself (an unreadable directory).
				fmt.Fprintln(c.OutOrStdout(), "valid:", dir)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json, github (annotations) or markdown (a pull-request comment)")
	return c
}

// repoDir returns the config repository directory argument (default ".")
// after checking that it is a directory.
func repoDir(args []string) (string, error) {
	dir := "."
	if len(args) > 0 {
		dir = args[0]
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", withCode(exitError, fmt.Errorf("config repository: %w", err))
	}
	if !fi.IsDir() {
		return "", withCode(exitError, fmt.Errorf("config repository %s is not a directory", dir))
	}
	return dir, nil
}

func checkFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return withCode(exitError, fmt.Errorf("unknown output format %q (want one of %v)", got, allowed))
}

// readRepo takes a consistent snapshot of the config directory (never a
// file half-written by an editor, never a mix of two checkouts) and warns
// when the directory is a git work tree whose config files differ from
// HEAD: what is planned is what is on disk, not what was committed.
func readRepo(c *cobra.Command, dir string) (fs.FS, error) {
	s, err := dirsnap.Read(c.Context(), dir, dirsnap.Options{})
	if err != nil {
		return nil, err
	}
	d, err := dirsnap.CheckGit(dir, s)
	switch {
	case err != nil:
		fmt.Fprintf(c.ErrOrStderr(), "moat: warning: %v\n", err)
	case d != nil && !d.Clean():
		fmt.Fprintf(c.ErrOrStderr(), "moat: warning: %s: %s; moat reads the files on disk\n", dir, d)
	}
	return s.FS, nil
}
