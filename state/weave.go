package state

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Weave is the live state of a Weave Net router, as moat reads it: the
// router's GET /report (one call) and the addresses on the router's bridge
// (read from the host: `weave expose` puts them there, and the report does
// not say). These are moat's own types: the weave module cannot be
// imported, and moat keeps only what it plans and reports on. Slices are
// sorted (see normalized).
type Weave struct {
	// Version is the router's version string.
	Version string `json:"version"`
	// Name and NickName identify the local peer.
	Name     string `json:"name"`
	NickName string `json:"nickName,omitempty"`
	// Encryption is true when the router was started with a password.
	Encryption bool `json:"encryption"`
	// Targets are the addresses the router has been told to connect to
	// (`weave connect`, POST /connect); /forget removes them.
	Targets []string `json:"targets"`
	// Connections are the router's own connections, established or being
	// attempted, one per remote address.
	Connections []WeaveConnection `json:"connections"`
	// Peers are every peer of the mesh the router knows about (itself too).
	Peers []WeavePeer `json:"peers"`
	IPAM  *WeaveIPAM  `json:"ipam,omitempty"`
	// DNS entries, including tombstones (deleted entries kept for gossip).
	DNS []WeaveDNSEntry `json:"dns"`
	// MeshDriver is the Docker driver name of the local-scope plugin
	// ("weavemesh" unless the socket was renamed); "" when not in plugin mode.
	MeshDriver string `json:"meshDriver,omitempty"`
	// Exposed are the CIDRs on the router's bridge: each one routes a
	// subnet of the mesh to the host.
	Exposed []string `json:"exposed"`
}

// WeaveConnection is one of the router's connections.
type WeaveConnection struct {
	Address  string `json:"address"` // host:port of the remote end
	Outbound bool   `json:"outbound"`
	// State: established, pending, connecting, retrying, failed, waiting.
	State string `json:"state"`
	// Encrypted is true only for an established connection the router
	// encrypts (both ends have the password, the remote is not trusted).
	Encrypted bool   `json:"encrypted"`
	Info      string `json:"info,omitempty"`
	// Peer is the remote peer's name when the router reports it.
	Peer string `json:"peer,omitempty"`
}

// WeavePeer is a peer of the mesh.
type WeavePeer struct {
	Name     string `json:"name"`
	NickName string `json:"nickName,omitempty"`
	// Established counts the peer's established connections.
	Established int `json:"established"`
}

// WeaveIPAM is the allocator's state.
type WeaveIPAM struct {
	Range         string           `json:"range"`
	DefaultSubnet string           `json:"defaultSubnet,omitempty"`
	ActiveIPs     int              `json:"activeIPs"`
	Entries       []WeaveIPAMEntry `json:"entries"`
	PendingClaims []WeaveIPAMClaim `json:"pendingClaims,omitempty"`
}

// WeaveIPAMEntry is a range of the allocation ring owned by a peer.
type WeaveIPAMEntry struct {
	Token    string `json:"token"` // first address
	Size     uint32 `json:"size"`
	Peer     string `json:"peer"`
	NickName string `json:"nickName,omitempty"`
}

// WeaveIPAMClaim is an address claim still waiting for the ring.
type WeaveIPAMClaim struct {
	Ident string `json:"ident"`
	CIDR  string `json:"cidr"`
}

// WeaveDNSEntry is a weaveDNS record.
type WeaveDNSEntry struct {
	Hostname    string `json:"hostname"`
	Address     string `json:"address"`
	ContainerID string `json:"containerID"`
	Origin      string `json:"origin"`
	// Tombstone is non-zero for a deleted entry (when it was deleted).
	Tombstone int64 `json:"tombstone,omitempty"`
}

// normalizedWeave returns a sorted copy of w (nil stays nil), with nil
// slices as empty ones so that JSON shows [].
func normalizedWeave(w *Weave) *Weave {
	if w == nil {
		return nil
	}
	out := *w
	out.Targets = sortedStrings(w.Targets)
	out.Exposed = sortedStrings(w.Exposed)
	out.Connections = slices.Clone(w.Connections)
	if out.Connections == nil {
		out.Connections = []WeaveConnection{}
	}
	slices.SortFunc(out.Connections, func(a, b WeaveConnection) int {
		return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.State, b.State), cmp.Compare(a.Info, b.Info))
	})
	out.Peers = slices.Clone(w.Peers)
	if out.Peers == nil {
		out.Peers = []WeavePeer{}
	}
	slices.SortFunc(out.Peers, func(a, b WeavePeer) int { return cmp.Compare(a.Name, b.Name) })
	out.DNS = slices.Clone(w.DNS)
	if out.DNS == nil {
		out.DNS = []WeaveDNSEntry{}
	}
	slices.SortFunc(out.DNS, func(a, b WeaveDNSEntry) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Address, b.Address),
			cmp.Compare(a.ContainerID, b.ContainerID), cmp.Compare(a.Origin, b.Origin))
	})
	if w.IPAM != nil {
		ipam := *w.IPAM
		ipam.Entries = slices.Clone(ipam.Entries)
		if ipam.Entries == nil {
			ipam.Entries = []WeaveIPAMEntry{}
		}
		slices.SortFunc(ipam.Entries, func(a, b WeaveIPAMEntry) int { return cmp.Compare(a.Token, b.Token) })
		ipam.PendingClaims = slices.Clone(ipam.PendingClaims)
		slices.SortFunc(ipam.PendingClaims, func(a, b WeaveIPAMClaim) int {
			return cmp.Or(cmp.Compare(a.Ident, b.Ident), cmp.Compare(a.CIDR, b.CIDR))
		})
		out.IPAM = &ipam
	}
	return &out
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// validateWeave checks what planning relies on: a router name, and an
// address on every connection and DNS entry.
func validateWeave(w *Weave) error {
	if w == nil {
		return nil
	}
	if w.Name == "" {
		return errors.New("observed.weave: missing \"name\"")
	}
	for i, c := range w.Connections {
		if c.Address == "" {
			return fmt.Errorf("observed.weave.connections[%d]: missing \"address\"", i)
		}
	}
	for i, e := range w.DNS {
		if e.Address == "" {
			return fmt.Errorf("observed.weave.dns[%d] (%s): missing \"address\"", i, e.Hostname)
		}
	}
	return nil
}

// fingerprintWeave adds what peer planning looks at: the router, its
// targets, its connections and the exposed CIDRs.
func fingerprintWeave(fw *fpWriter, w *Weave) {
	n := normalizedWeave(w)
	fw.str("weave")
	fw.str(n.Name)
	fw.bool(n.Encryption)
	fw.num(len(n.Targets))
	for _, t := range n.Targets {
		fw.str(t)
	}
	fw.num(len(n.Connections))
	for _, c := range n.Connections {
		fw.str(c.Address)
		fw.bool(c.Outbound)
		fw.str(c.State)
		fw.bool(c.Encrypted)
	}
	fw.num(len(n.Exposed))
	for _, e := range n.Exposed {
		fw.str(e)
	}
}

// WeaveDesired is the router state the platform config asks for.
type WeaveDesired struct {
	// Peers are the addresses (host:port) the router must have as
	// targets and be connected to, sorted; every other target is
	// forgotten.
	Peers []string `json:"peers"`
	// Encrypted: a password file is configured, so the router must run
	// with a password and every connection must be encrypted.
	Encrypted bool `json:"encrypted"`
}
