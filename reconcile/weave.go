package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-platform/moat/state"
)

// Weave plan vocabulary: a peer is a router address (host:port). Connect
// and forget are the router API's verbs; everything else the router's
// state shows is reported, never changed: moat does not own the router,
// and a wrong repair (dropping a DNS entry, unexposing a subnet) could cut
// off whoever set it up on purpose.
const (
	KindPeer        Kind = "peer"
	VerbConnectPeer Verb = "connect-peer"
	VerbForgetPeer  Verb = "forget-peer"
)

// Causes of the Weave operations.
const (
	causePeerMissing   = "listed in network.weave.peers, not a target of the router"
	causePeerUnlisted  = "a target of the router, not listed in network.weave.peers"
	causeNoWeaveState  = "the live state has no Weave router state"
	weaveEstablished   = "established"
	causeRouterNoCrypt = "the router runs without a password but network.weave.passwordFile is set: restart it with --password from that file"
)

// ErrNoWeaveState: the platform runs on Weave but the snapshot has no
// router state (a snapshot exported before, or the router was not read).
var ErrNoWeaveState = errors.New("reconcile: " + causeNoWeaveState + " (export it with `moat state export` on the host)")

// weave plans the router's peers and reports its security drift.
func (c *computer) weave() error {
	want := c.d.Weave
	if want == nil {
		return nil
	}
	have := c.o.Weave
	if have == nil {
		return ErrNoWeaveState
	}
	reports := map[string][]string{} // peer address -> causes
	report := func(addr, cause string) { reports[addr] = append(reports[addr], cause) }

	targets := map[string]bool{}
	for _, t := range have.Targets {
		targets[peerAddr(t)] = true
	}
	established := map[string]*state.WeaveConnection{}
	conn := map[string]*state.WeaveConnection{}
	for i := range have.Connections {
		cn := &have.Connections[i]
		conn[cn.Address] = cn
		if cn.State == weaveEstablished {
			established[cn.Address] = cn
		}
	}
	desired := map[string]bool{}
	for _, p := range want.Peers {
		desired[p] = true
		switch {
		case !targets[p]:
			c.add(Operation{Resource: ResourceID{KindPeer, p}, Action: Create, Verb: VerbConnectPeer, Cause: causePeerMissing})
		case established[p] == nil:
			st := "not connected yet"
			if cn := conn[p]; cn != nil {
				st = strings.TrimSpace(cn.State + ": " + cn.Info)
			}
			report(p, "listed, but the connection is "+st)
		}
	}
	for t := range targets {
		if !desired[t] {
			c.add(Operation{Resource: ResourceID{KindPeer, t}, Action: Delete, Verb: VerbForgetPeer, Cause: causePeerUnlisted})
		}
	}
	for addr, cn := range established {
		if !cn.Encrypted {
			why := "connection unencrypted"
			if !have.Encryption {
				why += " (the router has no password)"
			}
			if cn.Peer != "" {
				why += " to peer " + cn.Peer
			}
			report(addr, why)
		}
		if desired[addr] || targets[addr] {
			continue
		}
		if cn.Outbound {
			report(addr, "connected, not listed in network.weave.peers (forgotten: the connection stays until it drops)")
		} else {
			report(addr, "inbound connection from a peer not listed in network.weave.peers")
		}
	}
	if want.Encrypted && !have.Encryption {
		report(have.Name, causeRouterNoCrypt)
	}
	for addr, causes := range reports {
		c.add(Operation{Resource: ResourceID{KindPeer, addr}, Action: Report, Verb: VerbReport,
			Cause: strings.Join(causes, "; ")})
	}
	c.weaveExposure()
	return nil
}

// lanSubnet is a desired tenant LAN's subnet.
type lanSubnet struct {
	name   string
	tenant string
	p      netip.Prefix
}

// weaveExposure reports what puts a tenant subnet within reach of someone
// else on the router's one bridge: a subnet exposed to the host, a DNS name
// on a tenant subnet for a container that is not moat's, and an address of
// a tenant subnet held by a container that is not on that LAN.
func (c *computer) weaveExposure() {
	var lans []lanSubnet
	for i := range c.d.Networks {
		n := &c.d.Networks[i]
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			lans = append(lans, lanSubnet{n.Name, n.Labels[state.LabelTenant], p.Masked()})
		}
	}
	find := func(s string) *lanSubnet {
		a, err := netip.ParseAddr(s)
		if err != nil {
			if p, perr := netip.ParsePrefix(s); perr == nil {
				a = p.Addr()
			} else {
				return nil
			}
		}
		for i := range lans {
			if lans[i].p.Contains(a) {
				return &lans[i]
			}
		}
		return nil
	}
	netReports := map[string][]string{}
	w := c.o.Weave
	for _, e := range w.Exposed {
		if l := find(e); l != nil {
			netReports[l.name] = append(netReports[l.name], fmt.Sprintf(
				"subnet %s exposed to the host: the Weave bridge holds %s (weave expose), so the host routes to this LAN", l.p, e))
		}
	}
	ours := map[string]bool{}
	for i := range c.o.Containers {
		ct := &c.o.Containers[i]
		if state.Managed(ct.Labels, c.inst) {
			ours[ct.ID] = true
		}
	}
	for _, e := range w.DNS {
		if e.Tombstone != 0 || ours[e.ContainerID] {
			continue
		}
		if l := find(e.Address); l != nil {
			netReports[l.name] = append(netReports[l.name], fmt.Sprintf(
				"weave DNS entry %s -> %s on this LAN's subnet for container %s, which is not moat's",
				strings.TrimSuffix(e.Hostname, "."), e.Address, short(e.ContainerID)))
		}
	}
	for name, causes := range netReports {
		slices.Sort(causes)
		// Network "weave" keeps the ID apart from other reports on the LAN.
		c.add(Operation{Resource: ResourceID{KindNetwork, name}, Action: Report, Verb: VerbReport,
			Network: "weave", Cause: strings.Join(causes, "; "), Tenant: c.dNet[name].Labels[state.LabelTenant]})
	}
	for i := range c.o.Containers {
		ct := &c.o.Containers[i]
		var causes []string
		for _, net := range slices.Sorted(maps.Keys(ct.Addresses)) {
			ip := ct.Addresses[net]
			l := find(ip)
			if l == nil || net == l.name {
				continue
			}
			causes = append(causes, fmt.Sprintf("holds %s, an address of LAN %s, on network %s without being on that LAN", ip, l.name, net))
		}
		if len(causes) > 0 {
			c.add(Operation{Resource: ResourceID{KindContainer, ct.Name}, Action: Report, Verb: VerbReport,
				Network: "weave", Cause: strings.Join(causes, "; "), Tenant: ct.Labels[state.LabelTenant]})
		}
	}
}

// peerAddr puts a router target in host:port form.
func peerAddr(t string) string {
	if _, err := netip.ParseAddrPort(t); err == nil || strings.Contains(t, ":") {
		return t
	}
	return t + ":6783"
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
