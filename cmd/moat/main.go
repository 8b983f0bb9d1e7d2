package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/moat-platform/moat/apply"
	"github.com/spf13/cobra"
)

// exitErr carries an exit code through cobra; a nil err exits quietly.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func withCode(code int, err error) error { return &exitErr{code: code, err: err} }

func main() { os.Exit(run(os.Args[1:])) }

// run is main without os.Exit, so testscript can call it in-process.
func run(args []string) int { return execute(args, os.Stdout, os.Stderr) }

// execute runs one command line with the given outputs and returns the
// exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// SIGINT/SIGTERM cancel the context: apply stops starting operations,
	// lets those in flight finish (for at most its grace period; every
	// engine call has a deadline too), says what was left (a rerun
	// converges) and exits exitInterrupted. A second signal kills as
	// usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default: the next signal terminates
	}()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil || errors.Is(err, apply.ErrInterrupted) {
		fmt.Fprintln(stderr, "moat: interrupted:", err)
		return exitInterrupted
	}
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "moat:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "moat:", err)
	return exitError
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "moat",
		Short: "GitOps for isolated, hardened multi-tenant Docker hosts",
		Long: `moat turns a git repository of tenant YAML into isolated, hardened Docker
state on a host, and keeps it there. Each tenant gets its own virtual LANs;
its apps run in hardened containers on those LANs only; shared platform
services are reached only in the mode the platform granted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	registerEngineFlags(root)
	root.AddCommand(newValidate(), newPlan(), newApply(), newAudit(), newWatch(), newStatus(), newState(), newRules(), newVersion(), newGateway(), newDestroy())
	// moat --version prints what moat version prints.
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")

	// Internal: run by the engine inside moat's own image, not by hand.
	root.AddCommand(newVolumeInit())
	// Flag errors are usage errors: exit 2, like a bad argument.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitError, fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	return root
}

// version and commit are set by the linker (the Makefile's LDFLAGS:
// -X main.version=... -X main.commit=...). Without them, versionInfo falls
// back to what the Go toolchain recorded in the binary.
var (
	version = ""
	commit  = ""
)

// versionInfo returns the version, the commit and the Go version moat was
// built with: ldflags first, then the module version and VCS revision
// from debug.ReadBuildInfo (go install, go build in a git checkout).
func versionInfo() (ver, rev, goVersion string) {
	ver, rev, goVersion = version, commit, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			case s.Key == "vcs.modified" && s.Value == "true" && commit == "":
				defer func() { rev += "-dirty" }()
			}
		}
	}
	return cmp.Or(ver, "dev"), cmp.Or(rev, "unknown"), goVersion
}

// versionLine is what moat version and moat --version print.
func versionLine() string {
	ver, rev, gov := versionInfo()
	return fmt.Sprintf("moat %s (commit %s, %s)", ver, rev, gov)
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go version moat was built with",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(c.OutOrStdout(), versionLine())
			return nil
		},
	}
}
