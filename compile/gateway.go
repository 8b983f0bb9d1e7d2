package compile

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/firewall"
	"github.com/moat-platform/moat/state"
)

// Shared services are reached only through gateways (docs/DESIGN.md,
// "Shared services through gateways"). For every tenant whose apps use a
// shared service, compile adds:
//   - a gateway container <instance>.<tenant>.<service>.gateway running
//     `moat gateway` from moat's own image, on each LAN of the tenant that
//     has an app using the service, answering there under the service's
//     name (its DNS alias), and enforcing the modes the tenant's apps use;
//   - a link network <instance>.<tenant>.<service>.link, internal, with a
//     /29 of its own from the platform's link pool, that only this gateway
//     and the service join.
// The service joins its link networks only (and, if its SharedService says
// egress: true, an egress network <instance>.shared.<service>.egress). It is
// on no tenant LAN, so it is not a bridge between tenants, and a tenant
// reaches it only through its own gateway.

// linkBits is the size of every link and egress network: a /29 holds the
// bridge's own address, the gateway and the service, with room to spare.
const linkBits = 29

// swarmLinkBits is the size on Swarm: an overlay network spends one
// address per node that runs a task on it on that node's load-balancer
// endpoint (even with endpoint mode dnsrr), besides the gateway address
// and one per task; a /28 leaves room for the gateway and the service on
// two different nodes, and for a rolling update's second task.
const swarmLinkBits = 28

// gatewayMetricsPort is where every gateway serves /metrics (inside the
// container; never published), unless the service itself uses that port.
const gatewayMetricsPort = 9090

// use is one (tenant, service) pair that needs a gateway.
type use struct {
	tenant, service string
	lans            []string        // the tenant's LAN names with an app using the service, sorted
	modes           map[string]bool // the modes those apps use
}

// uses collects, from the apps, which tenant uses which service on which
// LANs in which modes. Unknown services and LANs are left to the other
// checks (policy reports them with positions).
func (c *compiler) uses() []use {
	idx := map[[2]string]*use{}
	for _, a := range c.repo.Apps {
		t := tenantOf(a.Tenant, a.Meta)
		if c.tenants[t] == nil || a.Replicas == 0 {
			continue
		}
		for _, u := range a.Uses {
			if c.services[u.Service] == nil {
				continue
			}
			k := [2]string{t, u.Service}
			x := idx[k]
			if x == nil {
				x = &use{tenant: t, service: u.Service, modes: map[string]bool{}}
				idx[k] = x
			}
			x.modes[u.Mode] = true
			for _, l := range a.Lans {
				if c.lans[t][l] != "" && !slices.Contains(x.lans, l) {
					x.lans = append(x.lans, l)
				}
			}
		}
	}
	out := make([]use, 0, len(idx))
	for _, x := range idx {
		slices.Sort(x.lans)
		if len(x.lans) > 0 {
			out = append(out, *x)
		}
	}
	slices.SortFunc(out, func(a, b use) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.service, b.service))
	})
	return out
}

// gatewayMode is the one mode a gateway enforces for the modes the
// tenant's apps use: one mode as is; read-only and write-only together (or
// read-write) need both directions.
func gatewayMode(modes map[string]bool) string {
	switch {
	case modes[config.ReadWrite] || (modes[config.ReadOnly] && modes[config.WriteOnly]):
		return config.ReadWrite
	case modes[config.WriteOnly]:
		return config.WriteOnly
	default:
		return config.ReadOnly
	}
}

// linkPool resolves the platform's link pool: gateways.linkPool, else the
// last 1/16 of network.pool (a /12 pool gives a /16 of link networks).
// linkBits is the size of one link network.
func linkPool(p *config.Platform, linkBits int) (netip.Prefix, error) {
	s := p.Gateways.LinkPool
	if s == "" {
		pool, err := netip.ParsePrefix(p.Network.Pool)
		if err != nil || !pool.Addr().Is4() {
			return netip.Prefix{}, fmt.Errorf("gateways.linkPool is not set and network.pool %q is not an IPv4 CIDR to derive it from", p.Network.Pool)
		}
		bits := min(pool.Bits()+4, linkBits)
		// The last block of that size inside the pool.
		base := binary.BigEndian.Uint32(pool.Masked().Addr().AsSlice())
		size := uint32(1) << (32 - pool.Bits())
		last := base + size - uint32(1)<<(32-bits)
		return netip.PrefixFrom(addr4(last), bits), nil
	}
	pool, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("gateways.linkPool %q: %w", s, err)
	case !pool.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("gateways.linkPool %q: only IPv4 is supported", s)
	case pool.Masked() != pool:
		return netip.Prefix{}, fmt.Errorf("gateways.linkPool %q: has host bits set (network address is %s)", s, pool.Masked())
	case pool.Bits() > linkBits:
		return netip.Prefix{}, fmt.Errorf("gateways.linkPool %q: smaller than one /%d link network", s, linkBits)
	}
	return pool, nil
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// allocLinks gives each key a /linkBits of pool. A key's slot is a hash of the
// key (so adding or removing a grant does not renumber, and so recreate,
// the other link networks), moved to the next free slot on a collision;
// keys are placed in sorted order so the result is deterministic.
func allocLinks(pool netip.Prefix, linkBits int, keys []string) (map[string]netip.Prefix, error) {
	slots := uint32(1) << (linkBits - pool.Bits())
	if uint64(len(keys)) > uint64(slots) {
		return nil, fmt.Errorf("link pool %s holds %d /%d networks, %d are needed: choose a larger gateways.linkPool", pool, slots, linkBits, len(keys))
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	base := binary.BigEndian.Uint32(pool.Addr().AsSlice())
	used := map[uint32]bool{}
	out := make(map[string]netip.Prefix, len(keys))
	for _, k := range keys {
		h := sha256.Sum256([]byte(k))
		i := binary.BigEndian.Uint32(h[:4]) % slots
		for used[i] {
			i = (i + 1) % slots
		}
		used[i] = true
		out[k] = netip.PrefixFrom(addr4(base+i<<(32-linkBits)), linkBits)
	}
	return out, nil
}

// gateways builds the link and egress networks and the gateway
// containers, and returns the service networks: service -> the endpoints
// its container joins.
func (c *compiler) gateways() ([]state.NetworkSpec, []state.ContainerSpec, map[string][]state.Endpoint) {
	uses := c.uses()
	var egress []string
	for _, s := range c.repo.Services {
		if c.services[s.Name] == s && s.Egress {
			egress = append(egress, s.Name)
		}
	}
	if len(uses) == 0 && len(egress) == 0 {
		return nil, nil, nil
	}
	bits := linkBits
	if c.swarm {
		bits = swarmLinkBits
	}
	pool, err := linkPool(c.repo.Platform, bits)
	if err != nil {
		c.errorf("platform %s: %w", c.instance, err)
		return nil, nil, nil
	}
	for _, t := range c.repo.Tenants {
		if b, err := netip.ParsePrefix(t.Block); err == nil && b.Overlaps(pool) {
			c.errorf("tenant %s: block %s overlaps the gateways' link pool %s; set gateways.linkPool to a range no tenant uses", t.Name, b, pool)
			return nil, nil, nil
		}
	}
	keys := make([]string, 0, len(uses)+len(egress))
	for _, u := range uses {
		keys = append(keys, "link/"+u.tenant+"/"+u.service)
	}
	for _, s := range egress {
		keys = append(keys, "egress/"+s)
	}
	subnets, err := allocLinks(pool, bits, keys)
	if err != nil {
		c.errorf("platform %s: %w", c.instance, err)
		return nil, nil, nil
	}
	lim := c.repo.Platform.Gateways

	var nets []state.NetworkSpec
	var cts []state.ContainerSpec
	svcNets := map[string][]state.Endpoint{}
	for _, s := range egress {
		name := c.names.Egress(c.instance, s)
		nets = append(nets, c.linkNetwork(name, subnets["egress/"+s], false, "", s, state.KindEgress))
		svcNets[s] = append(svcNets[s], state.Endpoint{Network: name})
	}
	for _, u := range uses {
		svc := c.services[u.service]
		what := fmt.Sprintf("gateway %s/%s", u.tenant, u.service)
		link := c.names.Link(c.instance, u.tenant, u.service)
		nets = append(nets, c.linkNetwork(link, subnets["link/"+u.tenant+"/"+u.service], true, u.tenant, u.service, state.KindLink))
		svcNets[u.service] = append(svcNets[u.service], state.Endpoint{Network: link})

		if svc.Protocol != "http" && svc.Protocol != "tcp" {
			c.errorf("%s: shared service %s speaks %s; gateways carry http and tcp only", what, u.service, svc.Protocol)
			continue
		}
		l, ok := c.gatewayLimits(u.tenant, what)
		if !ok {
			continue
		}
		metrics := gatewayMetricsPort
		if svc.Port == metrics {
			metrics++
		}
		cmd := []string{"gateway",
			"--tenant=" + u.tenant,
			"--service=" + u.service,
			"--mode=" + gatewayMode(u.modes),
			"--protocol=" + svc.Protocol,
			"--listen=:" + strconv.Itoa(svc.Port),
			"--upstream=" + c.names.Service(c.instance, u.service) + ":" + strconv.Itoa(svc.Port),
			"--metrics-listen=:" + strconv.Itoa(metrics),
			"--max-body=" + strconv.FormatInt(l.maxBody, 10),
			"--rps=" + strconv.FormatFloat(l.rps, 'g', -1, 64),
			"--burst=" + strconv.Itoa(l.burst),
			"--max-conns=" + strconv.Itoa(l.conns),
		}
		res := lim.Resources
		if res == (config.Resources{}) {
			res = config.Resources{CPUs: config.DefaultGatewayCPUs, Memory: config.DefaultGatewayMemory, Pids: config.DefaultGatewayPids}
		}
		s, ok := c.base(c.names.Gateway(c.instance, u.tenant, u.service), cmp.Or(lim.Image, config.DefaultGatewayImage), cmd, "", res, what)
		if !ok {
			continue
		}
		for _, lan := range u.lans {
			s.Networks = append(s.Networks, state.Endpoint{Network: c.lans[u.tenant][lan], Aliases: []string{u.service}})
		}
		// The gateway reaches the service by its container name on the
		// link network: a name no tenant can give anything, unlike the
		// service's own name, which is the gateway's alias on the LANs.
		s.Networks = append(s.Networks, state.Endpoint{Network: link})
		slices.SortFunc(s.Networks, func(x, y state.Endpoint) int { return cmp.Compare(x.Network, y.Network) })
		s.Labels = map[string]string{
			state.LabelManagedBy: state.ManagedBy,
			state.LabelInstance:  c.instance,
			state.LabelTenant:    u.tenant,
			state.LabelKind:      state.KindGateway,
			state.LabelApp:       u.service,
		}
		s.Swarm = c.swarmSpec(u.tenant, s.Mounts)
		setHash(&s)
		cts = append(cts, s)
	}
	return nets, cts, svcNets
}

// linkNetwork is a link (internal) or egress network of its own subnet.
func (c *compiler) linkNetwork(name string, subnet netip.Prefix, internal bool, tenant, service, kind string) state.NetworkSpec {
	n := state.NetworkSpec{
		Name:     name,
		Driver:   c.rt.driver,
		Internal: internal,
		Subnet:   subnet.String(),
		Gateway:  subnet.Addr().Next().String(),
		Labels: map[string]string{
			state.LabelManagedBy: state.ManagedBy,
			state.LabelInstance:  c.instance,
			state.LabelKind:      kind,
			state.LabelApp:       service,
		},
	}
	if tenant != "" {
		n.Labels[state.LabelTenant] = tenant
	}
	switch c.rt.driver {
	case DriverBridge:
		n.Options = map[string]string{
			"com.docker.network.bridge.enable_icc": "true",
			state.OptionBridgeName:                 firewall.BridgeName(name),
		}
	case DriverOverlay:
		n.Options = c.overlayOptions()
	}
	return n
}

// limits are one tenant's resolved gateway limits.
type limits struct {
	maxBody int64
	rps     float64
	burst   int
	conns   int
}

// gatewayLimits resolves the platform's limits with the tenant's
// overrides, field by field.
func (c *compiler) gatewayLimits(tenant, what string) (limits, bool) {
	p := c.repo.Platform.Gateways.Limits
	o := c.tenants[tenant].GatewayLimits
	body, err := parseMemory(cmp.Or(o.MaxBody, p.MaxBody, config.DefaultGatewayMaxBody))
	// Zero means unset here (the schema refuses an explicit 0): the
	// tenant's value, else the platform's, else the default.
	l := limits{maxBody: body, rps: cmp.Or(o.RPS, p.RPS, config.DefaultGatewayRPS),
		burst: cmp.Or(o.Burst, p.Burst, config.DefaultGatewayBurst),
		conns: cmp.Or(o.Connections, p.Connections, config.DefaultGatewayConnections)}
	switch {
	case err != nil:
		c.errorf("%s: maxBody: %w", what, err)
	case l.maxBody < 1:
		c.errorf("%s: maxBody must be positive", what)
	case !(l.rps > 0) || math.IsInf(l.rps, 0):
		c.errorf("%s: rps %v must be positive", what, l.rps)
	case l.burst < 1:
		c.errorf("%s: burst %d must be at least 1", what, l.burst)
	case l.conns < 1:
		c.errorf("%s: connections %d must be at least 1", what, l.conns)
	default:
		return l, true
	}
	return l, false
}
