package policy

import (
	"slices"
	"strings"
	"testing"
)

// swarmPlatform is base's platform on Swarm: overlay, encrypted.
const swarmPlatform = `kind: Platform
name: fixture
engine: swarm
network:
  driver: overlay
  pool: 10.80.0.0/12
  encrypted: true
policy:
  images: ["localhost/moat-examples/"]
`

func TestSwarmRules(t *testing.T) {
	cases := []struct {
		name     string
		edits    func(t *testing.T) map[string]string
		want     []string // "pos: rule", sorted
		contains []string
	}{
		{name: "valid swarm platform with placement",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": swarmPlatform,
					tenantsFile:     replace(t, tenantsFile, "  masterdata: [read-only]\n", "  masterdata: [read-only]\nplacement: {nodeLabels: {zone: eu-1, node.role: tenants_a}}\n"),
				}
			}},
		{name: "swarm without overlay",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": replace(t, "platform.yaml", "name: fixture\n", "name: fixture\nengine: swarm\n")}
			},
			want:     []string{"platform.yaml:5:11: swarm.driver"},
			contains: []string{"engine swarm needs network.driver: overlay", "got bridge"}},
		{name: "swarm with the driver left out points at engine",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": strings.Replace(swarmPlatform, "  driver: overlay\n", "", 1)}
			},
			want: []string{"platform.yaml:3:9: swarm.driver"}},
		{name: "overlay on one host",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": replace(t, "platform.yaml", "driver: bridge", "driver: overlay")}
			},
			want:     []string{"platform.yaml:4:11: swarm.driver"},
			contains: []string{"overlay needs engine: swarm"}},
		{name: "encrypted bridge",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": replace(t, "platform.yaml", "  pool: 10.80.0.0/12\n", "  pool: 10.80.0.0/12\n  encrypted: true\n")}
			},
			want: []string{"platform.yaml:6:14: swarm.driver"}},
		{name: "published ports on swarm",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": strings.Replace(swarmPlatform, "policy:\n", "policy:\n  publishPorts: true\n", 1),
					globexAll:       base[globexAll] + "ports: [{container: 8080, host: 8080}]\n",
				}
			},
			// Not ports.not-allowed or ports.conflict as well: one finding per port.
			want: []string{"platform.yaml:9:17: swarm.publish", "tenants/globex/all.yaml:10:9: swarm.publish"}},
		{name: "ports on swarm without publishPorts",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": swarmPlatform,
					globexAll:       base[globexAll] + "ports: [{container: 8080, host: 8080}]\n",
				}
			},
			want: []string{"tenants/globex/all.yaml:10:9: swarm.publish"}},
		{name: "double dash in names",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": swarmPlatform,
					acmeLans:        replace(t, acmeLans, "name: backend", "name: back--end"),
					acmeApps: strings.ReplaceAll(strings.Replace(replace(t, acmeApps, "name: api\n", "name: a--pi\n"),
						"talksTo: [api]", "talksTo: [a--pi]", 1), "backend", "back--end"),
					globexAll: replace(t, globexAll, "lans: [main]\n", "lans: [main]\nsecrets: [db--password]\n"),
				}
			},
			want: []string{
				"tenants/acme/apps.yaml:12:7: swarm.name",
				"tenants/acme/lans.yaml:7:7: swarm.name",
				"tenants/globex/all.yaml:9:11: swarm.name",
			},
			contains: []string{`LAN name "back--end" contains "--"`, `app name "a--pi"`, `secret name "db--password"`}},
		{name: "double dash is fine on one host",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{acmeLans: replace(t, acmeLans, "name: frontend", "name: front--end"),
					acmeApps: replace(t, acmeApps, "[frontend, backend]", "[front--end, backend]")}
			}},
		{name: "names too long on swarm",
			edits: func(t *testing.T) map[string]string {
				long := "a-platform-name-of-30-letters0"
				return map[string]string{
					"platform.yaml": strings.Replace(swarmPlatform, "name: fixture", "name: "+long, 1),
					// The network 30+2+4+2+25 = 63 fits exactly; the gateway of
					// acme to logging 30+2+4+2+7+2+7 = 54 and the secret
					// 30+2+4+2+11+2+12 = 63 fit too.
					acmeLans: strings.ReplaceAll(base[acmeLans], "backend", "backend-with-a-long-name1"),
					acmeApps: strings.ReplaceAll(base[acmeApps], "backend", "backend-with-a-long-name1"),
				}
			}},
		{name: "network and secret and gateway over the limit",
			edits: func(t *testing.T) map[string]string {
				long := "a-platform-name-of-30-letters0"
				return map[string]string{
					"platform.yaml": strings.Replace(swarmPlatform, "name: fixture", "name: "+long, 1),
					acmeLans:        strings.ReplaceAll(base[acmeLans], "backend", "backend-with-a-long-name12"),
					acmeApps: strings.ReplaceAll(replace(t, acmeApps, "secrets: [db-password]", "secrets: [a-database-password-of-many]"),
						"backend", "backend-with-a-long-name12"),
					tenantsFile:            replace(t, tenantsFile, "  logging: [write-only]\n  masterdata", "  logging: [write-only]\n  logging-with-a-long-name: [read-only]\n  masterdata"),
					"shared/services.yaml": base["shared/services.yaml"] + "---\nkind: SharedService\nname: logging-with-a-long-name\nimage: localhost/moat-examples/logsink:1\nport: 8080\noffers: [read-only]\nresources: {cpus: 0.5, memory: 64MiB, pids: 64}\n",
				}
			},
			want: []string{
				"platform/tenants.yaml:7:29: swarm.name", // gateway
				"platform/tenants.yaml:7:29: swarm.name", // link
				"shared/services.yaml:14:7: swarm.name",  // the service itself
				"tenants/acme/apps.yaml:18:11: swarm.name",
				"tenants/acme/lans.yaml:7:7: swarm.name",
			},
			contains: []string{
				"the Swarm network name a-platform-name-of-30-letters0--acme--backend-with-a-long-name12 has 64 characters, more than 63",
				"secret name a-platform-name-of-30-letters0--acme--a-database-password-of-many--000000000000 has 79 characters, more than 64",
				"gateway service name a-platform-name-of-30-letters0--acme--logging-with-a-long-name--gateway",
				"link network name",
			}},
		// Addresses on an overlay (RULES.md): frontend holds web x2 (no
		// volume: start-first, 2 more during an update) and acme's logging
		// gateway (start-first): 6 tasks, up to 6 load-balancer endpoints,
		// and the gateway address: 13. A /29 (6 usable) that is enough on
		// one host is not; a /28 (14) is.
		{name: "overlay subnet too small for a rolling update",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": swarmPlatform, acmeLans: replace(t, acmeLans, "10.80.0.0/24", "10.80.0.0/29")}
			},
			want:     []string{"tenants/acme/lans.yaml:3:9: addresses.subnet-too-small"},
			contains: []string{"has 6 usable addresses but needs 13 (on Swarm:"}},
		{name: "overlay subnet just large enough",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": swarmPlatform, acmeLans: replace(t, acmeLans, "10.80.0.0/24", "10.80.0.0/28")}
			}},
		// backend: web x2 start-first (4), api writes its cache volume
		// (stop-first: 1), the logging gateway (2): 7 tasks, 7 endpoints,
		// the gateway: 15 > 14.
		{name: "a stop-first app counts once",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": swarmPlatform, acmeLans: replace(t, acmeLans, "10.80.1.0/24", "10.80.1.0/28")}
			},
			want:     []string{"tenants/acme/lans.yaml:8:9: addresses.subnet-too-small"},
			contains: []string{"has 14 usable addresses but needs 15"}},
		// A shared volume is mounted read-only by compile whatever the
		// config says: api stays stop-first only through its cache; made
		// read-only, api is start-first (2): 8 tasks, 17 > 14.
		{name: "a read-only volume leaves an app start-first",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{"platform.yaml": swarmPlatform, acmeLans: replace(t, acmeLans, "10.80.1.0/24", "10.80.1.0/28"),
					acmeApps: replace(t, acmeApps, "{volume: cache, path: /cache}", "{volume: cache, path: /cache, readOnly: true}")}
			},
			want:     []string{"tenants/acme/lans.yaml:8:9: addresses.subnet-too-small"},
			contains: []string{"has 14 usable addresses but needs 17"}},
		{name: "placement on one host",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{tenantsFile: replace(t, tenantsFile, "  masterdata: [read-only]\n", "  masterdata: [read-only]\nplacement: {nodeLabels: {zone: eu-1}}\n")}
			},
			want:     []string{"platform/tenants.yaml:8:12: swarm.placement"},
			contains: []string{"placement of tenant acme is for Swarm platforms", "runs on docker"}},
		{name: "bad node labels",
			edits: func(t *testing.T) map[string]string {
				return map[string]string{
					"platform.yaml": swarmPlatform,
					tenantsFile:     replace(t, tenantsFile, "  masterdata: [read-only]\n", "  masterdata: [read-only]\nplacement:\n  nodeLabels:\n    \"zone==x\": a\n    rack: \"r1 r2\"\n    ok: fine\n"),
				}
			},
			want:     []string{"platform/tenants.yaml:10:5: swarm.placement", "platform/tenants.yaml:11:11: swarm.placement"},
			contains: []string{`node label name "zone==x"`, `node label rack of tenant acme must have a value`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := Check(repoOf(t, tc.edits(t)))
			got := short(ds)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s\nfull:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), full(ds))
			}
			text := full(ds)
			for _, s := range tc.contains {
				if !strings.Contains(text, s) {
					t.Errorf("messages lack %q:\n%s", s, text)
				}
			}
		})
	}
}
