package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moat-platform/moat/gateway"
)

// newGateway is `moat gateway`: the per-(tenant, shared service) gateway
// that compile puts in front of every shared service. It runs inside the
// moat image; compile passes every setting as a flag. Each flag can also
// come from the environment as MOAT_GATEWAY_<FLAG> (upper case, '-' as
// '_'); a flag on the command line wins.
func newGateway() *cobra.Command {
	cfg := gateway.Defaults
	c := &cobra.Command{
		Use:   "gateway",
		Short: "Run a shared-service gateway (started by moat in a container, one per tenant and service)",
		Long: `Run a shared-service gateway: it accepts one tenant's connections, passes
only what the granted mode allows (http read-only: GET, HEAD, OPTIONS;
http write-only: POST and PUT, status only, no response body; tcp: bytes in
the granted direction only; read-write: everything), sets X-Moat-Tenant,
enforces the per-tenant limits and serves Prometheus metrics.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := envFlags(c.Flags(), os.Getenv); err != nil {
				return withCode(exitError, err)
			}
			log := slog.New(slog.NewJSONHandler(c.ErrOrStderr(), nil))
			if err := gateway.Run(c.Context(), cfg, log); err != nil {
				return withCode(exitInvalid, err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Tenant, "tenant", "", "the calling tenant (sent to the service as X-Moat-Tenant)")
	f.StringVar(&cfg.Service, "service", "", "the shared service's name")
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "read-only | write-only | read-write")
	f.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "http | tcp")
	f.StringVar(&cfg.Listen, "listen", "", "address tenants connect to, e.g. :8080")
	f.StringVar(&cfg.Upstream, "upstream", "", "host:port of the service")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "address of /metrics (empty: off)")
	f.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "largest request body in bytes (http)")
	f.Float64Var(&cfg.RPS, "rps", cfg.RPS, "requests (http) or connections (tcp) per second")
	f.IntVar(&cfg.Burst, "burst", cfg.Burst, "requests allowed at once above the rate")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "concurrent client connections")
	f.DurationVar(&cfg.HeaderTimeout, "header-timeout", cfg.HeaderTimeout, "time to read a request's headers")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "time for one request")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "idle keep-alive or tcp stream")
	f.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", cfg.UpstreamTimeout, "time to connect to the service")
	return c
}

// envFlags sets every flag not given on the command line from
// MOAT_GATEWAY_<NAME>, if set.
func envFlags(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		key := "MOAT_GATEWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", key, v, serr)
			}
		}
	})
	return err
}
