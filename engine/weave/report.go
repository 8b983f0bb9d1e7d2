package weave

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/moat-platform/moat/state"
)

// report is the part of the router's GET /report JSON that moat reads
// (Weave Net 2.8's WeaveStatus). Unknown fields are ignored: the report
// carries much more than moat plans on.
type report struct {
	Ready   bool
	Version string
	Router  *struct {
		Encryption bool
		Name       string
		NickName   string
		Peers      []struct {
			Name        string
			NickName    string
			Connections []struct {
				Established bool
			}
		}
		Connections []struct {
			Address  string
			Outbound bool
			State    string
			Info     string
			Attrs    map[string]any
		}
		Targets []string
	}
	IPAM *struct {
		Range         string
		DefaultSubnet string
		ActiveIPs     int
		Entries       []struct {
			Token    string
			Size     uint32
			Peer     string
			Nickname string
		}
		PendingClaims []struct {
			Ident string
			CIDR  string
		}
	}
	DNS *struct {
		Entries []struct {
			Hostname    string
			Origin      string
			ContainerID string
			Address     string
			Tombstone   int64
		}
	}
	Plugin *struct {
		MeshDriverName string
	}
}

// ParseReport converts the router's JSON report into moat's Weave state.
func ParseReport(data []byte) (*state.Weave, error) {
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("weave report: invalid JSON: %w", err)
	}
	if r.Router == nil || r.Router.Name == "" {
		return nil, fmt.Errorf("weave report: no router section (is this a Weave Net router?)")
	}
	w := &state.Weave{
		Version:    r.Version,
		Name:       r.Router.Name,
		NickName:   r.Router.NickName,
		Encryption: r.Router.Encryption,
		Targets:    append([]string{}, r.Router.Targets...),
		Exposed:    []string{},
	}
	for _, c := range r.Router.Connections {
		enc, _ := c.Attrs["encrypted"].(bool)
		w.Connections = append(w.Connections, state.WeaveConnection{
			Address: c.Address, Outbound: c.Outbound, State: c.State, Info: c.Info,
			Encrypted: enc && c.State == "established",
			Peer:      remotePeer(c.State, c.Info),
		})
	}
	for _, p := range r.Router.Peers {
		n := 0
		for _, c := range p.Connections {
			if c.Established {
				n++
			}
		}
		w.Peers = append(w.Peers, state.WeavePeer{Name: p.Name, NickName: p.NickName, Established: n})
	}
	if r.IPAM != nil {
		ip := &state.WeaveIPAM{Range: r.IPAM.Range, DefaultSubnet: r.IPAM.DefaultSubnet, ActiveIPs: r.IPAM.ActiveIPs}
		for _, e := range r.IPAM.Entries {
			ip.Entries = append(ip.Entries, state.WeaveIPAMEntry{Token: e.Token, Size: e.Size, Peer: e.Peer, NickName: e.Nickname})
		}
		for _, c := range r.IPAM.PendingClaims {
			ip.PendingClaims = append(ip.PendingClaims, state.WeaveIPAMClaim{Ident: c.Ident, CIDR: c.CIDR})
		}
		w.IPAM = ip
	}
	if r.DNS != nil {
		for _, e := range r.DNS.Entries {
			w.DNS = append(w.DNS, state.WeaveDNSEntry{Hostname: e.Hostname, Address: e.Address,
				ContainerID: e.ContainerID, Origin: e.Origin, Tombstone: e.Tombstone})
		}
	}
	if r.Plugin != nil {
		w.MeshDriver = r.Plugin.MeshDriverName
	}
	return w, nil
}

// remotePeer extracts the remote peer's name from an established
// connection's info ("[encrypted ]sleeve 7a:..:02(nick)"): the last field,
// without the nickname.
func remotePeer(st, info string) string {
	if st != "established" && st != "pending" {
		return ""
	}
	f := strings.Fields(info)
	if len(f) == 0 {
		return ""
	}
	p := f[len(f)-1]
	if i := strings.IndexByte(p, '('); i > 0 {
		p = p[:i]
	}
	return p
}
