package main

import (
	"fmt"
	"os"

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
			if err := checkFormat(format, "text", "json", "github"); err != nil {
				return err
			}
			dir, err := repoDir(args)
			if err != nil {
				return err
			}
			_, ds := validate.Run(os.DirFS(dir), validate.Options{})
			if err := diag.Write(c.OutOrStdout(), ds, format); err != nil {
				return withCode(exitError, err)
			}
			if len(ds) > 0 {
				return withCode(exitInvalid, nil)
			}
			if format == "text" {
				fmt.Fprintln(c.ErrOrStderr(), "valid:", dir)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json or github (annotations)")
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
