package schema

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/diag"
)

// app is a valid App; cases append or replace lines to break one thing.
const app = `kind: App
name: web
image: localhost/moat-examples/echo:1
resources: {cpus: 0.25, memory: 64MiB, pids: 64}
`

var defaultOpts = Options{ImagePrefixes: []string{"localhost/moat-examples/"}}

type ruleCase struct {
	name string
	src  string
	opts *Options
	want []string // "line:col rule", sorted like diag.List.Sort
	msg  string   // optional: a substring of the first diagnostic's message
}

func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := defaultOpts
			if tc.opts != nil {
				opts = *tc.opts
			}
			ds := Check(parseDocs(t, "tenants/acme/x.yaml", tc.src), opts)
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%d:%d %s", d.Line, d.Col, d.Rule))
				if d.File != "tenants/acme/x.yaml" || d.Message == "" || strings.Contains(d.Message, "{") && !strings.Contains(d.Message, "{cpus") {
					t.Errorf("bad diagnostic %v", d)
				}
				if _, ok := diag.Lookup(d.Rule); !ok {
					t.Errorf("rule %s is not registered", d.Rule)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q\n%s", got, tc.want, render(ds))
			}
			if tc.msg != "" && (len(ds) == 0 || !strings.Contains(ds[0].Message, tc.msg)) {
				t.Errorf("first message does not contain %q:\n%s", tc.msg, render(ds))
			}
		})
	}
}

func render(ds diag.List) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

func TestValidDocuments(t *testing.T) {
	src := app + `replicas: 2
tenant: acme
lans: [frontend, backend]
talksTo: [api]
uses:
  - {service: logging, mode: write-only}
volumes:
  - {shared: masterdata, path: /master}
  - {shared: masterdata, path: /master2, readOnly: true}
  - {volume: cache, path: /cache, readOnly: false}
secrets: [db-password]
env: {LOG_URL: "http://logging:8080", EMPTY: ""}
command: [/echo, -listen, ":8080"]
ports: [{container: 8080, host: 18080, protocol: tcp}]
capAdd: [NET_BIND_SERVICE]
user: "1000:1000"
privileged: false
healthcheck: {command: [/echo, -check], interval: 10s, timeout: 1.5s, retries: 3}
---
kind: Lan
name: backend
subnet: 10.80.1.0/24
internet: false
---
kind: Volume
name: cache
---
kind: Platform
name: demo
network: {driver: overlay, pool: 10.80.0.0/12, encrypted: true}
policy:
  images: ["localhost/moat-examples/"]
  requireDigest: false
  publishPorts: true
  publishAddress: 127.0.0.1
  capabilities: [{tenant: acme, app: web, add: [NET_BIND_SERVICE]}]
runtime: {stopTimeout: 10, user: "65534:65534", restartRetries: 5, tmpfsSize: 16MiB, pruneVolumes: false}
---
kind: Tenant
name: acme
block: 10.80.0.0/22
quota: {cpus: 2, memory: 1GiB, pids: 512, containers: 10}
grants: {logging: [write-only], masterdata: [read-only]}
---
kind: SharedService
name: logging
image: registry.example.com:5000/platform/logsink@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
command: [/logsink]
protocol: udp
port: 514
offers: [write-only, read-write]
env: {A: b}
resources: {cpus: 0.5, memory: 1G, pids: 64}
---
kind: SharedVolume
name: masterdata
offers: [read-only]
`
	if ds := Check(parseDocs(t, "x.yaml", src), defaultOpts); len(ds) != 0 {
		t.Fatalf("valid documents reported:\n%s", render(ds))
	}
}

func TestStructureRules(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "kind missing", src: "name: web\n", want: []string{"1:1 structure.kind"}, msg: "has no `kind`"},
		{name: "kind unknown", src: "kind: Deployment\nname: web\n", want: []string{"1:7 structure.kind"}, msg: `unknown kind "Deployment"`},
		{name: "kind not a string", src: "kind: 5\n", want: []string{"1:7 structure.kind"}},
		{name: "kind lowercase", src: "kind: app\n", want: []string{"1:7 structure.kind"}},
		{name: "not a mapping", src: "- kind: App\n", want: []string{"1:1 structure.kind"}},
		{name: "required image", src: "kind: App\nname: web\nresources: {cpus: 1, memory: 1G, pids: 1}\n",
			want: []string{"1:1 structure.required"}, msg: "App needs `image`: add it"},
		{name: "required subnet", src: "kind: Lan\nname: x\n", want: []string{"1:1 structure.required"}},
		{name: "required nested", src: "kind: Platform\nname: p\nnetwork:\n  driver: bridge\n",
			want: []string{"4:3 structure.required"}, msg: "`network.pool`"},
		{name: "mount without volume", src: app + "volumes: [{path: /x}]\n", want: []string{"5:11 structure.required"}},
		{name: "mount with both", src: app + "volumes: [{volume: a, shared: b, path: /x}]\n",
			want: []string{"5:20 structure.required"}, msg: "not both"},
		{name: "unknown top", src: app + "replica: 2\n", want: []string{"5:1 structure.unknown-field"}, msg: "rename it to `replicas`"},
		{name: "unknown nested", src: app + "healthcheck: {command: [x], every: 5s}\n", want: []string{"5:29 structure.unknown-field"}},
		{name: "unknown in list", src: app + "volumes:\n  - {volume: a, path: /x, mode: rw}\n", want: []string{"6:27 structure.unknown-field"}},
		{name: "unknown with value error", src: app + "replicas: -1\nfoo: 1\n",
			want: []string{"5:11 structure.range", "6:1 structure.unknown-field"}},
		{name: "nested unknown and value error", src: "kind: App\nname: web\nimage: localhost/moat-examples/e:1\nresources: {cpus: 0, memory: 1G, pids: 1, swap: 1G}\n",
			want: []string{"4:19 hardening.limits", "4:43 structure.unknown-field"}},
		{name: "type int for string", src: app + "user: 1000\n", want: []string{"5:7 structure.type"}, msg: "`user` must be a string, not an integer"},
		{name: "type string for int", src: app + "replicas: \"2\"\n", want: []string{"5:11 structure.type"}, msg: "must be a whole number, not a string"},
		{name: "type env value", src: app + "env: {PORT: 8080}\n", want: []string{"5:13 structure.type"}, msg: "`env.PORT` must be a string"},
		{name: "type list", src: app + "lans: backend\n", want: []string{"5:7 structure.type"}, msg: "must be a list"},
		{name: "type mount path", src: app + "volumes: [{volume: a, path: data}]\n", want: []string{"5:29 structure.type"}},
		{name: "type mount dotdot", src: app + "volumes: [{volume: a, path: /a/../etc}]\n", want: []string{"5:29 structure.type"}},
		{name: "type duration", src: app + "healthcheck: {command: [x], interval: 10}\n", want: []string{"5:39 structure.type"}},
		{name: "type empty health command", src: app + "healthcheck: {command: []}\n", want: []string{"5:24 structure.type"}},
		{name: "type bool", src: "kind: Lan\nname: x\nsubnet: 10.0.0.0/24\ninternet: yes\n", want: []string{"4:11 structure.type"}},
		{name: "type infinite", src: app + "replicas: .inf\n", want: []string{"5:11 structure.type"}},
		{name: "name uppercase", src: "kind: Volume\nname: Cache\n", want: []string{"2:7 structure.name"}},
		{name: "name too long", src: "kind: Volume\nname: " + strings.Repeat("a", 31) + "\n", want: []string{"2:7 structure.name"}},
		{name: "name 30 ok", src: "kind: Volume\nname: " + strings.Repeat("a", 30) + "\n"},
		{name: "name trailing dash", src: "kind: Volume\nname: a-\n", want: []string{"2:7 structure.name"}},
		{name: "name dot", src: "kind: Volume\nname: a.b\n", want: []string{"2:7 structure.name"}},
		{name: "name lans entry", src: app + "lans: [ok, Not_OK]\n", want: []string{"5:12 structure.name"}},
		{name: "name tenant", src: "kind: Volume\nname: a\ntenant: ../x\n", want: []string{"3:9 structure.name"}},
		{name: "name uses service", src: app + "uses: [{service: Log, mode: read-only}]\n", want: []string{"5:18 structure.name"}},
		{name: "enum driver", src: "kind: Platform\nname: p\nnetwork: {driver: host, pool: 10.0.0.0/8}\n", want: []string{"3:19 structure.enum"}},
		{name: "enum protocol", src: "kind: SharedService\nname: s\nimage: a/b:1\nprotocol: grpc\nport: 1\noffers: []\nresources: {cpus: 1, memory: 1G, pids: 1}\n",
			want: []string{"4:11 structure.enum"}},
		{name: "enum port protocol", src: app + "ports: [{container: 80, host: 8080, protocol: sctp}]\n", want: []string{"5:47 structure.enum"}},
		{name: "cidr pool", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0}\n", want: []string{"3:17 structure.cidr"}},
		{name: "cidr block", src: "kind: Tenant\nname: t\nblock: 10.0.0.256/24\nquota: {cpus: 1, memory: 1G, pids: 1, containers: 1}\n", want: []string{"3:8 structure.cidr"}},
		{name: "cidr subnet", src: "kind: Lan\nname: x\nsubnet: 10.80.1.0/33\n", want: []string{"3:9 structure.cidr"}},
		{name: "cidr publish address", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\npolicy: {publishAddress: localhost}\n", want: []string{"4:26 structure.cidr"}},
		{name: "memory unit", src: strings.Replace(app, "64MiB", "64Mb", 1), want: []string{"4:33 structure.memory"}},
		{name: "memory zero", src: strings.Replace(app, "64MiB", "0MiB", 1), want: []string{"4:33 structure.memory"}},
		{name: "memory number", src: strings.Replace(app, "64MiB", "67108864", 1), want: []string{"4:33 structure.memory"}},
		{name: "memory quota", src: "kind: Tenant\nname: t\nblock: 10.0.0.0/24\nquota: {cpus: 1, memory: lots, pids: 1, containers: 1}\n", want: []string{"4:26 structure.memory"}},
		{name: "memory tmpfs", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\nruntime: {tmpfsSize: 1.5G}\n", want: []string{"4:22 structure.memory"}},
		{name: "range replicas", src: app + "replicas: 101\n", want: []string{"5:11 structure.range"}},
		{name: "range quota", src: "kind: Tenant\nname: t\nblock: 10.0.0.0/24\nquota: {cpus: 0, memory: 1G, pids: 1, containers: 0}\n",
			want: []string{"4:15 structure.range", "4:51 structure.range"}},
		{name: "range stop timeout", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\nruntime: {stopTimeout: -1}\n", want: []string{"4:24 structure.range"}},
	})
}

func TestHardeningRules(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "privileged", src: app + "privileged: true\n", want: []string{"5:13 hardening.privileged"},
			msg: "privileged containers are not allowed: remove `privileged`"},
		{name: "privileged as string", src: app + "privileged: \"yes\"\n", want: []string{"5:13 hardening.privileged"}},
		{name: "privileged false ok", src: app + "privileged: false\n"},
		{name: "cap never", src: app + "capAdd: [NET_BIND_SERVICE, SYS_ADMIN]\n", want: []string{"5:28 hardening.capabilities"}, msg: "SYS_ADMIN"},
		{name: "cap every forbidden", src: app + "capAdd: [NET_ADMIN, SYS_MODULE, SYS_PTRACE, SYS_RAWIO, DAC_READ_SEARCH, SYS_BOOT]\n",
			want: []string{"5:10 hardening.capabilities", "5:21 hardening.capabilities", "5:33 hardening.capabilities", "5:45 hardening.capabilities", "5:56 hardening.capabilities", "5:73 hardening.capabilities"}},
		{name: "cap unknown", src: app + "capAdd: [FLY]\n", want: []string{"5:10 hardening.capabilities"}, msg: "not a Linux capability"},
		{name: "cap prefix", src: app + "capAdd: [CAP_CHOWN]\n", want: []string{"5:10 hardening.capabilities"}, msg: "without the CAP_ prefix"},
		{name: "cap ALL", src: app + "capAdd: [ALL]\n", want: []string{"5:10 hardening.capabilities"}},
		{name: "cap platform exception", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\npolicy:\n  capabilities: [{tenant: a, app: b, add: [SYS_ADMIN]}]\n",
			want: []string{"5:44 hardening.capabilities"}},
		{name: "network host", src: app + "network: host\n", want: []string{"5:10 hardening.host-namespace"}, msg: "remove `network`"},
		{name: "pid host", src: app + "pid: host\n", want: []string{"5:6 hardening.host-namespace"}},
		{name: "ipc", src: app + "ipc: container:db\n", want: []string{"5:6 hardening.host-namespace"}},
		{name: "uts", src: app + "uts: host\n", want: []string{"5:6 hardening.host-namespace"}},
		{name: "userns", src: app + "userns: host\n", want: []string{"5:9 hardening.host-namespace"}},
		{name: "network empty", src: app + "network: \"\"\n", want: []string{"5:10 hardening.host-namespace"}},
		{name: "devices", src: app + "devices: [/dev/fuse]\n", want: []string{"5:10 hardening.devices"}},
		{name: "host mount", src: app + "volumes: [{host: /etc, path: /etc}]\n", want: []string{"5:18 hardening.host-mount"},
			msg: "host bind mounts are not allowed"},
		{name: "docker socket", src: app + "volumes: [{host: /var/run/docker.sock, path: /s}]\n", want: []string{"5:18 hardening.docker-socket"}},
		{name: "docker socket folder", src: app + "volumes: [{host: /run, path: /r}]\n", want: []string{"5:18 hardening.docker-socket"}},
		{name: "host mount with volume", src: app + "volumes: [{volume: a, host: /srv, path: /x}]\n", want: []string{"5:29 hardening.host-mount"}},
		{name: "sysctls", src: app + "sysctls: {net.ipv4.ip_forward: \"1\"}\n", want: []string{"5:10 hardening.sysctls"}},
		{name: "security opt", src: app + "securityOpt: [seccomp=unconfined]\n", want: []string{"5:14 hardening.security-opt"}},
		{name: "limits missing", src: "kind: App\nname: web\nimage: localhost/moat-examples/e:1\n", want: []string{"1:1 hardening.limits"}, msg: "`resources` is required"},
		{name: "limits missing pids", src: "kind: App\nname: web\nimage: localhost/moat-examples/e:1\nresources: {cpus: 1, memory: 1G}\n",
			want: []string{"4:12 hardening.limits"}, msg: "`resources.pids` is required"},
		{name: "limits cpus", src: strings.Replace(app, "cpus: 0.25", "cpus: 65", 1), want: []string{"4:19 hardening.limits"}},
		{name: "limits cpus zero", src: strings.Replace(app, "cpus: 0.25", "cpus: 0", 1), want: []string{"4:19 hardening.limits"}},
		{name: "limits pids", src: strings.Replace(app, "pids: 64", "pids: 4097", 1), want: []string{"4:46 hardening.limits"}},
		{name: "limits shared service", src: "kind: SharedService\nname: s\nimage: a/b:1\nprotocol: tcp\nport: 1\noffers: [read-only]\n",
			want: []string{"1:1 hardening.limits"}},
		{name: "user root", src: app + "user: root\n", want: []string{"5:7 hardening.user"}},
		{name: "user 0", src: app + "user: \"0\"\n", want: []string{"5:7 hardening.user"}},
		{name: "user 0 group", src: app + "user: \"0:1000\"\n", want: []string{"5:7 hardening.user"}},
		{name: "user 000", src: app + "user: \"000\"\n", want: []string{"5:7 hardening.user"}},
		{name: "user root group", src: app + "user: root:root\n", want: []string{"5:7 hardening.user"}},
		{name: "user garbage", src: app + "user: \"1000 ; rm\"\n", want: []string{"5:7 hardening.user"}},
		{name: "user by name", src: app + "user: app:app\n", want: []string{"5:7 hardening.user"}},
		{name: "runtime user", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\nruntime: {user: \"0:0\"}\n", want: []string{"4:17 hardening.user"}},
		{name: "every relaxation at once", src: app + "privileged: true\nnetwork: host\ndevices: [/dev/kmsg]\nsysctls: {a: b}\nsecurityOpt: [x]\ncapAdd: [SYS_ADMIN]\nfoo: bar\n",
			want: []string{"5:13 hardening.privileged", "6:10 hardening.host-namespace", "7:10 hardening.devices", "8:10 hardening.sysctls", "9:14 hardening.security-opt", "10:10 hardening.capabilities", "11:1 structure.unknown-field"}},
	})
}

func TestImageRules(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	pinned := &Options{ImagePrefixes: defaultOpts.ImagePrefixes, RequireDigest: true}
	any := &Options{}
	runCases(t, []ruleCase{
		{name: "reference uppercase", src: strings.Replace(app, "localhost/moat-examples/echo:1", "localhost/Moat/echo:1", 1), opts: any, want: []string{"3:8 images.reference"}},
		{name: "reference space", src: strings.Replace(app, "localhost/moat-examples/echo:1", "\"echo 1\"", 1), opts: any, want: []string{"3:8 images.reference"}},
		{name: "reference empty", src: strings.Replace(app, "localhost/moat-examples/echo:1", "\"\"", 1), opts: any, want: []string{"3:8 images.reference"}},
		{name: "reference bad digest", src: strings.Replace(app, "echo:1", "echo@sha256:xyz", 1), want: []string{"3:8 images.reference"}},
		{name: "reference too long", src: strings.Replace(app, "echo:1", strings.Repeat("e", 250), 1), want: []string{"3:8 images.reference"}},
		{name: "reference service", src: "kind: SharedService\nname: s\nimage: a//b\nprotocol: tcp\nport: 1\noffers: []\nresources: {cpus: 1, memory: 1G, pids: 1}\n",
			want: []string{"3:8 images.reference"}},
		{name: "reference ok any prefix", src: strings.Replace(app, "localhost/moat-examples/echo:1", "docker.io/library/nginx:1.27", 1), opts: any},
		{name: "prefix", src: strings.Replace(app, "localhost/moat-examples/echo:1", "docker.io/evil/miner:1", 1), want: []string{"3:8 images.prefix"},
			msg: `image "docker.io/evil/miner:1" is not from an allowed registry: use an image that starts with "localhost/moat-examples/"`},
		{name: "prefix lookalike", src: strings.Replace(app, "localhost/moat-examples/echo:1", "localhost/moat-examples2/echo:1", 1), want: []string{"3:8 images.prefix"}},
		{name: "prefix several", src: strings.Replace(app, "localhost/moat-examples/echo:1", "quay.io/x:1", 1),
			opts: &Options{ImagePrefixes: []string{"a.io/", "b.io/"}}, want: []string{"3:8 images.prefix"}, msg: `one of "a.io/", "b.io/"`},
		{name: "prefix regexp chars are literal", src: strings.Replace(app, "localhost/moat-examples/echo:1", "regXio/x:1", 1),
			opts: &Options{ImagePrefixes: []string{"reg.io/"}}, want: []string{"3:8 images.prefix"}},
		{name: "prefix not for services", src: "kind: SharedService\nname: s\nimage: docker.io/x:1\nprotocol: tcp\nport: 1\noffers: []\nresources: {cpus: 1, memory: 1G, pids: 1}\n"},
		{name: "platform prefix without slash", src: "kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\npolicy: {images: [docker.io/library]}\n",
			want: []string{"4:19 images.prefix"}},
		{name: "digest required", src: app, opts: pinned, want: []string{"3:8 images.digest"}, msg: "must be pinned by digest"},
		{name: "digest present", src: strings.Replace(app, "echo:1", "echo:1"+digest, 1), opts: pinned},
		{name: "digest short", src: strings.Replace(app, "echo:1", "echo:1@sha256:"+strings.Repeat("ab", 16), 1), opts: pinned, want: []string{"3:8 images.digest"}},
		{name: "digest not required", src: app},
	})
}

func TestSecretPortAccessRules(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "secret path", src: app + "secrets: [ok, /etc/shadow]\n", want: []string{"5:15 secrets.name"}, msg: "never a path"},
		{name: "secret relative", src: app + "secrets: [../acme/key]\n", want: []string{"5:11 secrets.name"}},
		{name: "secret upper", src: app + "secrets: [DB_PASSWORD]\n", want: []string{"5:11 secrets.name"}},
		{name: "port zero", src: app + "ports: [{container: 0, host: 8080}]\n", want: []string{"5:21 ports.range"}},
		{name: "port too big", src: app + "ports: [{container: 70000, host: 8080}]\n", want: []string{"5:21 ports.range"}},
		{name: "host port low", src: app + "ports: [{container: 80, host: 80}]\n", want: []string{"5:31 ports.range"}, msg: "below 1024"},
		{name: "host port 1024 ok", src: app + "ports: [{container: 80, host: 1024}]\n"},
		{name: "host port missing", src: app + "ports: [{container: 80}]\n", want: []string{"5:9 structure.required"}, msg: "App needs `ports[0].host`"},
		{name: "service port", src: "kind: SharedService\nname: s\nimage: a/b:1\nprotocol: tcp\nport: 65536\noffers: []\nresources: {cpus: 1, memory: 1G, pids: 1}\n",
			want: []string{"5:7 ports.range"}},
		{name: "mode uses", src: app + "uses: [{service: logging, mode: rw}]\n", want: []string{"5:33 access.mode-value"}},
		{name: "mode offers", src: "kind: SharedService\nname: s\nimage: a/b:1\nprotocol: tcp\nport: 1\noffers: [write]\nresources: {cpus: 1, memory: 1G, pids: 1}\n",
			want: []string{"6:10 access.mode-value"}},
		{name: "mode grants", src: "kind: Tenant\nname: t\nblock: 10.0.0.0/24\nquota: {cpus: 1, memory: 1G, pids: 1, containers: 1}\ngrants: {logging: [write-only, admin]}\n",
			want: []string{"5:32 access.mode-value"}},
		{name: "mode shared volume bogus", src: "kind: SharedVolume\nname: m\noffers: [bogus]\n", want: []string{"3:10 access.mode-value"}},
		{name: "shared volume offers write", src: "kind: SharedVolume\nname: m\noffers: [read-only, read-write]\n", want: []string{"3:21 access.shared-volume-mode"}},
		{name: "shared volume mount rw", src: app + "volumes: [{shared: masterdata, path: /m, readOnly: false}]\n", want: []string{"5:52 access.shared-volume-mode"},
			msg: "remove `readOnly: false`"},
		{name: "own volume rw ok", src: app + "volumes: [{volume: cache, path: /m, readOnly: false}]\n"},
	})
}
