package compile

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/state"
)

// fixedSpec is a literal spec whose hash is pinned below. Do not change it:
// its only job is to catch a change in how specs are hashed.
func fixedSpec() state.ContainerSpec {
	return state.ContainerSpec{
		Name:  "demo.acme.api.1",
		Image: "localhost/moat-examples/echo:1",
		Cmd:   []string{"/echo", "-listen", ":8080"},
		Env:   []string{"A=1", "MOAT_APP=api", "MOAT_REPLICA=1", "MOAT_TENANT=acme", "Z=2"},
		User:  "65534:65534",
		Labels: map[string]string{
			state.LabelManagedBy: "moat", state.LabelInstance: "demo", state.LabelTenant: "acme",
			state.LabelKind: "app", state.LabelApp: "api", state.LabelReplica: "1",
		},
		Networks: []state.Endpoint{{Network: "demo.acme.backend", Aliases: []string{"api"}}},
		Mounts: []state.Mount{
			{Type: "volume", Source: "demo.acme.cache", Target: "/cache"},
			{Type: "volume", Source: "demo.shared.masterdata", Target: "/master", ReadOnly: true},
			{Type: "bind", Source: "/var/lib/moat/secrets/acme/db-password", Target: "/run/secrets/db-password", ReadOnly: true},
		},
		Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,nodev,size=16777216"},
		Ports:          []state.Port{{HostIP: "127.0.0.1", HostPort: 9443, ContainerPort: 8443, Protocol: "tcp"}, {HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
		ReadOnlyRootfs: true,
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"CHOWN", "NET_BIND_SERVICE"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Sysctls:        map[string]string{"net.ipv4.ip_forward": "0"},
		Memory:         64 << 20,
		NanoCPUs:       250_000_000,
		PidsLimit:      64,
		Restart:        state.Restart{Name: "on-failure", MaxRetries: 5},
		StopTimeout:    10,
		Healthcheck:    &state.Healthcheck{Test: []string{"CMD", "/echo", "-check"}, Interval: 10e9, Timeout: 3e9, Retries: 3},
		SecretDigests:  map[string]string{"db-password": "hmac-sha256:0123456789abcdef"},
	}
}

// TestSpecHashPinned pins the hash of a fixed spec. If this fails, an
// upgrade of moat would recreate every container it manages: either undo
// the change to the hashing, or bump HashVersion on purpose and update the
// literals (and say so in the release notes).
func TestSpecHashPinned(t *testing.T) {
	const (
		wantHash  = "786ed99ea1a0aa65"
		wantParts = "cmd=8bf94b4f,env=1f121055,healthcheck=9e6209c6,image=d3d0269c,labels=cb8afa38,limits=7e791b43," +
			"mounts=bba1b608,ports=329e1ed2,restart=742092e9,secrets=5768de11,security=3addb85c,tmpfs=e6742242,user=9be30b9d"
	)
	s := fixedSpec()
	hash, parts := SpecHash(&s)
	if HashVersion != "moat-spec-v2" || hash != wantHash || parts != wantParts {
		t.Errorf("spec hash changed:\nversion %s\nhash  %s\nparts %s", HashVersion, hash, parts)
	}
}

// TestSpecHashIgnoresOrder: fields that are sets hash the same in any
// order, and maps the same however they were built.
func TestSpecHashIgnoresOrder(t *testing.T) {
	a := fixedSpec()
	b := fixedSpec()
	slices.Reverse(b.Env)
	slices.Reverse(b.Mounts)
	slices.Reverse(b.Ports)
	slices.Reverse(b.CapAdd)
	b.Labels = map[string]string{}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	for _, k := range keys {
		b.Labels[k] = a.Labels[k]
	}
	ha, pa := SpecHash(&a)
	hb, pb := SpecHash(&b)
	if ha != hb || pa != pb {
		t.Errorf("order changed the hash: %s %s vs %s %s", ha, pa, hb, pb)
	}
	// Empty and nil are the same spec.
	c, d := fixedSpec(), fixedSpec()
	c.CapAdd, d.CapAdd = nil, []string{}
	hc, _ := SpecHash(&c)
	hd, _ := SpecHash(&d)
	if hc != hd {
		t.Error("nil and empty CapAdd hash differently")
	}
}

// TestSpecHashParts: each change moves the whole hash and exactly the part
// it belongs to; changes outside the hash move nothing.
func TestSpecHashParts(t *testing.T) {
	tests := []struct {
		part   string // "" when the hash must not change
		mutate func(*state.ContainerSpec)
	}{
		{"image", func(s *state.ContainerSpec) { s.Image = "localhost/moat-examples/echo:2" }},
		{"cmd", func(s *state.ContainerSpec) { s.Cmd = []string{"/echo", ":8080", "-listen"} }},
		{"cmd", func(s *state.ContainerSpec) { s.Cmd = nil }},
		{"env", func(s *state.ContainerSpec) { s.Env[0] = "A=3" }},
		{"user", func(s *state.ContainerSpec) { s.User = "1000:1000" }},
		{"mounts", func(s *state.ContainerSpec) { s.Mounts[0].ReadOnly = true }},
		{"mounts", func(s *state.ContainerSpec) { s.Mounts = s.Mounts[1:] }},
		{"tmpfs", func(s *state.ContainerSpec) { s.Tmpfs["/tmp"] = "rw,noexec,nosuid,nodev,size=1" }},
		{"ports", func(s *state.ContainerSpec) { s.Ports[0].HostIP = "0.0.0.0" }},
		{"limits", func(s *state.ContainerSpec) { s.Memory *= 2 }},
		{"limits", func(s *state.ContainerSpec) { s.NanoCPUs++ }},
		{"limits", func(s *state.ContainerSpec) { s.PidsLimit++ }},
		{"security", func(s *state.ContainerSpec) { s.ReadOnlyRootfs = false }},
		{"security", func(s *state.ContainerSpec) { s.CapAdd = nil }},
		{"security", func(s *state.ContainerSpec) { s.CapDrop = nil }},
		{"security", func(s *state.ContainerSpec) { s.SecurityOpt = nil }},
		{"restart", func(s *state.ContainerSpec) { s.Restart.MaxRetries = 6 }},
		{"restart", func(s *state.ContainerSpec) { s.StopTimeout = 30 }},
		{"healthcheck", func(s *state.ContainerSpec) { s.Healthcheck.Retries = 4 }},
		{"healthcheck", func(s *state.ContainerSpec) { s.Healthcheck = nil }},
		{"secrets", func(s *state.ContainerSpec) { s.SecretDigests["db-password"] = "hmac-sha256:rotated" }},
		{"labels", func(s *state.ContainerSpec) { s.Labels[state.LabelReplica] = "2" }},
		{"swarm", func(s *state.ContainerSpec) { s.Swarm = &state.SwarmSpec{UpdateOrder: "start-first"} }},
		// Not in the hash: identity, in-place attachments, the hash labels.
		{"", func(s *state.ContainerSpec) { s.Name = "demo.acme.api.2" }},
		{"", func(s *state.ContainerSpec) { s.Networks = nil }},
		{"", func(s *state.ContainerSpec) { s.Networks[0].Aliases = []string{"other"} }},
		{"", func(s *state.ContainerSpec) {
			s.Labels[state.LabelSpecHash] = "x"
			s.Labels[state.LabelSpecParts] = "y"
		}},
	}
	base := fixedSpec()
	baseHash, baseParts := SpecHash(&base)
	seen := map[string]bool{}
	for _, tt := range tests {
		s := fixedSpec()
		tt.mutate(&s)
		hash, parts := SpecHash(&s)
		changed := ChangedParts(baseParts, parts)
		if tt.part == "" {
			if hash != baseHash || len(changed) != 0 {
				t.Errorf("a change outside the hash changed it (parts %v)", changed)
			}
			continue
		}
		seen[tt.part] = true
		if hash == baseHash || !slices.Equal(changed, []string{tt.part}) {
			t.Errorf("changing %s: hash changed %v, parts changed %v", tt.part, hash != baseHash, changed)
		}
	}
	for _, p := range Parts {
		if !seen[p] {
			t.Errorf("part %s has no test case", p)
		}
	}
}

// TestHashCoversEveryField fails when a field is added to ContainerSpec
// without a decision: put it into a part (encodePart, and bump
// HashVersion) or list it as excluded here with the reason in Parts' doc.
func TestHashCoversEveryField(t *testing.T) {
	decided := map[string]string{
		"Name": "", "Networks": "", // excluded, see Parts
		"Image": "image", "Cmd": "cmd", "Env": "env", "User": "user", "Labels": "labels",
		"Mounts": "mounts", "Tmpfs": "tmpfs", "Ports": "ports",
		"ReadOnlyRootfs": "security", "CapDrop": "security", "CapAdd": "security", "SecurityOpt": "security", "Sysctls": "security",
		"Memory": "limits", "NanoCPUs": "limits", "PidsLimit": "limits",
		"Restart": "restart", "StopTimeout": "restart",
		"Healthcheck": "healthcheck", "SecretDigests": "secrets",
		"Swarm": "swarm",
	}
	typ := reflect.TypeFor[state.ContainerSpec]()
	for i := range typ.NumField() {
		f := typ.Field(i).Name
		part, ok := decided[f]
		if !ok {
			t.Errorf("ContainerSpec.%s: not covered by the spec hash and not excluded", f)
			continue
		}
		if part != "" && !slices.Contains(Parts, part) {
			t.Errorf("ContainerSpec.%s: part %q is not in Parts", f, part)
		}
	}
	if !slices.IsSorted(Parts) {
		t.Error("Parts is not sorted")
	}
}

func TestChangedParts(t *testing.T) {
	tests := []struct {
		old, new string
		want     []string
	}{
		{"a=1,b=2", "a=1,b=2", nil},
		{"a=1,b=2", "a=1,b=3", []string{"b"}},
		{"a=1,b=2", "a=9,c=2", []string{"a", "b", "c"}},
		{"", "a=1", nil},
		{"garbage", "a=1", nil},
	}
	for _, tt := range tests {
		if got := ChangedParts(tt.old, tt.new); !slices.Equal(got, tt.want) {
			t.Errorf("ChangedParts(%q, %q) = %v, want %v", tt.old, tt.new, got, tt.want)
		}
	}
}

// TestPartsLabelFormat: every part in order, the swarm part only when the
// spec has one (single-host specs keep their pre-Swarm labels).
func TestPartsLabelFormat(t *testing.T) {
	single := slices.DeleteFunc(slices.Clone(Parts), func(p string) bool { return p == partSwarm })
	for _, swarm := range []bool{false, true} {
		s := fixedSpec()
		want := single
		if swarm {
			s.Swarm = &state.SwarmSpec{Placement: []string{"node.labels.tenant==acme"}, UpdateOrder: "start-first"}
			want = Parts
		}
		_, parts := SpecHash(&s)
		kvs := strings.Split(parts, ",")
		if len(kvs) != len(want) {
			t.Fatalf("parts label %q has %d entries, want %d", parts, len(kvs), len(want))
		}
		for i, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			if k != want[i] || len(v) != partLen {
				t.Errorf("entry %q", kv)
			}
		}
	}
}
