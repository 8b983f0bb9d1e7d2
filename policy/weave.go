package policy

import (
	"net"
	"net/netip"
)

// weave checks the platform's Weave settings against its driver and pool.
// Per-field syntax (loopback API, host:port peers, CIDR range) is the
// schema's; what needs two fields is here.
func (c *checker) weave() {
	p := c.platform
	if p == nil {
		return
	}
	w := p.Network.Weave
	switch {
	case p.Network.Driver == "weave" && w == nil:
		c.add(p.Pos("network", "driver"), "weave.driver",
			"driver weave needs network.weave: at least the router's api (e.g. 127.0.0.1:6784)")
		return
	case w == nil:
		return
	case p.Network.Driver != "weave":
		c.add(p.Pos("network", "weave"), "weave.driver",
			"network.weave is set but network.driver is %s; set driver: weave or remove network.weave", p.Network.Driver)
		return
	}
	if p.Network.Encrypted {
		c.add(p.Pos("network", "encrypted"), "weave.driver",
			"network.encrypted is for overlay networks; Weave encrypts with network.weave.passwordFile")
	}
	if w.Range != "" {
		rng, rOK := parsePrefix(w.Range)
		pool, pOK := parsePrefix(p.Network.Pool)
		if rOK && pOK && !within(pool, rng) {
			c.add(p.Pos("network", "pool"), "weave.pool-outside-range",
				"pool %s is not inside the Weave router's allocation range %s (network.weave.range): the router's plugin would refuse the LANs; choose a pool inside the range or start the router with a wider --ipalloc-range", pool, rng)
		}
		if r, err := netip.ParsePrefix(w.Range); err == nil && r != r.Masked() {
			c.add(p.Pos("network", "weave", "range"), "structure.cidr",
				"range %s has host bits set; write it with its network address, %s", w.Range, r.Masked())
		}
	}
	if len(w.Peers) > 0 && w.PasswordFile == "" {
		c.add(p.Pos("network", "weave", "peers"), "weave.unencrypted-peers",
			"peers are listed but network.weave.passwordFile is not: connections between routers would be unencrypted; set passwordFile to the file the router's --password comes from")
	}
	seen := map[string]bool{}
	for i, peer := range w.Peers {
		host, _, err := net.SplitHostPort(peer)
		if err != nil {
			continue // the schema reports the syntax
		}
		if a, err := netip.ParseAddr(host); err == nil && (a.IsLoopback() || a.IsUnspecified()) {
			c.add(p.Pos("network", "weave", "peers", i), "weave.peer",
				"peer %s is this host; list other routers' addresses", peer)
		}
		if seen[peer] {
			c.add(p.Pos("network", "weave", "peers", i), "weave.peer", "peer %s is listed twice", peer)
		}
		seen[peer] = true
	}
}
