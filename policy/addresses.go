package policy

import (
	"cmp"
	"math"
	"net/netip"
	"slices"

	"github.com/moat-platform/moat/config"
)

// parsePrefix parses a CIDR and masks it (10.80.1.5/24 is 10.80.1.0/24 for
// every comparison here). A value that does not parse is the schema's to
// report, so it comes back !ok and the rule that needed it skips it.
func parsePrefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// hostBits reports a CIDR written with host bits set (10.80.1.7/24): the
// engine is given the network address, so what was written is not what
// runs, and compile refuses it. The schema checks only the syntax.
// path is the field's path in the document; its last element names it.
func (c *checker) hostBits(m config.Meta, s string, path ...any) {
	if p, err := netip.ParsePrefix(s); err == nil && p != p.Masked() {
		c.add(m.Pos(path...), "structure.cidr",
			"%s %s has host bits set; write it with its network address, %s", path[len(path)-1], s, p.Masked())
	}
}

// within reports whether inner lies entirely inside outer.
func within(inner, outer netip.Prefix) bool {
	return inner.Addr().Is4() == outer.Addr().Is4() &&
		outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// cidr is one parsed prefix with where it was written.
type cidr struct {
	p    netip.Prefix
	meta config.Meta
	path []any // field path inside the document
}

// overlaps reports every prefix that overlaps an earlier one, in one sort
// and one sweep: CIDR prefixes are either nested or disjoint, so after
// sorting by first address a prefix overlaps something before it exactly
// when it starts inside the prefix seen so far that reaches furthest. Each
// report sits at the later document (in repository order) of the pair and
// names the other.
func (c *checker) overlaps(all []cidr, rule, what string) {
	slices.SortStableFunc(all, func(a, b cidr) int {
		return cmp.Or(a.p.Addr().Compare(b.p.Addr()), cmp.Compare(a.p.Bits(), b.p.Bits()))
	})
	var cover *cidr
	for i := range all {
		cur := &all[i]
		if cover != nil && cover.p.Contains(cur.p.Addr()) {
			at, other := cur, cover
			if comparePos(cur.meta, cover.meta) < 0 {
				at, other = cover, cur
			}
			c.add(at.meta.Pos(at.path...), rule,
				"%s %s overlaps %s %s at %s; choose disjoint ranges",
				what, at.p, what, other.p, where(other.meta, other.path...))
			// The sort puts the wider of two prefixes with the same start
			// first, so cur lies inside cover: cover still reaches furthest.
			continue
		}
		cover = cur
	}
}

// addresses checks the pool, the tenant blocks and the LAN subnets.
func (c *checker) addresses() {
	var pool netip.Prefix
	poolOK := false
	if c.platform != nil {
		pool, poolOK = parsePrefix(c.platform.Network.Pool)
		if poolOK {
			// Refused like a block or subnet with host bits: 10.130.0.0/12
			// is 10.128.0.0/12, not what the reader of the file sees.
			c.hostBits(c.platform.Meta, c.platform.Network.Pool, "network", "pool")
		}
	}
	var blocks []cidr
	for _, t := range c.tenantDocs {
		if c.tenants[t.Name] != t {
			continue // a duplicate, already reported
		}
		b, ok := parsePrefix(t.Block)
		if !ok {
			continue
		}
		c.hostBits(t.Meta, t.Block, "block")
		if poolOK && !within(b, pool) {
			c.add(t.Pos("block"), "addresses.block-outside-pool",
				"block %s of tenant %s lies outside the platform pool %s; choose a block inside the pool", b, t.Name, pool)
		}
		blocks = append(blocks, cidr{p: b, meta: t.Meta, path: []any{"block"}})
	}
	c.overlaps(blocks, "addresses.block-overlap", "tenant block")

	for _, name := range c.order {
		c.subnets(c.byTenant[name])
	}
}

// subnets checks one tenant's LANs against its block, each other, and the
// number of addresses they must hold. Only this tenant's subnets are ever
// compared or named, so no message tells a tenant about another tenant's
// networks; disjoint blocks keep tenants apart.
func (c *checker) subnets(v *tenantView) {
	block, blockOK := netip.Prefix{}, false
	if v.tenant != nil {
		block, blockOK = parsePrefix(v.tenant.Block)
	}
	need := c.lanDemand(v)
	var subnets []cidr
	for _, l := range v.lans {
		s, ok := parsePrefix(l.Subnet)
		if !ok {
			continue
		}
		c.hostBits(l.Meta, l.Subnet, "subnet")
		if blockOK && !within(s, block) {
			c.add(l.Pos("subnet"), "addresses.subnet-outside-block",
				"subnet %s of LAN %s lies outside tenant %s's block %s; choose a subnet inside the block", s, l.Name, v.name, block)
		}
		subnets = append(subnets, cidr{p: s, meta: l.Meta, path: []any{"subnet"}})
		if n := need[l.Name]; n > hosts(s) {
			what := "its gateway, the replicas of the apps on it and one gateway per shared service they use"
			if c.onSwarm() {
				what = "on Swarm: its gateway, and twice the tasks of a start-first update of every service on it (replicas and shared-service gateways, plus one more task each unless it mounts a writable volume), since each task and each node's load-balancer endpoint takes one"
			}
			c.add(l.Pos("subnet"), "addresses.subnet-too-small",
				"subnet %s of LAN %s has %d usable addresses but needs %d (%s); choose a larger subnet", s, l.Name, hosts(s), n, what)
		}
	}
	c.overlaps(subnets, "addresses.subnet-overlap", "subnet")
}

// lanDemand counts the addresses each LAN of a tenant needs: Docker's
// gateway, one per replica of every app on it, and one for moat's gateway
// container of each shared service those apps use (it joins the LAN).
//
// On Swarm an overlay spends more (docs/SWARM.md, "Addresses on Swarm"):
// the gateway (.1); one address per task (a service per replica, endpoint
// mode dnsrr: no virtual IP); one load-balancer endpoint per node that runs
// a task on the network; and during a start-first rolling update a second
// task of each service beside the old one. Validation cannot know the
// nodes, so it takes the worst case, every task on a node of its own: one
// endpoint per task. With every start-first service updated at once (a
// secret rotation or an image bump of the tenant does that), the need is
// 1 + 2*(tasks + start-first tasks). An app that mounts a writable volume
// updates stop-first (compile), so it never runs twice; gateways mount
// nothing and update start-first.
func (c *checker) lanDemand(v *tenantView) map[string]int64 {
	need := make(map[string]int64, len(v.lans))
	for _, l := range v.lans {
		need[l.Name] = 0
	}
	swarm := c.onSwarm()
	var gateways map[[2]string]bool // (lan, service) pairs already counted
	for _, a := range v.apps {
		r := replicas(a)
		if swarm && !writesVolume(a) {
			r = satAdd(r, r) // start-first: old and new task at once
		}
		lans := newSeen(len(a.Lans), func(i int) string { return a.Lans[i] })
		for i, ln := range a.Lans {
			if _, dup := lans.first(i); dup {
				continue // listed twice, joined once
			}
			if _, ok := need[ln]; !ok {
				continue
			}
			need[ln] = satAdd(need[ln], r)
			for _, u := range a.Uses {
				if c.services[u.Service] == nil || gateways[[2]string{ln, u.Service}] {
					continue
				}
				if gateways == nil {
					gateways = map[[2]string]bool{}
				}
				gateways[[2]string{ln, u.Service}] = true
				g := int64(1)
				if swarm {
					g = 2 // a gateway service updates start-first
				}
				need[ln] = satAdd(need[ln], g)
			}
		}
	}
	for ln, tasks := range need {
		if swarm {
			tasks = satAdd(tasks, tasks) // one load-balancer endpoint per task's node
		}
		need[ln] = satAdd(tasks, 1) // the gateway address
	}
	return need
}

// onSwarm: the platform runs on Swarm (engine: swarm).
func (c *checker) onSwarm() bool {
	return c.platform != nil && c.platform.Engine == config.EngineSwarm
}

// writesVolume: the app mounts one of its tenant's volumes writable, so
// compile gives it a stop-first update: never two tasks. Shared volumes
// do not count: compile mounts them read-only whatever the config says.
func writesVolume(a *config.App) bool {
	for _, m := range a.Volumes {
		if m.Volume != "" && m.Shared == "" && !m.ReadOnly {
			return true
		}
	}
	return false
}

// hosts is the number of addresses Docker can hand out in a subnet: all but
// the network and broadcast addresses (IPv4), all but the subnet-router
// anycast address (IPv6); capped so it fits an int64.
func hosts(p netip.Prefix) int64 {
	free := p.Addr().BitLen() - p.Bits()
	if free >= 62 {
		return math.MaxInt64
	}
	n := int64(1) << free
	if p.Addr().Is4() {
		return max(n-2, 0)
	}
	return n - 1
}
