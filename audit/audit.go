// Package audit compares what is live with what moat would create, field
// by field, for the settings that matter to isolation: the CIS Docker
// Benchmark v1.6 section 5 checks, the networks' flags and attachments, and
// the host rules. Pure: it reads a snapshot whose containers were
// inspected (state.Container.Inspect) and the desired state.
//
// Two users: `moat audit` reports every finding, and reconcile recreates a
// managed container whose own settings fail (ContainerFindings), so that a
// container forged with moat's labels or changed with `docker update` does
// not survive the next apply.
package audit

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// Severity of a finding.
type Severity string

const (
	High   Severity = "high"   // a path out of the tenant's box
	Medium Severity = "medium" // a limit or safeguard missing
	Low    Severity = "low"    // differs from moat's settings, no direct risk
)

// Check is one comparison the audit makes.
type Check struct {
	ID       string
	Severity Severity
	// CIS is the CIS Docker Benchmark v1.6 item ("5.4"); "" for checks of
	// moat's own isolation model that the benchmark has no item for.
	CIS   string
	Title string
}

// Checks is every check, in report order. docs/AUDIT.md lists each one
// (TestDocListsEveryCheck).
var Checks = []Check{
	{"privileged", High, "5.4", "privileged mode"},
	{"capabilities", High, "5.3", "Linux capabilities (cap-drop ALL, only platform-granted additions)"},
	{"read-only-root", Medium, "5.12", "read-only root filesystem"},
	{"user", High, "4.1", "non-root user moat set"},
	{"memory", Medium, "5.10", "memory limit (and no extra swap)"},
	{"cpu", Medium, "5.11", "CPU limit"},
	{"pids", Medium, "5.28", "PIDs limit"},
	{"no-new-privileges", High, "5.25", "no-new-privileges"},
	{"seccomp", High, "5.21", "default seccomp profile kept (and no other security option)"},
	{"host-namespaces", High, "5.9, 5.15, 5.16, 5.20, 5.30", "no host network, PID, IPC, UTS or user namespace"},
	{"devices", High, "5.17", "no host devices"},
	{"mounts", High, "5.5, 5.19", "only the volumes and read-only secret binds moat set"},
	{"docker-socket", High, "5.31", "Docker socket not mounted"},
	{"ports", High, "5.7, 5.8, 5.13", "only the ports moat published, on the platform's address"},
	{"restart", Low, "5.14", "restart policy on-failure with moat's bound"},
	{"sysctls", Medium, "", "moat's kernel settings (forwarding and IPv6 off)"},
	{"networks", High, "", "attached only to the networks moat set (no cross-tenant connect)"},
	{"unmanaged-container", High, "", "no container moat does not manage on a tenant LAN"},
	{"network-flags", High, "", "LAN internal and ICC flags, bridge name as moat created them"},
	{"host-rules", High, "", "host protection rules in place"},
}

// Finding is one difference.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	CIS      string   `json:"cis,omitempty"`
	Kind     string   `json:"kind"` // container | network | hostrules
	Resource string   `json:"resource"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%-6s %-9s %s  %s: %s", f.Severity, f.Kind, f.Resource, f.Check, f.Message)
}

var checkByID = func() map[string]Check {
	m := map[string]Check{}
	for _, c := range Checks {
		m[c.ID] = c
	}
	return m
}()

func finding(check, kind, resource, format string, args ...any) Finding {
	c := checkByID[check]
	return Finding{Check: check, Severity: c.Severity, CIS: c.CIS, Kind: kind, Resource: resource, Message: fmt.Sprintf(format, args...)}
}

// ContainerFindings compares one managed container's live settings with its
// desired spec. Bind mount sources are compared only when knownBinds (a
// plan without the secret store does not know where the store is).
func ContainerFindings(want *state.ContainerSpec, have *state.Inspect, knownBinds bool) []Finding {
	var out []Finding
	add := func(check, format string, args ...any) {
		out = append(out, finding(check, "container", want.Name, format, args...))
	}
	if have.Privileged {
		add("privileged", "runs privileged")
	}
	if !sameSet(want.CapDrop, have.CapDrop) || !sameSet(want.CapAdd, have.CapAdd) {
		add("capabilities", "cap-drop %v cap-add %v, want cap-drop %v cap-add %v", have.CapDrop, have.CapAdd, want.CapDrop, want.CapAdd)
	}
	if have.ReadOnlyRootfs != want.ReadOnlyRootfs {
		add("read-only-root", "read-only root filesystem is %t, want %t", have.ReadOnlyRootfs, want.ReadOnlyRootfs)
	}
	if have.User != want.User {
		add("user", "runs as %q, want %q", have.User, want.User)
	}
	if have.Memory != want.Memory || (want.Memory > 0 && have.MemorySwap != want.Memory) {
		add("memory", "memory %d (with swap %d), want %d (no swap)", have.Memory, have.MemorySwap, want.Memory)
	}
	if have.NanoCPUs != want.NanoCPUs || have.CPUQuota != 0 {
		add("cpu", "CPU limit %d nano-CPUs (quota %d), want %d", have.NanoCPUs, have.CPUQuota, want.NanoCPUs)
	}
	if want.PidsLimit > 0 && have.PidsLimit != want.PidsLimit {
		add("pids", "pids limit %d, want %d", have.PidsLimit, want.PidsLimit)
	}
	if slices.Contains(want.SecurityOpt, "no-new-privileges:true") && !slices.ContainsFunc(have.SecurityOpt, isNoNewPrivs) {
		add("no-new-privileges", "no-new-privileges is not set")
	}
	for _, o := range have.SecurityOpt {
		if strings.HasPrefix(o, "seccomp") || strings.HasPrefix(o, "apparmor") || strings.HasPrefix(o, "label") {
			add("seccomp", "security option %q replaces a default profile", o)
		} else if !isNoNewPrivs(o) && !slices.Contains(want.SecurityOpt, o) {
			add("seccomp", "security option %q is not moat's", o)
		}
	}
	hostNS := map[string]string{"pid": have.PidMode, "ipc": have.IpcMode, "uts": have.UTSMode, "userns": have.UsernsMode}
	if have.NetworkMode == "host" || strings.HasPrefix(have.NetworkMode, "container:") {
		add("host-namespaces", "network mode %q", have.NetworkMode)
	}
	for _, ns := range slices.Sorted(maps.Keys(hostNS)) {
		if m := hostNS[ns]; m == "host" || strings.HasPrefix(m, "container:") {
			add("host-namespaces", "%s namespace %q", ns, m)
		}
	}
	if len(have.Devices) > 0 {
		add("devices", "host devices %v", have.Devices)
	}
	for _, m := range have.Mounts {
		if strings.HasSuffix(m.Source, "docker.sock") || strings.HasSuffix(m.Source, "containerd.sock") {
			add("docker-socket", "mounts the engine socket %s at %s", m.Source, m.Target)
		}
	}
	if d := mountDiff(want.Mounts, have.Mounts, knownBinds); d != "" {
		add("mounts", "%s", d)
	}
	if !slices.Equal(normPorts(want.Ports), normPorts(have.Ports)) {
		add("ports", "publishes %v, want %v", portList(have.Ports), portList(want.Ports))
	}
	if have.Restart != want.Restart {
		add("restart", "restart policy %s:%d, want %s:%d", have.Restart.Name, have.Restart.MaxRetries, want.Restart.Name, want.Restart.MaxRetries)
	}
	for _, k := range slices.Sorted(maps.Keys(want.Sysctls)) {
		if have.Sysctls[k] != want.Sysctls[k] {
			add("sysctls", "%s is %q, want %q", k, have.Sysctls[k], want.Sysctls[k])
		}
	}
	return out
}

func isNoNewPrivs(o string) bool { return o == "no-new-privileges:true" || o == "no-new-privileges" }

func sameSet(a, b []string) bool {
	norm := func(s []string) []string {
		out := make([]string, 0, len(s))
		for _, x := range s {
			out = append(out, strings.TrimPrefix(strings.ToUpper(x), "CAP_"))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// mountDiff compares mounts by target; tmpfs mounts are moat's /tmp and
// not listed by the engine as mounts.
func mountDiff(want, have []state.Mount, knownBinds bool) string {
	w := map[string]state.Mount{}
	for _, m := range want {
		w[m.Target] = m
	}
	var d []string
	seen := map[string]bool{}
	for _, m := range have {
		if m.Type == "tmpfs" {
			continue
		}
		seen[m.Target] = true
		x, ok := w[m.Target]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("extra %s mount %s at %s", m.Type, m.Source, m.Target))
		case x.Type != m.Type || x.ReadOnly != m.ReadOnly || (x.Source != m.Source && (x.Type == "volume" || knownBinds)):
			d = append(d, fmt.Sprintf("%s at %s is %s %s (read-only %t), want %s %s (read-only %t)", m.Type, m.Target, m.Type, m.Source, m.ReadOnly, x.Type, x.Source, x.ReadOnly))
		}
	}
	for _, m := range want {
		if !seen[m.Target] {
			d = append(d, "missing mount at "+m.Target)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; ")
}

func normPorts(ps []state.Port) []state.Port {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Protocol = cmp.Or(out[i].Protocol, "tcp")
	}
	slices.SortFunc(out, func(a, b state.Port) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return out
}

func portList(ps []state.Port) []string {
	out := []string{}
	for _, p := range normPorts(ps) {
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol))
	}
	return out
}

// Run audits a whole instance: every managed container against its spec,
// every container's attachments, every unmanaged container on a tenant
// LAN, every LAN's flags, and the host rules. Findings are sorted by
// resource, then check.
func Run(desired *state.Desired, obs *state.Observed, knownBinds bool) []Finding {
	inst := desired.Instance
	specs := map[string]*state.ContainerSpec{}
	for i := range desired.Containers {
		specs[desired.Containers[i].Name] = &desired.Containers[i]
	}
	lans := map[string]*state.NetworkSpec{}
	for i := range desired.Networks {
		lans[desired.Networks[i].Name] = &desired.Networks[i]
	}
	var out []Finding
	for i := range obs.Containers {
		c := &obs.Containers[i]
		if !state.Managed(c.Labels, inst) {
			var on []string
			for _, n := range c.Networks {
				if lans[n] != nil {
					on = append(on, n)
				}
			}
			if len(on) > 0 {
				f := finding("unmanaged-container", "container", c.Name, "not managed by moat, attached to tenant LAN(s) %s", strings.Join(on, ", "))
				if c.Inspect != nil && c.Inspect.Privileged {
					f.Message += ", and privileged"
				}
				out = append(out, f)
			}
			continue
		}
		want := specs[c.Name]
		if want == nil {
			continue // not in config: the plan removes it
		}
		var nets []string
		for _, ep := range want.Networks {
			nets = append(nets, ep.Network)
		}
		for _, n := range c.Networks {
			if !slices.Contains(nets, n) {
				out = append(out, finding("networks", "container", c.Name, "attached to %s, which moat did not attach it to", n))
			}
		}
		if c.Inspect != nil {
			out = append(out, ContainerFindings(want, c.Inspect, knownBinds)...)
		}
	}
	for i := range obs.Networks {
		n := &obs.Networks[i]
		want := lans[n.Name]
		if want == nil || !state.Managed(n.Labels, inst) {
			continue
		}
		if n.Internal != want.Internal {
			out = append(out, finding("network-flags", "network", n.Name, "internal is %t, want %t", n.Internal, want.Internal))
		}
		if icc := want.Options["com.docker.network.bridge.enable_icc"]; icc != "" && n.ICC != icc {
			out = append(out, finding("network-flags", "network", n.Name, "enable_icc is %q, want %q", n.ICC, icc))
		}
		if b := want.Options[state.OptionBridgeName]; b != "" && n.Bridge != b {
			out = append(out, finding("network-flags", "network", n.Name, "bridge is %q, want %q (host rules match it)", n.Bridge, b))
		}
	}
	if fw := obs.HostFirewall; fw != nil {
		for _, h := range desired.HostRules {
			rs, ok := fw.Rules[h.Network]
			switch {
			case fw.Error != "":
				out = append(out, finding("host-rules", "hostrules", h.Network, "cannot read the host firewall: %s", fw.Error))
			case !ok:
				out = append(out, finding("host-rules", "hostrules", h.Network, "no host protection rules"))
			case rs.Count != len(firewall.Rules(inst, h)) || !slices.Equal(rs.Hashes, []string{h.Hash}):
				out = append(out, finding("host-rules", "hostrules", h.Network, "rules differ from moat's (%d found)", rs.Count))
			case !fw.Jumps:
				out = append(out, finding("host-rules", "hostrules", h.Network, "the jumps into moat's chains are missing"))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Check, b.Check), cmp.Compare(a.Message, b.Message))
	})
	return out
}
