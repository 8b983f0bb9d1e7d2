package compile

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
)

// Values of Platform.Network.Driver. Weave LANs use the router's
// local-scope plugin ("weavemesh" unless network.weave.plugin renames it)
// as network and IPAM driver: its global-scope "weave" driver needs swarm
// mode, and the local-scope one still spans hosts through the mesh.
const (
	DriverBridge  = "bridge"
	DriverOverlay = "overlay"
	DriverWeave   = "weave"
)

// Environment variables moat sets in every app container, so that an app
// can tag its logs and metrics without repeating its identity in config.
// They are part of the spec (and so of the hash, part "env"); an app may
// not set them itself.
const (
	EnvTenant  = "MOAT_TENANT"
	EnvApp     = "MOAT_APP"
	EnvReplica = "MOAT_REPLICA"
	envPrefix  = "MOAT_"
)

// SecretsTarget is the directory secrets are mounted under, one file each.
const SecretsTarget = "/run/secrets"

// Healthcheck defaults when the app leaves a field out.
const (
	defaultHealthInterval = 10 * time.Second
	defaultHealthTimeout  = 3 * time.Second
	defaultHealthRetries  = 3
)

// runtime is the platform's settings, resolved once per Compile.
type runtime struct {
	driver       string
	weavePlugin  string // Docker driver of Weave LANs
	user         string
	stopTimeout  int
	retries      int
	tmpfs        map[string]string
	publishAddr  string
	publishPorts bool
}

// runtimeOf resolves the platform settings. Decode has applied the
// defaults; an empty string is never a valid value, so compile falls back
// to the same defaults for those, but an out-of-range number is an error:
// RestartRetries 0 would mean "retry forever" to Docker.
func runtimeOf(p *config.Platform) (runtime, error) {
	r := runtime{
		driver:       cmp.Or(p.Network.Driver, DriverBridge),
		user:         cmp.Or(p.Runtime.User, "65534:65534"),
		stopTimeout:  p.Runtime.StopTimeout,
		retries:      p.Runtime.RestartRetries,
		publishAddr:  cmp.Or(p.Policy.PublishAddress, "127.0.0.1"),
		publishPorts: p.Policy.PublishPorts,
	}
	switch p.Engine {
	case "", config.EngineDocker:
	case config.EngineSwarm:
		if r.driver != DriverOverlay {
			// Policy says so with a position (swarm.driver).
			return r, fmt.Errorf("engine swarm needs driver overlay, not %s", r.driver)
		}
	default:
		return r, fmt.Errorf("unknown engine %q", p.Engine)
	}
	swarm := p.Engine == config.EngineSwarm
	switch r.driver {
	case DriverBridge:
	case DriverOverlay:
		if !swarm {
			// Policy says so with a position (swarm.driver).
			return r, fmt.Errorf("driver overlay needs engine swarm: overlay networks of standalone containers are not supported")
		}
	case DriverWeave:
		if p.Network.Weave == nil {
			return r, fmt.Errorf("driver weave without network.weave")
		}
		r.weavePlugin = cmp.Or(p.Network.Weave.Plugin, config.DefaultWeavePlugin)
	default:
		return r, fmt.Errorf("unknown network driver %q", r.driver)
	}
	if isRoot(r.user) {
		return r, fmt.Errorf("runtime user %q is root", r.user)
	}
	if r.stopTimeout < 0 {
		return r, fmt.Errorf("negative stop timeout %d", r.stopTimeout)
	}
	if r.retries < 1 {
		return r, fmt.Errorf("restart retries %d: must be at least 1 (0 is unbounded in Docker)", r.retries)
	}
	size, err := parseMemory(cmp.Or(p.Runtime.TmpfsSize, "16MiB"))
	if err != nil || size <= 0 {
		return r, fmt.Errorf("tmpfs size %q: %w", p.Runtime.TmpfsSize, cmp.Or(err, fmt.Errorf("must be positive")))
	}
	// nodev on top of the usual noexec,nosuid: nothing in /tmp is a device.
	r.tmpfs = map[string]string{"/tmp": "rw,noexec,nosuid,nodev,size=" + strconv.FormatInt(size, 10)}
	return r, nil
}

// Sysctls returns the kernel settings of every moat container. They are
// per network namespace, and every moat container has its own:
//   - forwarding off (IPv4 and IPv6): Docker leaves net.ipv4.ip_forward=1
//     inside containers, so a container on two tenants' LANs (a shared
//     service, a gateway) could route between them if it gained NET_ADMIN
//     or a route; with forwarding off the kernel drops such packets.
//   - IPv6 off on every interface, present and future ("default" covers a
//     LAN connected later): moat's LANs are IPv4 only, and an IPv6
//     link-local address would be a path to neighbours and the host that
//     IPv4 firewall rules do not see.
//
// A new map each call: specs own theirs.
func Sysctls() map[string]string {
	return map[string]string{
		"net.ipv4.ip_forward":                "0",
		"net.ipv6.conf.all.forwarding":       "0",
		"net.ipv6.conf.default.forwarding":   "0",
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
	}
}

// base is the hardened skeleton shared by app and shared-service
// containers: everything SECURITY.md requires of every container.
func (c *compiler) base(name, image string, cmd []string, user string, res config.Resources, what string) (state.ContainerSpec, bool) {
	s := state.ContainerSpec{
		Name:           name,
		Image:          image,
		Cmd:            slices.Clone(cmd),
		User:           cmp.Or(user, c.rt.user),
		Tmpfs:          maps.Clone(c.rt.tmpfs),
		ReadOnlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Sysctls:        Sysctls(),
		Restart:        state.Restart{Name: "on-failure", MaxRetries: c.rt.retries},
		StopTimeout:    c.rt.stopTimeout,
	}
	ok := true
	if image == "" {
		c.errorf("%s: no image", what)
		ok = false
	}
	if isRoot(s.User) {
		c.errorf("%s: user %q is root", what, s.User)
		ok = false
	}
	mem, err := parseMemory(res.Memory)
	switch {
	case err != nil:
		c.errorf("%s: memory: %w", what, err)
		ok = false
	case mem <= 0 || res.CPUs <= 0 || res.Pids <= 0:
		c.errorf("%s: memory, cpus and pids limits are all required", what)
		ok = false
	}
	s.Memory = mem
	s.NanoCPUs = int64(math.Round(res.CPUs * 1e9))
	s.PidsLimit = int64(res.Pids)
	return s, ok
}

// appContainers builds Replicas containers for every app.
func (c *compiler) appContainers() []state.ContainerSpec {
	var out []state.ContainerSpec
	for _, a := range c.repo.Apps {
		t, what, ok := c.owned("app", a.Tenant, a.Meta)
		if !ok {
			continue
		}
		// Decode has turned a missing replicas into 1, so 0 here was
		// written: the app is scaled to zero and gets no container (its
		// references are still checked below).
		replicas := a.Replicas
		if replicas < 0 {
			c.errorf("%s: negative replicas %d", what, replicas)
			continue
		}
		tmpl, ok := c.appTemplate(t, a, what)
		if !ok {
			continue
		}
		for r := 1; r <= replicas; r++ {
			s := cloneSpec(tmpl)
			s.Name = c.names.Container(c.instance, t, a.Name, r)
			s.Env = append(s.Env, EnvTenant+"="+t, EnvApp+"="+a.Name, EnvReplica+"="+strconv.Itoa(r))
			slices.Sort(s.Env)
			s.Labels = map[string]string{
				state.LabelManagedBy: state.ManagedBy,
				state.LabelInstance:  c.instance,
				state.LabelTenant:    t,
				state.LabelKind:      state.KindApp,
				state.LabelApp:       a.Name,
				state.LabelReplica:   strconv.Itoa(r),
			}
			s.Swarm = c.swarmSpec(t, s.Mounts)
			setHash(&s)
			out = append(out, s)
		}
	}
	return out
}

// appTemplate builds the parts of an app's spec that all replicas share;
// each replica gets a deep copy (cloneSpec).
func (c *compiler) appTemplate(t string, a *config.App, what string) (state.ContainerSpec, bool) {
	user, uok := c.appUser(t, a, what)
	s, ok := c.base("", a.Image, a.Command, user, a.Resources, what)
	ok = ok && uok

	for k, v := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			c.errorf("%s: env %q: invalid name or value", what, k)
			ok = false
			continue
		}
		if strings.HasPrefix(k, envPrefix) {
			c.errorf("%s: env %q: the %s prefix is reserved for moat", what, k, envPrefix)
			ok = false
			continue
		}
		s.Env = append(s.Env, k+"="+v)
	}

	for _, lan := range a.Lans {
		net, found := c.lans[t][lan]
		if !found {
			c.errorf("%s: unknown lan %q", what, lan)
			ok = false
			continue
		}
		// The app's name is its DNS name on each of its LANs, which is what
		// talksTo refers to. No per-replica alias: "web-2" could be another
		// app's name, and nothing in the config addresses one replica.
		s.Networks = append(s.Networks, state.Endpoint{Network: net, Aliases: []string{a.Name}})
	}
	slices.SortFunc(s.Networks, func(x, y state.Endpoint) int { return cmp.Compare(x.Network, y.Network) })
	if dupNetworks(s.Networks) {
		c.errorf("%s: a lan is listed twice", what)
		ok = false
	}

	mounts, digests, mok := c.appMounts(t, a, what)
	s.Mounts, s.SecretDigests = mounts, digests
	ok = ok && mok

	if len(a.Ports) > 0 && c.swarm {
		// Policy says so with a position (swarm.publish).
		c.errorf("%s: a Swarm platform cannot publish host ports", what)
		ok = false
	} else if len(a.Ports) > 0 && !c.rt.publishPorts {
		c.errorf("%s: the platform does not allow published ports", what)
		ok = false
	}
	for _, p := range a.Ports {
		proto := cmp.Or(p.Protocol, "tcp")
		if p.Container < 1 || p.Container > 65535 || p.Host < 1 || p.Host > 65535 || (proto != "tcp" && proto != "udp") {
			c.errorf("%s: port %d->%d/%s is out of range", what, p.Host, p.Container, proto)
			ok = false
			continue
		}
		s.Ports = append(s.Ports, state.Port{HostIP: c.rt.publishAddr, HostPort: p.Host, ContainerPort: p.Container, Protocol: proto})
	}
	slices.SortFunc(s.Ports, comparePorts)

	for _, capName := range a.CapAdd {
		capName = normalizeCap(capName)
		if !c.capAllowed[[3]string{t, a.Name, capName}] {
			// Policy refuses every capability exception with a position
			// (hardening.cap-exception: it cannot take effect for a
			// non-root uid under no-new-privileges); compile still refuses
			// an unlisted one because an added capability is a way out.
			c.errorf("%s: capability %s is not on the platform's exception list", what, capName)
			ok = false
			continue
		}
		s.CapAdd = append(s.CapAdd, capName)
	}
	slices.Sort(s.CapAdd)
	s.CapAdd = slices.Compact(s.CapAdd)

	if h := a.Healthcheck; h != nil {
		hc, err := healthcheck(h)
		if err != nil {
			c.errorf("%s: healthcheck: %w", what, err)
			ok = false
		}
		s.Healthcheck = hc
	}
	return s, ok
}

// appMounts resolves an app's volumes and secrets into mounts sorted by
// target, and the digests of its secrets keyed by secret name.
func (c *compiler) appMounts(t string, a *config.App, what string) ([]state.Mount, map[string]string, bool) {
	ok := true
	var ms []state.Mount
	for _, m := range a.Volumes {
		switch {
		case m.Host != "":
			// The schema refuses host bind mounts; never compile one anyway.
			c.errorf("%s: host bind mount %q is not allowed", what, m.Host)
			ok = false
		case !path.IsAbs(m.Path) || path.Clean(m.Path) != m.Path || m.Path == "/":
			c.errorf("%s: mount path %q must be a clean absolute path", what, m.Path)
			ok = false
		case m.Volume != "" && m.Shared != "":
			c.errorf("%s: mount at %s names both a volume and a shared volume", what, m.Path)
			ok = false
		case m.Volume != "":
			if !c.volumes[t][m.Volume] {
				c.errorf("%s: unknown volume %q", what, m.Volume)
				ok = false
				continue
			}
			ms = append(ms, state.Mount{Type: "volume", Source: c.names.Volume(c.instance, t, m.Volume), Target: m.Path, ReadOnly: m.ReadOnly})
		case m.Shared != "":
			if !c.shared[m.Shared] {
				c.errorf("%s: unknown shared volume %q", what, m.Shared)
				ok = false
				continue
			}
			// Read-only whatever the config says: the kernel then enforces
			// that one tenant cannot write data every tenant reads.
			ms = append(ms, state.Mount{Type: "volume", Source: c.names.SharedVolume(c.instance, m.Shared), Target: m.Path, ReadOnly: true})
		default:
			c.errorf("%s: mount at %s names no volume", what, m.Path)
			ok = false
		}
	}

	var digests map[string]string
	if len(a.Secrets) > 0 {
		digests = make(map[string]string, len(a.Secrets))
		if c.opts.UnknownSecrets && c.opts.SecretsDir == "" {
			c.opts.SecretsDir = unknownSecretsDir
		}
		if !path.IsAbs(c.opts.SecretsDir) {
			c.errorf("%s: declares secrets but the secrets directory %q is not an absolute path", what, c.opts.SecretsDir)
			ok = false
		}
	}
	for _, n := range a.Secrets {
		if !isSecretName(n) {
			c.errorf("%s: secret %q: not a plain file name", what, n)
			ok = false
			continue
		}
		if _, dup := digests[n]; dup {
			c.errorf("%s: secret %q listed twice", what, n)
			ok = false
			continue
		}
		dg, found := c.opts.SecretDigests[t+"/"+n]
		if c.opts.UnknownSecrets {
			dg, found = UnknownDigest, true
		}
		if !found || dg == "" {
			c.errorf("%s: secret %q: %w", what, n, ErrMissingSecretDigest)
			ok = false
			continue
		}
		digests[n] = dg
		src := path.Join(c.opts.SecretsDir, t, n)
		if c.swarm {
			// The value goes into the Swarm's encrypted store (one
			// object per version) and never onto a node's disk.
			ms = append(ms, state.Mount{Type: state.MountSecret, Source: c.secretVersion(t, n, dg, src),
				Target: SecretsTarget + "/" + n, ReadOnly: true})
			continue
		}
		ms = append(ms, state.Mount{
			Type:     "bind",
			Source:   src,
			Target:   SecretsTarget + "/" + n,
			ReadOnly: true,
		})
	}

	slices.SortFunc(ms, func(x, y state.Mount) int { return cmp.Compare(x.Target, y.Target) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Target == ms[i-1].Target {
			c.errorf("%s: two mounts at %s", what, ms[i].Target)
			ok = false
		}
	}
	return ms, digests, ok
}

// serviceContainers builds one container per shared service, on the link
// networks of its gateways (and its egress network) only: never on a
// tenant LAN, so it cannot be a bridge between tenants. A service no
// tenant uses gets no endpoint: an empty Networks list means network mode
// "none" to the engine.
func (c *compiler) serviceContainers(nets map[string][]state.Endpoint) []state.ContainerSpec {
	var out []state.ContainerSpec
	for _, svc := range c.repo.Services {
		if c.services[svc.Name] != svc {
			continue // invalid or duplicate name, reported by indexTenants
		}
		what := "shared service " + svc.Name
		s, ok := c.base(c.names.Service(c.instance, svc.Name), svc.Image, svc.Command, "", svc.Resources, what)
		for k, v := range svc.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
				c.errorf("%s: env %q: invalid name or value", what, k)
				ok = false
				continue
			}
			s.Env = append(s.Env, k+"="+v)
		}
		slices.Sort(s.Env)
		s.Networks = slices.Clone(nets[svc.Name])
		slices.SortFunc(s.Networks, func(x, y state.Endpoint) int { return cmp.Compare(x.Network, y.Network) })
		if !ok {
			continue
		}
		s.Labels = map[string]string{
			state.LabelManagedBy: state.ManagedBy,
			state.LabelInstance:  c.instance,
			state.LabelKind:      state.KindSharedService,
			state.LabelApp:       svc.Name,
		}
		if c.swarm {
			// Platform-owned: no tenant's placement applies.
			s.Swarm = &state.SwarmSpec{UpdateOrder: updateOrder(s.Mounts)}
		}
		setHash(&s)
		out = append(out, s)
	}
	return out
}

// healthcheck converts an exec health check, applying the defaults.
func healthcheck(h *config.Healthcheck) (*state.Healthcheck, error) {
	if len(h.Command) == 0 {
		return nil, fmt.Errorf("no command")
	}
	dur := func(s string, def time.Duration, field string) (int64, error) {
		if s == "" {
			return int64(def), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		if d <= 0 {
			return 0, fmt.Errorf("%s %q: must be positive", field, s)
		}
		return int64(d), nil
	}
	iv, err := dur(h.Interval, defaultHealthInterval, "interval")
	if err != nil {
		return nil, err
	}
	to, err := dur(h.Timeout, defaultHealthTimeout, "timeout")
	if err != nil {
		return nil, err
	}
	retries := h.Retries
	if retries == 0 {
		retries = defaultHealthRetries
	}
	if retries < 0 {
		return nil, fmt.Errorf("negative retries %d", retries)
	}
	// "CMD" (exec form): the images have no shell for "CMD-SHELL".
	return &state.Healthcheck{
		Test:     append([]string{"CMD"}, h.Command...),
		Interval: iv,
		Timeout:  to,
		Retries:  retries,
	}, nil
}

func comparePorts(x, y state.Port) int {
	return cmp.Or(cmp.Compare(x.ContainerPort, y.ContainerPort), cmp.Compare(x.Protocol, y.Protocol),
		cmp.Compare(x.HostIP, y.HostIP), cmp.Compare(x.HostPort, y.HostPort))
}

func dupNetworks(eps []state.Endpoint) bool {
	for i := 1; i < len(eps); i++ {
		if eps[i].Network == eps[i-1].Network {
			return true
		}
	}
	return false
}

// normalizeCap spells a capability the way Docker prints it: upper case,
// without the CAP_ prefix, so that "cap_net_admin" and "NET_ADMIN" are one
// capability for the exception list and hash the same.
func normalizeCap(name string) string {
	name = strings.ToUpper(name)
	return strings.TrimPrefix(name, "CAP_")
}

// isRoot reports whether a "uid[:gid]" or "name[:group]" user is root, or
// runs with the root group: gid 0 gains no capabilities but opens every
// file of group root that the image or a volume leaves group-writable.
// (The schema also requires the group; this is defence in depth.)
func isRoot(user string) bool {
	u, g, hasGroup := strings.Cut(user, ":")
	return isRootID(u) || (hasGroup && isRootID(g))
}

func isRootID(id string) bool {
	if id == "root" {
		return true
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return err == nil && n == 0
}

// isSecretName accepts a plain file name: the secret is a file directly in
// the tenant's folder of the store, so no separator and no dot-dot.
func isSecretName(n string) bool {
	if n == "" || n == "." || n == ".." || len(n) > 255 {
		return false
	}
	return !strings.ContainsAny(n, "/\\\x00")
}

// cloneSpec deep-copies a spec, so that no two specs in a Desired share a
// slice or map: a consumer that edits one spec cannot change another.
func cloneSpec(s state.ContainerSpec) state.ContainerSpec {
	s.Cmd = slices.Clone(s.Cmd)
	s.Env = slices.Clone(s.Env)
	s.Labels = maps.Clone(s.Labels)
	s.Networks = slices.Clone(s.Networks)
	for i := range s.Networks {
		s.Networks[i].Aliases = slices.Clone(s.Networks[i].Aliases)
	}
	s.Mounts = slices.Clone(s.Mounts)
	s.Tmpfs = maps.Clone(s.Tmpfs)
	s.Ports = slices.Clone(s.Ports)
	s.CapDrop = slices.Clone(s.CapDrop)
	s.CapAdd = slices.Clone(s.CapAdd)
	s.SecurityOpt = slices.Clone(s.SecurityOpt)
	s.Sysctls = maps.Clone(s.Sysctls)
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		h.Test = slices.Clone(h.Test)
		s.Healthcheck = &h
	}
	s.SecretDigests = maps.Clone(s.SecretDigests)
	if s.Swarm != nil {
		sw := *s.Swarm
		sw.Placement = slices.Clone(sw.Placement)
		s.Swarm = &sw
	}
	return s
}
