package compile

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// Options carries the inputs compile must not fetch itself.
type Options struct {
	// SecretsDir is the host directory of the secret store: the secret n of
	// tenant t is the file SecretsDir/t/n, bind-mounted read-only at
	// /run/secrets/n. It must be an absolute slash path when any app
	// declares a secret.
	SecretsDir string
	// SecretDigests maps "tenant/name" to a keyed hash of the secret's
	// value, computed by the caller from the store (never the value). Every
	// declared secret needs one: it goes into the spec hash so that a
	// rotation recreates the apps that mount it.
	SecretDigests map[string]string
	// UnknownSecrets plans without the secret store (a pull-request check
	// has no access to it): digests are the placeholder UnknownDigest and
	// SecretsDir may be empty. Such a plan is for display only.
	UnknownSecrets bool
}

// UnknownDigest stands for a secret digest compile was not given
// (Options.UnknownSecrets).
const UnknownDigest = "unknown"

// unknownSecretsDir is the mount source shown when the store's location is
// unknown; the source is not part of the spec hash.
const unknownSecretsDir = "/moat-secret-store-unknown"

// SharedScope is the middle element of the engine names of platform-owned
// objects (<instance>.shared.<name>). A tenant of that name would make its
// volume names collide with the shared volumes, so it is reserved.
const SharedScope = "shared"

// ErrMissingSecretDigest is wrapped by the error for a declared secret
// without an entry in Options.SecretDigests.
var ErrMissingSecretDigest = errors.New("no digest for secret")

// compiler holds the indexes built once per Compile and the errors found;
// errors are collected (not returned at the first) so that a caller sees
// every missing secret digest at once.
type compiler struct {
	repo     *config.Repo
	opts     Options
	instance string
	rt       runtime
	// names joins name elements: "." on one host, "--" on Swarm.
	names Names
	// swarm: the platform runs on Swarm (engine: swarm): containers
	// become services with a Swarm part, secrets Swarm secrets.
	swarm bool
	// secrets are the Swarm secret versions the apps mount, by name.
	secrets map[string]state.SecretSpec

	tenants  map[string]*config.Tenant
	lans     map[string]map[string]string // tenant -> lan -> network name
	volumes  map[string]map[string]bool   // tenant -> volume names
	shared   map[string]bool              // shared volume names
	services map[string]*config.SharedService
	// capAllowed holds (tenant, app, capability) from the platform's
	// exception list, capabilities normalised.
	capAllowed map[[3]string]bool

	errs []error
}

func (c *compiler) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// Compile turns a validated repository into the desired engine state. It
// never modifies repo. All problems found are returned together
// (errors.Join), in a deterministic order.
func Compile(repo *config.Repo, opts Options) (*state.Desired, error) {
	if repo == nil || repo.Platform == nil {
		return nil, errors.New("compile: repository has no platform")
	}
	c := &compiler{
		repo:     repo,
		opts:     opts,
		instance: repo.Platform.Name,
		tenants:  map[string]*config.Tenant{},
		lans:     map[string]map[string]string{},
		volumes:  map[string]map[string]bool{},
		shared:   map[string]bool{},
		services: map[string]*config.SharedService{},
		names:    NamesFor(repo.Platform.Engine),
		swarm:    repo.Platform.Engine == config.EngineSwarm,
		secrets:  map[string]state.SecretSpec{},

		capAllowed: map[[3]string]bool{},
	}
	for _, ex := range repo.Platform.Policy.Capabilities {
		for _, capName := range ex.Add {
			c.capAllowed[[3]string{ex.Tenant, ex.App, normalizeCap(capName)}] = true
		}
	}
	if !isLabel(c.instance) {
		return nil, fmt.Errorf("compile: platform name %q is not a DNS label", c.instance)
	}
	rt, err := runtimeOf(repo.Platform)
	if err != nil {
		return nil, fmt.Errorf("compile: platform %s: %w", c.instance, err)
	}
	c.rt = rt

	d := &state.Desired{Instance: c.instance}
	if c.swarm {
		// One host leaves Engine empty, so its Desired (and every plan
		// made of it) reads exactly as before Swarm support.
		d.Engine = state.EngineSwarm
	}
	c.indexTenants()
	d.Networks = c.networks()
	d.Weave = c.weave()
	d.Volumes = c.volumeSpecs()
	apps := c.appContainers()
	links, gws, svcNets := c.gateways()
	d.Networks = append(d.Networks, links...)
	// Link and egress networks are protected like LANs: a shared service
	// must not reach the host either.
	d.HostRules = c.hostRules(d.Networks)
	d.Containers = append(apps, gws...)
	d.Containers = append(d.Containers, c.serviceContainers(svcNets)...)
	d.Secrets = c.secretSpecs()
	if d.Containers == nil {
		d.Containers = []state.ContainerSpec{} // "[]" in JSON, like the others
	}

	slices.SortFunc(d.Networks, func(a, b state.NetworkSpec) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Volumes, func(a, b state.VolumeSpec) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Containers, func(a, b state.ContainerSpec) int { return cmp.Compare(a.Name, b.Name) })
	// The cross-container checks run on sorted output, so that which of
	// two clashing objects is named first does not depend on input order.
	c.checkUnique(d)
	if c.swarm {
		c.checkSwarmNames(d)
	}
	c.checkAliases(d.Containers)
	c.checkHostPorts(d.Containers)

	if len(c.errs) > 0 {
		// Sorted so the message does not depend on input or map order.
		slices.SortFunc(c.errs, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
		return nil, fmt.Errorf("compile: %w", errors.Join(c.errs...))
	}
	return d, nil
}

// tenantOf is the owning tenant of a tenant-kind document: the explicit
// field, else the folder it was loaded from.
func tenantOf(field string, m config.Meta) string {
	if field != "" || m.Src == nil {
		return field
	}
	return m.Src.Tenant
}

// indexTenants builds the lookups every later step resolves names through.
func (c *compiler) indexTenants() {
	for _, t := range c.repo.Tenants {
		switch {
		case !isLabel(t.Name):
			c.errorf("tenant %q: name is not a DNS label", t.Name)
		case t.Name == SharedScope:
			c.errorf("tenant %q: the name is reserved for platform objects", t.Name)
		case c.tenants[t.Name] != nil:
			c.errorf("tenant %q: declared twice", t.Name)
		default:
			c.tenants[t.Name] = t
		}
	}
	for _, s := range c.repo.Services {
		if !isLabel(s.Name) {
			c.errorf("shared service %q: name is not a DNS label", s.Name)
			continue
		}
		if c.services[s.Name] != nil {
			c.errorf("shared service %q: declared twice", s.Name)
			continue
		}
		c.services[s.Name] = s
	}
	for _, v := range c.repo.SharedVolumes {
		if !isLabel(v.Name) {
			c.errorf("shared volume %q: name is not a DNS label", v.Name)
			continue
		}
		if c.shared[v.Name] {
			c.errorf("shared volume %q: declared twice", v.Name)
			continue
		}
		c.shared[v.Name] = true
	}
}

// known reports whether tenant is registered, recording an error naming
// what refers to it when not.
func (c *compiler) known(tenant, what string) bool {
	if c.tenants[tenant] != nil {
		return true
	}
	c.errorf("%s: unknown tenant %q", what, tenant)
	return false
}

// owned resolves the owning tenant of a tenant document (a LAN, volume or
// app) and checks that the tenant is registered and the name is a DNS
// label. what names the document in errors ("app acme/web"); ok false
// means an error was recorded and the document is skipped.
func (c *compiler) owned(kind, tenantField string, m config.Meta) (tenant, what string, ok bool) {
	tenant = tenantOf(tenantField, m)
	what = fmt.Sprintf("%s %s/%s", kind, tenant, m.Name)
	if !c.known(tenant, what) {
		return tenant, what, false
	}
	if !isLabel(m.Name) {
		c.errorf("%s: name is not a DNS label", what)
		return tenant, what, false
	}
	return tenant, what, true
}

// networks builds one network per tenant LAN.
func (c *compiler) networks() []state.NetworkSpec {
	out := make([]state.NetworkSpec, 0, len(c.repo.Lans))
	for _, l := range c.repo.Lans {
		t, what, ok := c.owned("lan", l.Tenant, l.Meta)
		if !ok {
			continue
		}
		subnet, gateway, err := subnetAndGateway(l.Subnet)
		if err != nil {
			c.errorf("%s: %w", what, err)
			continue
		}
		name := c.names.Network(c.instance, t, l.Name)
		if c.lans[t] == nil {
			c.lans[t] = map[string]string{}
		}
		c.lans[t][l.Name] = name
		n := state.NetworkSpec{
			Name:     name,
			Driver:   c.rt.driver,
			Internal: !l.Internet,
			Subnet:   subnet,
			Gateway:  gateway,
			Labels: map[string]string{
				state.LabelManagedBy: state.ManagedBy,
				state.LabelInstance:  c.instance,
				state.LabelTenant:    t,
				state.LabelKind:      state.KindLan,
				state.LabelLan:       l.Name,
			},
		}
		switch c.rt.driver {
		case DriverBridge:
			// Docker's default is on too, but saying so keeps a daemon
			// configured with icc=false from silently cutting a LAN in two.
			// The bridge is named by moat so that host protection can
			// match the LAN by interface, even before it exists.
			n.Options = map[string]string{
				"com.docker.network.bridge.enable_icc": "true",
				state.OptionBridgeName:                 firewall.BridgeName(name),
			}
		case DriverWeave:
			// The router's plugin is the network and the IPAM driver: it
			// claims the subnet in the mesh's allocation ring, so no other
			// peer hands out its addresses.
			n.Driver = c.rt.weavePlugin
			n.IPAMDriver = c.rt.weavePlugin
		case DriverOverlay:
			n.Options = c.overlayOptions()
		}
		out = append(out, n)
	}
	return out
}

// hostRules is the host protection of every bridge LAN, unless the platform
// turned it off. Overlay and Weave LANs have no host bridge of moat's
// naming to match, so they get none (docs/CONFIG.md says so). On Swarm,
// the host is reached through the node's docker_gwbridge instead (every
// task with a route out is attached to it, its gateway is the host): one
// rule set for its interface, which the operator names moat-gwbridge
// (docs/SWARM.md); reconcile refuses a node whose bridge is not so named.
func (c *compiler) hostRules(nets []state.NetworkSpec) []state.HostRulesSpec {
	if !c.repo.Platform.Network.HostProtection {
		return nil
	}
	var out []state.HostRulesSpec
	if c.swarm {
		spec := state.HostRulesSpec{Network: state.GatewayBridgeNetwork, Bridge: state.GatewayBridgeInterface}
		spec.Hash = firewall.Hash(c.instance, spec)
		out = append(out, spec)
	}
	for _, n := range nets {
		bridge := n.Options[state.OptionBridgeName]
		if bridge == "" {
			continue
		}
		spec := state.HostRulesSpec{Network: n.Name, Tenant: n.Labels[state.LabelTenant], Bridge: bridge, Subnet: n.Subnet}
		spec.Hash = firewall.Hash(c.instance, spec)
		out = append(out, spec)
	}
	slices.SortFunc(out, func(a, b state.HostRulesSpec) int { return cmp.Compare(a.Network, b.Network) })
	return out
}

// subnetAndGateway checks an IPv4 subnet and returns it in canonical form
// with its first host address, which moat always gives the gateway so that
// the address is known before the network exists.
func subnetAndGateway(s string) (string, string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", "", fmt.Errorf("subnet %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return "", "", fmt.Errorf("subnet %q: only IPv4 subnets are supported", s)
	}
	if p.Masked() != p {
		return "", "", fmt.Errorf("subnet %q: has host bits set (network address is %s)", s, p.Masked())
	}
	if p.Bits() > 30 {
		return "", "", fmt.Errorf("subnet %q: too small for a gateway and containers (at most /30)", s)
	}
	return p.String(), p.Addr().Next().String(), nil
}

// volumeSpecs builds one volume per tenant volume and per shared volume.
func (c *compiler) volumeSpecs() []state.VolumeSpec {
	out := make([]state.VolumeSpec, 0, len(c.repo.Volumes)+len(c.shared))
	for _, v := range c.repo.Volumes {
		t, _, ok := c.owned("volume", v.Tenant, v.Meta)
		if !ok {
			continue
		}
		if c.volumes[t] == nil {
			c.volumes[t] = map[string]bool{}
		}
		c.volumes[t][v.Name] = true
		name := c.names.Volume(c.instance, t, v.Name)
		init, ok := c.volumeInit(t, name)
		if !ok {
			c.errorf("volume %s/%s: tenant %s has no valid user", t, v.Name, t)
			continue
		}
		out = append(out, state.VolumeSpec{
			Name: name,
			Labels: map[string]string{
				state.LabelManagedBy: state.ManagedBy,
				state.LabelInstance:  c.instance,
				state.LabelTenant:    t,
				state.LabelKind:      state.KindVolume,
			},
			Init: init,
		})
	}
	for name := range c.shared {
		out = append(out, state.VolumeSpec{
			Name: c.names.SharedVolume(c.instance, name),
			Labels: map[string]string{
				state.LabelManagedBy: state.ManagedBy,
				state.LabelInstance:  c.instance,
				state.LabelKind:      state.KindSharedVolume,
			},
		})
	}
	return out
}

// checkAliases refuses two different apps or services answering to the
// same DNS alias on one LAN: Docker would round-robin between them, so a
// tenant app named like a shared service would silently take its traffic.
func (c *compiler) checkAliases(cs []state.ContainerSpec) {
	owner := map[[2]string]string{} // (network, alias) -> who
	var clash [][3]string
	for _, ct := range cs {
		app := "app " + ct.Labels[state.LabelTenant] + "/" + ct.Labels[state.LabelApp]
		switch ct.Labels[state.LabelKind] {
		case state.KindSharedService:
			app = "shared service " + ct.Labels[state.LabelApp]
		case state.KindGateway:
			app = "shared service " + ct.Labels[state.LabelApp] + " (its gateway)"
		}
		for _, ep := range ct.Networks {
			for _, a := range ep.Aliases {
				k := [2]string{ep.Network, a}
				if prev, ok := owner[k]; ok && prev != app {
					clash = append(clash, [3]string{ep.Network, a, prev + " and " + app})
					continue
				}
				owner[k] = app
			}
		}
	}
	slices.SortFunc(clash, func(a, b [3]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]), cmp.Compare(a[2], b[2]))
	})
	clash = slices.Compact(clash)
	for _, x := range clash {
		c.errorf("network %s: DNS name %q is claimed by both %s", x[0], x[1], x[2])
	}
}

// checkHostPorts refuses two containers publishing the same host port
// (two apps, or two replicas of one app with a published port): the
// second create would fail half-way through an apply.
func (c *compiler) checkHostPorts(cs []state.ContainerSpec) {
	type key struct {
		ip    string
		port  int
		proto string
	}
	owner := map[key]string{}
	for _, ct := range cs {
		for _, p := range ct.Ports {
			k := key{p.HostIP, p.HostPort, p.Protocol}
			if prev, ok := owner[k]; ok {
				c.errorf("host port %s:%d/%s is published by both %s and %s", p.HostIP, p.HostPort, p.Protocol, prev, ct.Name)
				continue
			}
			owner[k] = ct.Name
		}
	}
}

// checkUnique refuses duplicate engine names in the sorted output (a
// duplicate app or LAN that slipped past the validator).
func (c *compiler) checkUnique(d *state.Desired) {
	dup := func(kind string, names []string) {
		for i := 1; i < len(names); i++ {
			if names[i] == names[i-1] && (i == 1 || names[i-2] != names[i]) {
				c.errorf("%s %s: declared more than once", kind, names[i])
			}
		}
	}
	names := func(n int, at func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	dup("network", names(len(d.Networks), func(i int) string { return d.Networks[i].Name }))
	dup("volume", names(len(d.Volumes), func(i int) string { return d.Volumes[i].Name }))
	dup("container", names(len(d.Containers), func(i int) string { return d.Containers[i].Name }))
}

// checkSwarmNames refuses a service or network name Swarm would refuse:
// longer than one DNS label (policy's swarm.name says so with a position).
func (c *compiler) checkSwarmNames(d *state.Desired) {
	for _, n := range d.Networks {
		if len(n.Name) > MaxSwarmName {
			c.errorf("network %s: the name is longer than %d characters", n.Name, MaxSwarmName)
		}
	}
	for _, ct := range d.Containers {
		if len(ct.Name) > MaxSwarmName {
			c.errorf("service %s: the name is longer than %d characters", ct.Name, MaxSwarmName)
		}
	}
}

// isLabel reports whether s is an RFC 1123 DNS label in lower case: the
// form every name component of an engine name must have.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if (b < 'a' || b > 'z') && (b < '0' || b > '9') && b != '-' {
			return false
		}
	}
	return true
}
