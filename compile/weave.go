package compile

import (
	"net"
	"slices"

	"github.com/moat-platform/moat/state"
)

// WeavePort is the router's default mesh port, added to a peer written
// without one (the router does the same).
const WeavePort = "6783"

// weave returns the router state the platform asks for, or nil when the
// LANs are not on Weave.
func (c *compiler) weave() *state.WeaveDesired {
	if c.rt.driver != DriverWeave {
		return nil
	}
	w := c.repo.Platform.Network.Weave
	d := &state.WeaveDesired{Peers: []string{}, Encrypted: w.PasswordFile != ""}
	for _, p := range w.Peers {
		d.Peers = append(d.Peers, PeerAddress(p))
	}
	slices.Sort(d.Peers)
	d.Peers = slices.Compact(d.Peers)
	return d
}

// PeerAddress is a peer in the router's form, host:port.
func PeerAddress(p string) string {
	if _, _, err := net.SplitHostPort(p); err == nil {
		return p
	}
	return net.JoinHostPort(p, WeavePort)
}
