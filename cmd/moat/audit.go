package main

import (
	"encoding/json"
	"fmt"

	"github.com/moat-platform/moat/audit"
	"github.com/moat-platform/moat/controller"
	"github.com/spf13/cobra"
)

func newAudit() *cobra.Command {
	var (
		secrets string
		format  string
		stats   bool
	)
	c := &cobra.Command{
		Use:   "audit [DIR]",
		Short: "Compare every live container, network and host rule of the instance with what moat would create",
		Long: `audit compiles DIR (default "."), takes one snapshot of the local engine,
inspects every container of the instance and every container on one of its
tenant LANs (one engine call each), and compares the security-relevant
settings with what moat would create: privileged, capabilities, read-only
root, user, memory, CPU, pids, no-new-privileges, seccomp, host namespaces,
devices, mounts, the Docker socket, port bindings, restart policy, sysctls,
network attachments, unmanaged containers on tenant LANs, the LANs' flags
and the host protection rules. docs/AUDIT.md lists each check next to its
CIS Docker Benchmark v1.6 item. Exit 0 clean, 3 with findings, 1 error.
Without --secrets, secret bind sources are not compared.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return withCode(exitError, err)
			}
			t, err := loadTarget(c, args, controller.LoadOptions{SecretsDir: secrets, NoSecrets: secrets == ""})
			if err != nil {
				return err
			}
			eng, err := openEngine(t.Desired.Instance, c.ErrOrStderr(), t.Repo.Platform)
			if err != nil {
				return withCode(exitInvalid, err)
			}
			obs, err := eng.observe(c.Context(), t.Desired.Instance, false)
			if err != nil {
				return withCode(exitInvalid, fmt.Errorf("observe live state: %w", err))
			}
			if err := controller.Inspect(c.Context(), eng.Engine, obs); err != nil {
				return withCode(exitInvalid, err)
			}
			findings := audit.Run(t.Desired, obs, secrets != "")
			out := c.OutOrStdout()
			if format == "json" {
				if findings == nil {
					findings = []audit.Finding{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"instance": t.Desired.Instance, "containers": len(obs.Containers),
					"networks": len(obs.Networks), "findings": findings}); err != nil {
					return withCode(exitInvalid, err)
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(out, f)
				}
				fmt.Fprintf(out, "audit of instance %s: %d containers, %d networks, %d host rule sets checked; %d findings\n",
					t.Desired.Instance, len(obs.Containers), len(obs.Networks), len(t.Desired.HostRules), len(findings))
			}
			if stats {
				eng.printStats(c.ErrOrStderr())
			}
			if len(findings) > 0 {
				return withCode(exitFindings, nil)
			}
			return nil
		},
	}
	c.Flags().StringVar(&secrets, "secrets", "", "the host's secret store (to compare secret bind sources too)")
	c.Flags().StringVarP(&format, "output", "o", "text", "text or json")
	c.Flags().BoolVar(&stats, "stats", false, "print the number of engine API calls to stderr")
	return c
}
