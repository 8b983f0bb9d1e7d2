// Command moat-repogen writes a large, valid moat config repository for
// benchmarks and scale tests (see package internal/repogen):
//
//	moat-repogen -tenants 1000 -apps 10 -out /tmp/bench-repo
//
// The output directory must not exist or be empty. Output is deterministic:
// the same flags always give the same bytes.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/moat-platform/moat/internal/repogen"
)

func main() {
	var opts repogen.Options
	flag.IntVar(&opts.Tenants, "tenants", 10, fmt.Sprintf("number of tenants (1..%d)", repogen.MaxTenants))
	flag.IntVar(&opts.AppsPerTenant, "apps", 10, fmt.Sprintf("apps per tenant (1..%d)", repogen.MaxApps))
	flag.IntVar(&opts.LansPerTenant, "lans", 2, fmt.Sprintf("LANs per tenant (1..%d)", repogen.MaxLansPerTenant))
	flag.IntVar(&opts.ReplicasPerApp, "replicas", 1, fmt.Sprintf("replicas per app (1..%d)", repogen.MaxReplicas))
	flag.BoolVar(&opts.FilePerApp, "file-per-app", false, "one file per app instead of one apps.yaml per tenant")
	out := flag.String("out", "", "output directory (required; must not exist or be empty)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: moat-repogen -out DIR [-tenants N] [-apps N] [-lans N] [-replicas N] [-file-per-app]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := repogen.WriteDir(*out, opts); err != nil {
		fmt.Fprintln(os.Stderr, "moat-repogen:", err)
		os.Exit(1)
	}
	fmt.Printf("moat-repogen: wrote %d tenants x %d apps to %s\n", opts.Tenants, opts.AppsPerTenant, *out)
}
