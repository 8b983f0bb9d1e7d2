package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/versions"

	"github.com/moat-platform/moat/state"
)

// LabelServiceHash is put on every service moat creates: the projection
// hash of the ServiceSpec moat sent, one short hash per part of moat's
// spec ("cmd=1a2b3c4d,env=..."), networks left out (they are compared
// directly). Observe hashes the live spec the same way: a part whose hash
// differs was changed by hand (docker service update), and the plan says
// so ("spec changed: security").
const LabelServiceHash = "org.moat.service-hash"

// editedPart is the value Observe gives a hand-edited part in the
// spec-parts label, and editedHash the prefix of the spec-hash label: no
// hash compile computes can equal them.
const (
	editedPart = "edited"
	editedHash = "edited-by-hand:"
)

// Service tuning that is moat's, not the config's.
const (
	// restartDelay is Swarm's wait before it restarts a failed task
	// (its default is 5s; Docker on one host starts at 100ms).
	restartDelay = time.Second
	// updateMonitor is how long Swarm watches a new task before it counts
	// the update of that task as a success (and fails or rolls back
	// otherwise): long enough to see an app that dies on start.
	updateMonitor = 3 * time.Second
	// maxSecretSize is Swarm's limit on a secret's value.
	maxSecretSize = 500 * 1024
	// secretMode is the file mode of a mounted secret: read by its owner
	// (the container's user) only.
	secretMode os.FileMode = 0o400
)

// serviceSpec maps a container spec onto a Swarm service: one service per
// compiled container (one replica), endpoint mode dnsrr (no virtual IP:
// moat's LANs are small, and aliases resolve to the task as on one host).
// secretIDs resolves the names of the spec's secret mounts; caps says what
// the engine's API can set on a service.
func serviceSpec(spec state.ContainerSpec, secretIDs map[string]string, caps apiCaps) (swarm.ServiceSpec, error) {
	if len(spec.Ports) > 0 {
		return swarm.ServiceSpec{}, fmt.Errorf("publishes host ports: a Swarm service cannot bind one host address (rule swarm.publish)")
	}
	cs := &swarm.ContainerSpec{
		Image:          normalizeImage(spec.Image),
		Args:           spec.Cmd, // moat's Cmd is the image's CMD replaced: Docker's Args on a service
		Env:            spec.Env,
		User:           spec.User,
		Labels:         spec.Labels,
		ReadOnly:       spec.ReadOnlyRootfs,
		CapabilityDrop: spec.CapDrop,
		CapabilityAdd:  spec.CapAdd,
		Sysctls:        spec.Sysctls,
	}
	if caps.noNewPrivileges && slices.ContainsFunc(spec.SecurityOpt, isNoNewPrivileges) {
		cs.Privileges = &swarm.Privileges{NoNewPrivileges: true}
	}
	if spec.StopTimeout > 0 {
		d := time.Duration(spec.StopTimeout) * time.Second
		cs.StopGracePeriod = &d
	}
	if h := spec.Healthcheck; h != nil {
		cs.Healthcheck = &container.HealthConfig{
			Test:     h.Test,
			Interval: time.Duration(h.Interval),
			Timeout:  time.Duration(h.Timeout),
			Retries:  h.Retries,
		}
	}
	uid, gid := fileOwner(spec.User)
	for _, m := range spec.Mounts {
		switch m.Type {
		case "volume":
			cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly,
				// As on one host: never seed a volume from the image.
				VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
		case "bind":
			cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case state.MountSecret:
			id := secretIDs[m.Source]
			if id == "" {
				return swarm.ServiceSpec{}, fmt.Errorf("mount %s: secret %s does not exist on the Swarm", m.Target, m.Source)
			}
			cs.Secrets = append(cs.Secrets, &swarm.SecretReference{
				SecretID: id, SecretName: m.Source,
				File: &swarm.SecretReferenceFileTarget{Name: m.Target, UID: uid, GID: gid, Mode: secretMode},
			})
		default:
			return swarm.ServiceSpec{}, fmt.Errorf("mount %s: unsupported type %q (want volume, bind or secret)", m.Target, m.Type)
		}
	}
	for _, target := range slices.Sorted(maps.Keys(spec.Tmpfs)) {
		opts, err := tmpfsOptions(spec.Tmpfs[target], caps.tmpfsFlags)
		if err != nil {
			return swarm.ServiceSpec{}, fmt.Errorf("tmpfs %s: %w", target, err)
		}
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: target, TmpfsOptions: opts})
	}

	replicas := uint64(1)
	order := swarm.UpdateOrderStopFirst
	var placement *swarm.Placement
	if sw := spec.Swarm; sw != nil {
		if sw.UpdateOrder != "" {
			order = sw.UpdateOrder
		}
		if len(sw.Placement) > 0 {
			placement = &swarm.Placement{Constraints: sw.Placement}
		}
	}
	labels := make(map[string]string, len(spec.Labels)+1)
	maps.Copy(labels, spec.Labels)
	out := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				NanoCPUs: spec.NanoCPUs, MemoryBytes: spec.Memory, Pids: spec.PidsLimit,
			}},
			RestartPolicy: restartPolicy(spec.Restart),
			Placement:     placement,
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: order, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: updateMonitor},
		RollbackConfig: &swarm.UpdateConfig{Parallelism: 1, Order: order, FailureAction: swarm.UpdateFailureActionPause,
			Monitor: updateMonitor},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	for _, ep := range spec.Networks {
		out.TaskTemplate.Networks = append(out.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: ep.Network, Aliases: ep.Aliases})
	}
	labels[LabelServiceHash] = projectionLabel(projection(&out))
	return out, nil
}

func isNoNewPrivileges(o string) bool {
	return o == "no-new-privileges:true" || o == "no-new-privileges"
}

// restartPolicy maps Docker's restart policy names onto Swarm's
// conditions; moat bounds on-failure attempts.
func restartPolicy(r state.Restart) *swarm.RestartPolicy {
	d := restartDelay
	p := &swarm.RestartPolicy{Delay: &d}
	switch r.Name {
	case "no":
		p.Condition = swarm.RestartPolicyConditionNone
	case "always", "unless-stopped":
		p.Condition = swarm.RestartPolicyConditionAny
	default:
		p.Condition = swarm.RestartPolicyConditionOnFailure
		if r.MaxRetries > 0 {
			n := uint64(r.MaxRetries)
			p.MaxAttempts = &n
		}
	}
	return p
}

// fileOwner is the uid and gid a secret file gets: the container's user
// when it is numeric ("1000" or "1000:1000"), else root (the image's user
// names cannot be resolved here).
func fileOwner(user string) (uid, gid string) {
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid = "0", "0"
	if _, err := strconv.ParseUint(u, 10, 32); err == nil {
		uid, gid = u, u
	}
	if hasGroup {
		if _, err := strconv.ParseUint(g, 10, 32); err == nil {
			gid = g
		}
	}
	return uid, gid
}

// apiCaps are the service settings that depend on the engine's API
// version. An older engine ignores a field it does not know (and would
// return the spec without it, which would look like a hand edit), so
// moat sends only what the engine keeps.
type apiCaps struct {
	// noNewPrivileges: Privileges.NoNewPrivileges (API 1.44).
	noNewPrivileges bool
	// tmpfsFlags: TmpfsOptions.Options, for noexec, nosuid, nodev (API
	// 1.46).
	tmpfsFlags bool
}

// First API versions of the apiCaps.
const (
	noNewPrivilegesAPI = "1.44"
	tmpfsFlagsAPI      = "1.46"
)

func capsOf(api string) apiCaps {
	return apiCaps{
		noNewPrivileges: versions.GreaterThanOrEqualTo(api, noNewPrivilegesAPI),
		tmpfsFlags:      versions.GreaterThanOrEqualTo(api, tmpfsFlagsAPI),
	}
}

// tmpfsOptions reads moat's tmpfs option string ("rw,noexec,nosuid,
// size=64m,mode=1777"). Before API 1.46 a service tmpfs has only a size
// and a mode: noexec, nosuid and nodev are then dropped (the read-only
// root and the dropped capabilities still hold), and docs/SWARM.md says
// so; with flags they are sent.
func tmpfsOptions(s string, flags bool) (*mount.TmpfsOptions, error) {
	o := &mount.TmpfsOptions{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "noexec", "nosuid", "nodev":
			if flags {
				o.Options = append(o.Options, []string{k})
			}
		case "size":
			n, err := parseSize(v)
			if err != nil {
				return nil, err
			}
			o.SizeBytes = n
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return nil, fmt.Errorf("mode %q: %w", v, err)
			}
			o.Mode = os.FileMode(m)
		}
	}
	return o, nil
}

// parseSize reads a tmpfs size: bytes with an optional k, m or g suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mult = 1 << 10
	case strings.HasSuffix(v, "m"), strings.HasSuffix(v, "M"):
		mult = 1 << 20
	case strings.HasSuffix(v, "g"), strings.HasSuffix(v, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: not a size", v)
	}
	return n * mult, nil
}

// normalizeImage adds ":latest" to a reference without tag or digest, as
// the SDK does before it sends a service spec: the projection hash must
// see the image the engine will hold.
func normalizeImage(ref string) string {
	if ref == "" || strings.Contains(ref, "@") || strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		return ref
	}
	return ref + ":latest"
}

// projection returns, per part of moat's spec (the part names of the
// spec-parts label), a canonical encoding of everything in a ServiceSpec
// that belongs to that part. Every field of the ServiceSpec that moat
// sets, or that a hand edit could set, is in one part, except the
// networks (compared directly) and ForceUpdate (moat's restart counter).
// Computed on the spec moat sends and on the live one: Swarm returns
// what it was sent, so equal specs give equal projections.
func projection(s *swarm.ServiceSpec) map[string]string {
	t := &s.TaskTemplate
	cs := t.ContainerSpec
	if cs == nil {
		cs = &swarm.ContainerSpec{}
	}
	enc := func(v ...any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // plain data: cannot fail
		}
		return string(b)
	}
	sorted := func(ss []string) []string { return slices.Sorted(slices.Values(ss)) }
	labels := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		delete(out, state.LabelSpecHash)
		delete(out, state.LabelSpecParts)
		delete(out, LabelServiceHash)
		return out
	}
	var mounts, tmpfs []string
	for _, m := range cs.Mounts {
		if m.Type == mount.TypeTmpfs {
			tmpfs = append(tmpfs, enc(m.Target, m.TmpfsOptions))
			continue
		}
		mounts = append(mounts, enc(m.Type, m.Source, m.Target, m.ReadOnly, m.Consistency, m.BindOptions, m.VolumeOptions))
	}
	for _, c := range cs.Configs {
		mounts = append(mounts, enc("config", c))
	}
	var secrets []string
	for _, r := range cs.Secrets {
		if r != nil {
			secrets = append(secrets, enc(r.SecretName, r.File))
		}
	}
	// Swarm fills these in when they are not sent: unset is the default.
	isolation, runtime := cs.Isolation, t.Runtime
	if isolation == "" {
		isolation = container.IsolationDefault
	}
	if runtime == "" && t.PluginSpec == nil && t.NetworkAttachmentSpec == nil {
		runtime = swarm.RuntimeContainer
	}
	p := map[string]string{
		"image": enc(cs.Image),
		"cmd":   enc(cs.Command, cs.Args, cs.Dir, cs.Hostname, cs.TTY, cs.OpenStdin, cs.Hosts, cs.DNSConfig),
		"env":   enc(sorted(cs.Env)),
		"user":  enc(cs.User, cs.Groups),
		"labels": enc(labels(s.Annotations.Labels), labels(cs.Labels),
			t.LogDriver),
		"limits":      enc(t.Resources, cs.Ulimits, cs.OomScoreAdj),
		"mounts":      enc(sorted(mounts)),
		"tmpfs":       enc(sorted(tmpfs)),
		"restart":     enc(t.RestartPolicy, cs.StopGracePeriod, cs.StopSignal),
		"secrets":     enc(sorted(secrets)),
		"security":    enc(cs.ReadOnly, sorted(cs.CapabilityDrop), sorted(cs.CapabilityAdd), cs.Sysctls, cs.Privileges, cs.Init, isolation, runtime, t.PluginSpec, t.NetworkAttachmentSpec),
		"healthcheck": enc(cs.Healthcheck),
		"ports":       enc(s.EndpointSpec),
		"swarm":       enc(t.Placement, s.Mode, s.UpdateConfig, s.RollbackConfig),
	}
	return p
}

// projectionLabel is the LabelServiceHash value of a projection: one
// short hash per part, sorted by part name.
func projectionLabel(p map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(',')
		}
		sum := sha256.Sum256([]byte(p[k]))
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(hex.EncodeToString(sum[:4]))
	}
	return b.String()
}

// editedParts compares the LabelServiceHash moat wrote with the live
// spec's projection and returns the parts that differ, sorted; nil when
// none does. A missing or malformed label makes every part count.
func editedParts(label string, live map[string]string) []string {
	want := map[string]string{}
	for kv := range strings.SplitSeq(label, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			want[k] = v
		}
	}
	got := projectionLabel(live)
	if got == label {
		return nil
	}
	var out []string
	for kv := range strings.SplitSeq(got, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if want[k] != v {
			out = append(out, k)
		}
	}
	return out
}

// markEdited returns labels with the spec-hash label made unmatchable and
// each edited part's hash in the spec-parts label replaced, so that
// reconcile plans an update whose cause names the parts.
func markEdited(labels map[string]string, parts []string) map[string]string {
	out := maps.Clone(labels)
	out[state.LabelSpecHash] = editedHash + labels[state.LabelSpecHash]
	var kept []string
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(labels[state.LabelSpecParts], ",") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		seen[k] = true
		if slices.Contains(parts, k) {
			kv = k + "=" + editedPart
		}
		kept = append(kept, kv)
	}
	for _, p := range parts {
		if !seen[p] {
			kept = append(kept, p+"="+editedPart)
		}
	}
	out[state.LabelSpecParts] = strings.Join(kept, ",")
	return out
}
