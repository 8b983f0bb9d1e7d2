package reconcile

import (
	"errors"
	"strings"
	"testing"

	"github.com/moat-platform/moat/state"
)

// weaveCase is a platform of one LAN on Weave with a router in some state.
func weaveCase(w *state.Weave, peers ...string) (*state.Desired, *state.Observed) {
	labels := map[string]string{state.LabelManagedBy: "moat", state.LabelInstance: "p",
		state.LabelTenant: "acme", state.LabelKind: "lan", state.LabelLan: "lan"}
	d := &state.Desired{Instance: "p",
		Networks: []state.NetworkSpec{{Name: "p.acme.lan", Driver: "weavemesh", IPAMDriver: "weavemesh",
			Internal: true, Subnet: "10.80.1.0/24", Gateway: "10.80.1.1", Labels: labels}},
		Weave: &state.WeaveDesired{Peers: peers, Encrypted: true}}
	o := &state.Observed{
		Networks: []state.Network{{ID: "n1", Name: "p.acme.lan", Driver: "weavemesh", Internal: true,
			Subnet: "10.80.1.0/24", Labels: labels}},
		Weave: w,
	}
	return d, o
}

func planOf(t *testing.T, d *state.Desired, o *state.Observed) string {
	t.Helper()
	p, err := Compute(d, o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p.String()
}

func TestWeavePeers(t *testing.T) {
	enc := func(addr string, out bool) state.WeaveConnection {
		return state.WeaveConnection{Address: addr, Outbound: out, State: "established", Encrypted: true, Peer: "7a:02"}
	}
	tests := []struct {
		name  string
		w     state.Weave
		peers []string
		want  string
	}{
		{"in sync", state.Weave{Name: "7a:01", Encryption: true, Targets: []string{"10.0.0.2:6783"},
			Connections: []state.WeaveConnection{enc("10.0.0.2:6783", true)}}, []string{"10.0.0.2:6783"},
			"No changes.\n"},
		{"listed, not a target", state.Weave{Name: "7a:01", Encryption: true}, []string{"10.0.0.2:6783"},
			"+   peer/10.0.0.2:6783 connect  # listed in network.weave.peers, not a target of the router\n" +
				"Plan: 1 to create, 0 to recreate, 0 to update, 0 to remove, 0 reported.\n"},
		{"a target, not listed", state.Weave{Name: "7a:01", Encryption: true, Targets: []string{"10.0.0.9"},
			Connections: []state.WeaveConnection{{Address: "10.0.0.9:6783", Outbound: true, State: "failed", Info: "connection refused"}}},
			nil,
			"-   peer/10.0.0.9:6783 forget  # a target of the router, not listed in network.weave.peers\n" +
				"Plan: 0 to create, 0 to recreate, 0 to update, 1 to remove, 0 reported.\n"},
		{"listed, failing", state.Weave{Name: "7a:01", Encryption: true, Targets: []string{"10.0.0.2:6783"},
			Connections: []state.WeaveConnection{{Address: "10.0.0.2:6783", Outbound: true, State: "retrying", Info: "connection refused"}}},
			[]string{"10.0.0.2:6783"},
			"!   peer/10.0.0.2:6783 report  # listed, but the connection is retrying: connection refused\n" +
				"Plan: 0 to create, 0 to recreate, 0 to update, 0 to remove, 1 reported.\n"},
		{"unencrypted", state.Weave{Name: "7a:01", Targets: []string{"10.0.0.2:6783"},
			Connections: []state.WeaveConnection{{Address: "10.0.0.2:6783", Outbound: true, State: "established", Peer: "7a:02"}}},
			[]string{"10.0.0.2:6783"},
			"!   peer/10.0.0.2:6783 report  # connection unencrypted (the router has no password) to peer 7a:02\n" +
				"!   peer/7a:01 report  # " + causeRouterNoCrypt + "\n" +
				"Plan: 0 to create, 0 to recreate, 0 to update, 0 to remove, 2 reported.\n"},
		{"inbound unlisted", state.Weave{Name: "7a:01", Encryption: true,
			Connections: []state.WeaveConnection{enc("10.0.0.7:41234", false)}}, nil,
			"!   peer/10.0.0.7:41234 report  # inbound connection from a peer not listed in network.weave.peers\n" +
				"Plan: 0 to create, 0 to recreate, 0 to update, 0 to remove, 1 reported.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			d, o := weaveCase(&w, tt.peers...)
			if got := planOf(t, d, o); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestWeaveExposureReports(t *testing.T) {
	d, o := weaveCase(&state.Weave{Name: "7a:01", Encryption: true,
		Exposed: []string{"10.80.1.1/24", "10.64.0.1/16"},
		DNS: []state.WeaveDNSEntry{
			{Hostname: "evil.weave.local.", Address: "10.80.1.9", ContainerID: "0123456789abcdef0123"},
			{Hostname: "gone.weave.local.", Address: "10.80.1.8", ContainerID: "fff", Tombstone: 17},
			{Hostname: "ours.weave.local.", Address: "10.80.1.2", ContainerID: "c-ours"},
			{Hostname: "elsewhere.weave.local.", Address: "10.64.0.5", ContainerID: "x"},
		}})
	o.Containers = []state.Container{
		{ID: "c-ours", Name: "p.acme.app.1", State: "running", Networks: []string{"p.acme.lan"},
			Labels:    map[string]string{state.LabelManagedBy: "moat", state.LabelInstance: "p", state.LabelTenant: "acme"},
			Addresses: map[string]string{"p.acme.lan": "10.80.1.2"}},
		{ID: "c-rogue", Name: "rogue", State: "running", Networks: []string{"rogue-net"},
			Addresses: map[string]string{"rogue-net": "10.80.1.7"}},
	}
	got := planOf(t, d, o)
	for _, want := range []string{
		"!   network/p.acme.lan report  # subnet 10.80.1.0/24 exposed to the host: the Weave bridge holds 10.80.1.1/24 (weave expose), so the host routes to this LAN; weave DNS entry evil.weave.local -> 10.80.1.9 on this LAN's subnet for container 0123456789ab, which is not moat's\n",
		"!   container/rogue report  # holds 10.80.1.7, an address of LAN p.acme.lan, on network rogue-net without being on that LAN\n",
		"2 reported.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"gone", "ours", "elsewhere", "10.64.0.1"} {
		if strings.Contains(got, not) {
			t.Errorf("plan mentions %q:\n%s", not, got)
		}
	}
}

func TestWeaveNeedsRouterState(t *testing.T) {
	d, o := weaveCase(nil)
	if _, err := Compute(d, o, Options{}); !errors.Is(err, ErrNoWeaveState) {
		t.Fatalf("err = %v, want ErrNoWeaveState", err)
	}
}
