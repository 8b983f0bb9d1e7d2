package audit

import (
	"os"
	"strings"
	"testing"

	"github.com/moat-platform/moat/state"
)

func TestDocListsEveryCheck(t *testing.T) {
	b, err := os.ReadFile("../docs/AUDIT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range Checks {
		row := "| `" + c.ID + "` | " + string(c.Severity) + " | "
		if !strings.Contains(doc, row) {
			t.Errorf("docs/AUDIT.md has no row starting %q", row)
		}
		if c.CIS != "" && !strings.Contains(doc, row+c.CIS) {
			t.Errorf("docs/AUDIT.md: check %s is not listed next to CIS %s", c.ID, c.CIS)
		}
	}
}

func spec() *state.ContainerSpec {
	return &state.ContainerSpec{
		Name: "p.acme.web.1", User: "10000:10000", ReadOnlyRootfs: true, CapDrop: []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true"}, Memory: 64 << 20, NanoCPUs: 250000000, PidsLimit: 64,
		Restart: state.Restart{Name: "on-failure", MaxRetries: 5}, Sysctls: map[string]string{"net.ipv4.ip_forward": "0"},
		Mounts: []state.Mount{{Type: "volume", Source: "p.acme.data", Target: "/data"}},
	}
}

func live(s *state.ContainerSpec) *state.Inspect {
	return &state.Inspect{User: s.User, ReadOnlyRootfs: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"},
		Memory: s.Memory, MemorySwap: s.Memory, NanoCPUs: s.NanoCPUs, PidsLimit: s.PidsLimit, Restart: s.Restart,
		Sysctls: map[string]string{"net.ipv4.ip_forward": "0"}, NetworkMode: "p.acme.lan",
		Mounts: []state.Mount{{Type: "volume", Source: "p.acme.data", Target: "/data"}}}
}

// TestEachCheckFires: one tampering per check, and a clean container
// passes (so a check that always fires or never fires fails here).
func TestEachCheckFires(t *testing.T) {
	if fs := ContainerFindings(spec(), live(spec()), true); len(fs) != 0 {
		t.Fatalf("clean container: %v", fs)
	}
	tamper := map[string]func(*state.Inspect){
		"privileged":        func(i *state.Inspect) { i.Privileged = true },
		"capabilities":      func(i *state.Inspect) { i.CapAdd = []string{"SYS_ADMIN"} },
		"read-only-root":    func(i *state.Inspect) { i.ReadOnlyRootfs = false },
		"user":              func(i *state.Inspect) { i.User = "0:0" },
		"memory":            func(i *state.Inspect) { i.Memory, i.MemorySwap = 1<<30, 1<<30 },
		"cpu":               func(i *state.Inspect) { i.NanoCPUs = 0 },
		"pids":              func(i *state.Inspect) { i.PidsLimit = 0 },
		"no-new-privileges": func(i *state.Inspect) { i.SecurityOpt = nil },
		"seccomp":           func(i *state.Inspect) { i.SecurityOpt = append(i.SecurityOpt, "seccomp=unconfined") },
		"host-namespaces":   func(i *state.Inspect) { i.PidMode = "host" },
		"devices":           func(i *state.Inspect) { i.Devices = []string{"/dev/kmsg"} },
		"mounts": func(i *state.Inspect) {
			i.Mounts = append(i.Mounts, state.Mount{Type: "bind", Source: "/etc", Target: "/host"})
		},
		"docker-socket": func(i *state.Inspect) {
			i.Mounts = append(i.Mounts, state.Mount{Type: "bind", Source: "/var/run/docker.sock", Target: "/s"})
		},
		"ports":   func(i *state.Inspect) { i.Ports = []state.Port{{HostIP: "0.0.0.0", HostPort: 2222, ContainerPort: 22}} },
		"restart": func(i *state.Inspect) { i.Restart = state.Restart{Name: "always"} },
		"sysctls": func(i *state.Inspect) { i.Sysctls = nil },
	}
	for check, f := range tamper {
		in := live(spec())
		f(in)
		fs := ContainerFindings(spec(), in, true)
		found := false
		for _, x := range fs {
			found = found || x.Check == check
		}
		if !found {
			t.Errorf("%s: tampering not found (findings %v)", check, fs)
		}
	}
}

func TestRunSeesAttachmentsUnmanagedAndNetworks(t *testing.T) {
	s := spec()
	s.Networks = []state.Endpoint{{Network: "p.acme.lan"}}
	s.Labels = map[string]string{state.LabelManagedBy: "moat", state.LabelInstance: "p"}
	d := &state.Desired{Instance: "p", Containers: []state.ContainerSpec{*s},
		Networks: []state.NetworkSpec{{Name: "p.acme.lan", Internal: true, Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"}},
			{Name: "p.globex.lan", Internal: true}},
		HostRules: []state.HostRulesSpec{{Network: "p.acme.lan", Hash: "h"}}}
	managed := map[string]string{state.LabelManagedBy: "moat", state.LabelInstance: "p"}
	o := &state.Observed{
		Networks: []state.Network{{Name: "p.acme.lan", Internal: false, ICC: "true", Labels: managed}},
		Containers: []state.Container{
			{Name: s.Name, Labels: s.Labels, Networks: []string{"p.acme.lan", "p.globex.lan"}, Inspect: live(s)},
			{Name: "intruder", Networks: []string{"p.acme.lan"}, Inspect: &state.Inspect{Privileged: true}},
		},
		HostFirewall: &state.HostFirewall{Jumps: true},
	}
	got := map[string]bool{}
	for _, f := range Run(d, o, true) {
		got[f.Check] = true
	}
	for _, want := range []string{"networks", "unmanaged-container", "network-flags", "host-rules"} {
		if !got[want] {
			t.Errorf("no %s finding (got %v)", want, got)
		}
	}
}
