package docker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/moat-platform/moat/compile"
	"github.com/moat-platform/moat/state"
)

func specForTest() state.ContainerSpec {
	return compile.Stamped(state.ContainerSpec{
		Name: "demo--acme--web--1", Image: "localhost/echo", Cmd: []string{"serve"}, Env: []string{"B=2", "A=1"},
		User:     "1000:1001",
		Labels:   map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "demo"},
		Networks: []state.Endpoint{{Network: "demo--acme--lan0", Aliases: []string{"web"}}},
		Mounts: []state.Mount{
			{Type: "volume", Source: "demo--acme--data", Target: "/data"},
			{Type: state.MountSecret, Source: "demo--acme--token--0123456789ab", Target: "/run/secrets/token", ReadOnly: true},
		},
		Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=64m", "/run": "size=1k,mode=700"},
		ReadOnlyRootfs: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"},
		Memory: 1 << 26, NanoCPUs: 5e8, PidsLimit: 64,
		Restart: state.Restart{Name: "on-failure", MaxRetries: 3}, StopTimeout: 7,
		Swarm: &state.SwarmSpec{UpdateOrder: "start-first", Placement: []string{"node.labels.zone==a"}},
	})
}

// The mapping of a container spec onto a service, field by field.
func TestServiceSpec(t *testing.T) {
	spec := specForTest()
	ids := map[string]string{"demo--acme--token--0123456789ab": "sec1"}
	svc, err := serviceSpec(spec, ids, apiCaps{})
	if err != nil {
		t.Fatal(err)
	}
	cs := svc.TaskTemplate.ContainerSpec
	if cs.Image != "localhost/echo:latest" || !slices.Equal(cs.Args, []string{"serve"}) || cs.Command != nil || cs.User != "1000:1001" || !cs.ReadOnly {
		t.Errorf("container spec %+v", cs)
	}
	if cs.Privileges != nil {
		t.Errorf("no-new-privileges set on an API that cannot: %+v", cs.Privileges)
	}
	if svc2, _ := serviceSpec(spec, ids, apiCaps{noNewPrivileges: true}); svc2.TaskTemplate.ContainerSpec.Privileges == nil || !svc2.TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges {
		t.Errorf("no-new-privileges not set on API >= 1.44")
	}
	new, _ := serviceSpec(spec, ids, capsOf("1.47"))
	if m := new.TaskTemplate.ContainerSpec.Mounts[2]; m.Target != "/tmp" || !slices.EqualFunc(m.TmpfsOptions.Options, [][]string{{"noexec"}, {"nosuid"}}, slices.Equal) {
		t.Errorf("API 1.47 tmpfs %+v, want noexec and nosuid", m.TmpfsOptions)
	}
	if cs.Mounts[2].TmpfsOptions.Options != nil {
		t.Errorf("API 1.41 tmpfs got flags it would drop: %+v", cs.Mounts[2].TmpfsOptions)
	}
	if *cs.StopGracePeriod != 7*time.Second {
		t.Errorf("stop grace %s", *cs.StopGracePeriod)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeVolume, Source: "demo--acme--data", Target: "/data", VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
		{Type: mount.TypeTmpfs, Target: "/run", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1024, Mode: 0o700}},
		{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20}},
	}
	if len(cs.Mounts) != len(wantMounts) {
		t.Fatalf("mounts %+v", cs.Mounts)
	}
	for i, m := range cs.Mounts {
		w := wantMounts[i]
		if m.Type != w.Type || m.Source != w.Source || m.Target != w.Target ||
			(w.TmpfsOptions != nil && (m.TmpfsOptions.SizeBytes != w.TmpfsOptions.SizeBytes || m.TmpfsOptions.Mode != w.TmpfsOptions.Mode)) || (w.VolumeOptions != nil && !m.VolumeOptions.NoCopy) {
			t.Errorf("mount %d = %+v, want %+v", i, m, w)
		}
	}
	if len(cs.Secrets) != 1 || cs.Secrets[0].SecretID != "sec1" || *cs.Secrets[0].File != (swarm.SecretReferenceFileTarget{Name: "/run/secrets/token", UID: "1000", GID: "1001", Mode: 0o400}) {
		t.Errorf("secrets %+v", cs.Secrets[0])
	}
	l := svc.TaskTemplate.Resources.Limits
	if l.MemoryBytes != 1<<26 || l.NanoCPUs != 5e8 || l.Pids != 64 {
		t.Errorf("limits %+v", l)
	}
	if rp := svc.TaskTemplate.RestartPolicy; rp.Condition != swarm.RestartPolicyConditionOnFailure || *rp.MaxAttempts != 3 {
		t.Errorf("restart %+v", rp)
	}
	if *svc.Mode.Replicated.Replicas != 1 || svc.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || svc.UpdateConfig.Order != "start-first" ||
		svc.UpdateConfig.FailureAction != swarm.UpdateFailureActionRollback || !slices.Equal(svc.TaskTemplate.Placement.Constraints, []string{"node.labels.zone==a"}) {
		t.Errorf("service settings %+v", svc)
	}
	if n := svc.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "demo--acme--lan0" || !slices.Equal(n[0].Aliases, []string{"web"}) {
		t.Errorf("networks %+v", n)
	}
	if svc.Labels[LabelServiceHash] != projectionLabel(projection(&svc)) {
		t.Errorf("service hash label %q is not the projection's", svc.Labels[LabelServiceHash])
	}
	if _, ok := cs.Labels[LabelServiceHash]; ok {
		t.Errorf("the container labels carry the service hash")
	}

	if _, err := serviceSpec(spec, nil, apiCaps{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing secret: err = %v", err)
	}
	spec.Ports = []state.Port{{HostPort: 80, ContainerPort: 80}}
	if _, err := serviceSpec(spec, ids, apiCaps{}); err == nil || !strings.Contains(err.Error(), "swarm.publish") {
		t.Errorf("published port: err = %v", err)
	}
}

// Each hand edit of a live spec is named by its part, and only that
// part; networks are not an edit.
func TestEditedParts(t *testing.T) {
	spec := specForTest()
	ids := map[string]string{"demo--acme--token--0123456789ab": "sec1"}
	base, err := serviceSpec(spec, ids, apiCaps{})
	if err != nil {
		t.Fatal(err)
	}
	label := base.Labels[LabelServiceHash]
	cases := []struct {
		part string
		edit func(*swarm.ServiceSpec)
	}{
		{"", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Networks = append(s.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: "x"})
		}},
		{"", func(s *swarm.ServiceSpec) { s.TaskTemplate.ForceUpdate++ }},
		{"", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Runtime = swarm.RuntimeContainer
			s.TaskTemplate.ContainerSpec.Isolation = "default"
		}},
		{"security", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.CapabilityAdd = []string{"NET_ADMIN"} }},
		{"security", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.ReadOnly = false }},
		{"limits", func(s *swarm.ServiceSpec) { s.TaskTemplate.Resources.Limits = nil }},
		{"env", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Env = append(s.TaskTemplate.ContainerSpec.Env, "X=1")
		}},
		{"image", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "other:1" }},
		{"ports", func(s *swarm.ServiceSpec) {
			s.EndpointSpec.Ports = []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}}
		}},
		{"mounts", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = append(s.TaskTemplate.ContainerSpec.Mounts, mount.Mount{Type: mount.TypeBind, Source: "/", Target: "/host"})
		}},
		{"secrets", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Secrets = nil }},
		{"tmpfs", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Mounts[1].TmpfsOptions.SizeBytes = 0 }},
		{"swarm", func(s *swarm.ServiceSpec) { s.TaskTemplate.Placement = nil }},
		{"restart", func(s *swarm.ServiceSpec) { s.TaskTemplate.RestartPolicy.MaxAttempts = nil }},
		{"labels", func(s *swarm.ServiceSpec) { s.Labels["x"] = "y" }},
		{"user", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.User = "0" }},
	}
	for _, c := range cases {
		live, _ := serviceSpec(spec, ids, apiCaps{})
		c.edit(&live)
		got := editedParts(label, projection(&live))
		var want []string
		if c.part != "" {
			want = []string{c.part}
		}
		if !slices.Equal(got, want) {
			t.Errorf("edit of %q: edited parts %v", c.part, got)
		}
	}

	marked := markEdited(spec.Labels, []string{"security", "ports"})
	if !strings.HasPrefix(marked[state.LabelSpecHash], editedHash) || spec.Labels[state.LabelSpecHash] == marked[state.LabelSpecHash] {
		t.Errorf("marked hash %q", marked[state.LabelSpecHash])
	}
	if got := compile.ChangedParts(spec.Labels[state.LabelSpecParts], marked[state.LabelSpecParts]); !slices.Equal(got, []string{"ports", "security"}) {
		t.Errorf("changed parts of the marked labels: %v", got)
	}
	if spec.Labels[state.LabelSpecHash] == marked[state.LabelSpecHash] {
		t.Errorf("markEdited changed its input")
	}
}

func TestServiceHelpers(t *testing.T) {
	for _, c := range []struct{ user, uid, gid string }{
		{"1000", "1000", "1000"}, {"1000:50", "1000", "50"}, {"app", "0", "0"}, {"", "0", "0"}, {"1:grp", "1", "1"},
	} {
		if u, g := fileOwner(c.user); u != c.uid || g != c.gid {
			t.Errorf("fileOwner(%q) = %s:%s, want %s:%s", c.user, u, g, c.uid, c.gid)
		}
	}
	for in, want := range map[string]int64{"10": 10, "2k": 2048, "3m": 3 << 20, "1g": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := parseSize("lots"); err == nil {
		t.Errorf("parseSize(lots) accepted")
	}
	for in, want := range map[string]string{"alpine": "alpine:latest", "localhost:5000/a": "localhost:5000/a:latest", "a:1": "a:1", "a@sha256:00": "a@sha256:00"} {
		if got := normalizeImage(in); got != want {
			t.Errorf("normalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}
