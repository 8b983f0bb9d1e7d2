package policy

import (
	"slices"
	"strings"
	"testing"
)

const (
	tenantsFile = "platform/tenants.yaml"
	acmeApps    = "tenants/acme/apps.yaml"
	acmeLans    = "tenants/acme/lans.yaml"
	globexAll   = "tenants/globex/all.yaml"
)

// app is a minimal valid App document for acme's folder.
func app(name string, extra string) string {
	return "kind: App\nname: " + name + "\nimage: localhost/moat-examples/echo:1\nlans: [backend]\nresources: {cpus: 0.25, memory: 64MiB, pids: 64}\n" + extra
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name  string
		edits func(t *testing.T) map[string]string
		want  []string // "pos: rule", sorted
		// Substrings the messages must (or must not) contain.
		contains, hides []string
	}{
		{name: "valid", edits: func(*testing.T) map[string]string { return nil }},

		// Ownership.
		{name: "no platform",
			edits: func(*testing.T) map[string]string { return map[string]string{"platform.yaml": ""} },
			want:  []string{"<repo>: ownership.platform"}},
		{name: "second platform",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"platform/second.yaml": "kind: Platform\nname: other\n"}
			},
			want:     []string{"platform/second.yaml:1:7: ownership.platform"},
			contains: []string{"the first is at platform.yaml:2:7"}},
		{name: "tenant grants itself from its folder",
			edits: func(*testing.T) map[string]string {
				return map[string]string{
					"tenants/acme/me.yaml": "kind: Tenant\nname: acme\nblock: 10.80.0.0/16\nquota: {cpus: 64}\ngrants: {masterdata: [read-write], logging: [read-write]}\n",
					acmeApps:               base[acmeApps] + "---\n" + app("reader", "uses: [{service: logging, mode: read-write}]\n"),
				}
			},
			// The self-made Tenant is refused and ignored: the use is
			// still judged against the platform's grant.
			want: []string{
				"tenants/acme/apps.yaml:29:33: access.not-granted",
				"tenants/acme/me.yaml:1:7: ownership.platform-kind-in-tenant",
			}},
		{name: "shared service in a tenant folder",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/acme/svc.yaml": "kind: SharedService\nname: mine\noffers: [read-write]\n"}
			},
			want: []string{"tenants/acme/svc.yaml:1:7: ownership.platform-kind-in-tenant"}},
		{name: "lan outside tenants",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"platform/lan.yaml": "kind: Lan\nname: x\ntenant: acme\nsubnet: 10.80.2.0/24\n"}
			},
			want: []string{"platform/lan.yaml:1:7: ownership.tenant-kind-outside"}},
		{name: "file directly in tenants",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/loose.yaml": "kind: Volume\nname: x\n"}
			},
			want: []string{"tenants/loose.yaml:1:7: ownership.no-tenant-folder"}},
		{name: "document names another tenant",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/acme/evil.yaml": "kind: Lan\nname: main2\ntenant: globex\nsubnet: 10.80.5.0/24\n"}
			},
			want: []string{"tenants/acme/evil.yaml:3:9: ownership.other-tenant"}},
		{name: "naming its own tenant is fine",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/acme/ok.yaml": "kind: Volume\nname: data\ntenant: acme\n"}
			}},
		{name: "unregistered tenant reported once",
			edits: func(*testing.T) map[string]string {
				return map[string]string{
					"tenants/initech/a.yaml": "kind: Lan\nname: l\nsubnet: 10.99.0.0/24\n---\nkind: Volume\nname: v\n",
					"tenants/initech/b.yaml": "kind: Volume\nname: w\n",
				}
			},
			want: []string{"tenants/initech/a.yaml:1:1: ownership.unregistered-tenant"}},

		// Uniqueness.
		{name: "duplicate app in one tenant",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/acme/more.yaml": app("web", "")}
			},
			want:     []string{"tenants/acme/more.yaml:2:7: uniqueness.duplicate"},
			contains: []string{"already defined at tenants/acme/apps.yaml:2:7"}},
		{name: "same name in two tenants is fine",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"tenants/globex/web.yaml": "kind: Volume\nname: cache\n---\nkind: Lan\nname: backend\nsubnet: 10.80.5.0/24\n"}
			}},
		{name: "service and shared volume share a namespace",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"shared/z.yaml": "kind: SharedVolume\nname: logging\n"}
			},
			want: []string{"shared/z.yaml:2:7: uniqueness.duplicate"}},
		{name: "duplicate tenant",
			edits: func(*testing.T) map[string]string {
				return map[string]string{"platform/z.yaml": "kind: Tenant\nname: acme\nblock: 10.80.8.0/22\n"}
			},
			want: []string{"platform/z.yaml:2:7: uniqueness.duplicate"}},
		{name: "reserved tenant name",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform/z.yaml": "kind: Tenant\nname: shared\nblock: 10.80.8.0/22\n"}
			},
			want: []string{"platform/z.yaml:2:7: uniqueness.reserved-name"}},

		// Addresses.
		{name: "block outside pool",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{tenantsFile: replace(t, tenantsFile, "10.80.4.0/22", "10.200.4.0/22")}
			},
			// globex's LAN now lies outside its block too.
			want: []string{
				"platform/tenants.yaml:11:8: addresses.block-outside-pool",
				"tenants/globex/all.yaml:3:9: addresses.subnet-outside-block",
			}},
		{name: "blocks overlap",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{tenantsFile: replace(t, tenantsFile, "10.80.4.0/22", "10.80.0.0/21")}
			},
			want:     []string{"platform/tenants.yaml:11:8: addresses.block-overlap"},
			contains: []string{"tenant block 10.80.0.0/21 overlaps tenant block 10.80.0.0/22 at platform/tenants.yaml:3:8"}},
		{name: "subnet outside block",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeLans: replace(t, acmeLans, "10.80.1.0/24", "10.80.4.0/24")}
			},
			want: []string{"tenants/acme/lans.yaml:8:9: addresses.subnet-outside-block"},
			// The subnet collides with globex's LAN, but acme is told only
			// about its own block.
			hides: []string{"globex", "main"}},
		{name: "subnets overlap",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeLans: replace(t, acmeLans, "10.80.1.0/24", "10.80.0.128/25")}
			},
			want: []string{"tenants/acme/lans.yaml:8:9: addresses.subnet-overlap"}},
		{name: "subnet too small",
			edits: func(t *testing.T) map[string]string {
				// frontend: gateway + 2 web replicas + logging gateway = 4 > 2.
				return map[string]string{acmeLans: replace(t, acmeLans, "10.80.0.0/24", "10.80.0.0/30")}
			},
			want:     []string{"tenants/acme/lans.yaml:3:9: addresses.subnet-too-small"},
			contains: []string{"has 2 usable addresses but needs 4"}},
		{name: "subnet just large enough",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeLans: replace(t, acmeLans, "10.80.0.0/24", "10.80.0.0/29")}
			}},

		// Links.
		{name: "another tenant's LAN is unknown, and not revealed",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "lans: [backend]", "lans: [backend, main]")}
			},
			want:  []string{"tenants/acme/apps.yaml:14:17: links.unknown-lan"},
			hides: []string{"globex"}},
		{name: "unknown LAN",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "lans: [backend]", "lans: [backend, nowhere]")}
			},
			want: []string{"tenants/acme/apps.yaml:14:17: links.unknown-lan"}},
		{name: "talksTo another tenant's app",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "talksTo: [api]", "talksTo: [api, shop]")}
			},
			want:  []string{"tenants/acme/apps.yaml:6:16: links.unknown-app"},
			hides: []string{"globex"}},
		{name: "talksTo an app on no common LAN",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "lans: [frontend, backend]", "lans: [frontend]")}
			},
			want: []string{"tenants/acme/apps.yaml:6:11: links.no-shared-lan"}},
		{name: "unknown volume",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "{volume: cache,", "{volume: cash,")}
			},
			want: []string{"tenants/acme/apps.yaml:17:14: links.unknown-volume"}},
		{name: "app with no LAN is allowed",
			edits: func(t *testing.T) map[string]string {
				s := replace(t, acmeApps, "lans: [backend]\n", "")
				return map[string]string{acmeApps: strings.Replace(s, "talksTo: [api]\n", "", 1)}
			}},
		{name: "uses without LAN",
			edits: func(t *testing.T) map[string]string {
				s := replace(t, acmeApps, "lans: [frontend, backend]\n", "")
				return map[string]string{acmeApps: strings.Replace(s, "talksTo: [api]\n", "", 1)}
			},
			want: []string{"tenants/acme/apps.yaml:6:3: links.uses-without-lan"}},

		// Access.
		{name: "unknown service",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "{service: logging,", "{service: metrics,")}
			},
			want: []string{"tenants/acme/apps.yaml:8:15: access.unknown-service"}},
		{name: "shared volume used as a service",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "{service: logging, mode: write-only}", "{service: masterdata, mode: read-only}")}
			},
			want:     []string{"tenants/acme/apps.yaml:8:15: access.unknown-service"},
			contains: []string{"mount it under volumes"}},
		{name: "mode not granted",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "mode: write-only", "mode: read-write")}
			},
			want:     []string{"tenants/acme/apps.yaml:8:30: access.not-granted"},
			contains: []string{"granted: write-only"}},
		{name: "shared volume without grant",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{globexAll: base[globexAll] + "volumes: [{shared: masterdata, path: /m}]\n"}
			},
			want: []string{"tenants/globex/all.yaml:10:20: access.not-granted"}},
		{name: "unknown shared volume",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "{shared: masterdata,", "{shared: secretsdb,")}
			},
			want: []string{"tenants/acme/apps.yaml:16:14: access.unknown-shared-volume"}},
		{name: "service used twice",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "  - {service: logging, mode: write-only}\n",
					"  - {service: logging, mode: write-only}\n  - {service: logging, mode: write-only}\n")}
			},
			want: []string{"tenants/acme/apps.yaml:9:15: access.duplicate-use"}},
		{name: "grant of an unknown name",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{tenantsFile: replace(t, tenantsFile, "  masterdata: [read-only]\n", "  masterdata: [read-only]\n  metrics: [read-only]\n")}
			},
			want: []string{"platform/tenants.yaml:8:3: access.grant-unknown"}},
		{name: "grant of a mode not offered",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{tenantsFile: replace(t, tenantsFile, "  logging: [write-only]\n  masterdata", "  logging: [write-only, read-only]\n  masterdata")}
			},
			want: []string{"platform/tenants.yaml:6:25: access.grant-not-offered"}},

		// Hardening.
		{name: "capability without exception",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: base[acmeApps] + "---\n" + app("bind", "capAdd: [NET_BIND_SERVICE, CHOWN]\n")}
			},
			want: []string{
				"tenants/acme/apps.yaml:29:10: hardening.cap-exception",
				"tenants/acme/apps.yaml:29:28: hardening.cap-exception",
			}},
		// An exception cannot take effect for a non-root uid under
		// no-new-privileges (CapEff stays 0), so it is refused on both
		// sides rather than accepted and silently ineffective.
		{name: "capability with exception: the exception and every capAdd refused",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					acmeApps: base[acmeApps] + "---\n" + app("bind", "capAdd: [net_bind_service, CHOWN]\n"),
					"platform.yaml": base["platform.yaml"] + "  capabilities:\n" +
						"    - {tenant: acme, app: bind, add: [CAP_NET_BIND_SERVICE]}\n" +
						"    - {tenant: globex, app: bind, add: [CHOWN]}\n",
				}
			},
			want: []string{
				"platform.yaml:10:7: hardening.cap-exception",
				"platform.yaml:11:7: hardening.cap-exception",
				"tenants/acme/apps.yaml:29:10: hardening.cap-exception",
				"tenants/acme/apps.yaml:29:28: hardening.cap-exception",
			}},

		// Quotas.
		{name: "cpus over quota",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: base[acmeApps] + "---\n" +
					"kind: App\nname: batch\nimage: localhost/moat-examples/echo:1\nreplicas: 3\nresources: {cpus: 0.5, memory: 64MiB, pids: 64}\n"}
			},
			want:     []string{"tenants/acme/apps.yaml:28:19: quotas.cpus"},
			contains: []string{"need 2.25 CPUs", "quota.cpus is 2", "app batch"}},
		{name: "memory and pids over quota, once each",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{globexAll: base[globexAll] + "---\n" +
					"kind: App\nname: a\nimage: localhost/moat-examples/echo:1\nresources: {cpus: 0.1, memory: 384MiB, pids: 200}\n---\n" +
					"kind: App\nname: b\nimage: localhost/moat-examples/echo:1\nresources: {cpus: 0.1, memory: 64MiB, pids: 64}\n"}
			},
			// shop (128MiB) + a (384MiB) = 512MiB fits exactly; b crosses.
			want: []string{
				"tenants/globex/all.yaml:14:46: quotas.pids",
				"tenants/globex/all.yaml:19:32: quotas.memory",
			},
			contains: []string{"need 576MiB memory", "quota.memory is 512MiB"}},
		{name: "containers over quota",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{globexAll: replace(t, globexAll, "lans: [main]\n", "lans: [main]\nreplicas: 6\n")}
			},
			want: []string{
				"tenants/globex/all.yaml:9:11: quotas.containers",
				"tenants/globex/all.yaml:10:19: quotas.cpus",
				"tenants/globex/all.yaml:10:32: quotas.memory",
				"tenants/globex/all.yaml:10:46: quotas.pids",
			}},
		{name: "replicas zero counts nothing",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{globexAll: replace(t, globexAll, "resources: {cpus: 0.5,", "replicas: 0\nresources: {cpus: 5,")}
			}},

		// Secrets and ports.
		{name: "secret twice",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeApps: replace(t, acmeApps, "secrets: [db-password]", "secrets: [db-password, db-password]")}
			},
			want: []string{"tenants/acme/apps.yaml:18:24: secrets.duplicate"}},
		{name: "ports not allowed",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{globexAll: base[globexAll] + "ports: [{container: 8080, host: 8080}]\n"}
			},
			want: []string{"tenants/globex/all.yaml:10:9: ports.not-allowed"}},
		{name: "port conflicts across tenants, within an app, and by replicas",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": replace(t, "platform.yaml", "publishPorts: false", "publishPorts: true"),
					globexAll:       base[globexAll] + "ports: [{container: 80, host: 8080}, {container: 81, host: 8080}, {container: 82, host: 8080, protocol: udp}]\n",
					acmeApps:        replace(t, acmeApps, "kind: App\nname: web\n", "kind: App\nname: web\nports: [{container: 80, host: 8080}]\n"),
				}
			},
			want: []string{
				// web has 2 replicas and publishes first (acme < globex).
				"tenants/acme/apps.yaml:3:31: ports.conflict",
				"tenants/globex/all.yaml:10:31: ports.conflict",
				"tenants/globex/all.yaml:10:60: ports.conflict",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := Check(repoOf(t, tc.edits(t)))
			got := short(ds)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s\nfull:\n%s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "), full(ds))
			}
			text := full(ds)
			for _, s := range tc.contains {
				if !strings.Contains(text, s) {
					t.Errorf("messages lack %q:\n%s", s, text)
				}
			}
			for _, s := range tc.hides {
				if strings.Contains(text, s) {
					t.Errorf("messages reveal %q:\n%s", s, text)
				}
			}
		})
	}
}
