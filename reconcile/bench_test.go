package reconcile

import (
	"fmt"
	"testing"

	"github.com/moat-platform/moat/state"
)

// synth builds an instance of n containers (ten per tenant, each tenant
// one LAN) and the live state matching it, with the first changed
// containers' spec hash differing.
func synth(n, changed int) (*state.Desired, *state.Observed) {
	d := &state.Desired{Instance: "bench"}
	o := &state.Observed{}
	lbl := func(kind, tenant string) map[string]string {
		return map[string]string{state.LabelManagedBy: state.ManagedBy, state.LabelInstance: "bench",
			state.LabelKind: kind, state.LabelTenant: tenant}
	}
	for i := 0; i < n; i++ {
		tenant := fmt.Sprintf("t%04d", i/10)
		lan := "bench." + tenant + ".lan"
		if i%10 == 0 {
			subnet := fmt.Sprintf("10.%d.%d.0/24", i/2560, (i/10)%256)
			d.Networks = append(d.Networks, state.NetworkSpec{Name: lan, Driver: "bridge", Subnet: subnet, Labels: lbl(state.KindLan, tenant)})
			o.Networks = append(o.Networks, state.Network{ID: "n" + lan, Name: lan, Driver: "bridge", Subnet: subnet, Labels: lbl(state.KindLan, tenant)})
		}
		name := fmt.Sprintf("bench.%s.app.%d", tenant, i%10+1)
		l := lbl(state.KindApp, tenant)
		l[state.LabelSpecHash] = "h1"
		l[state.LabelSpecParts] = "env=1,image=1"
		d.Containers = append(d.Containers, state.ContainerSpec{Name: name, Image: "app:1", Labels: l,
			Networks: []state.Endpoint{{Network: lan, Aliases: []string{"app"}}}})
		live := make(map[string]string, len(l))
		for k, v := range l {
			live[k] = v
		}
		if i < changed {
			live[state.LabelSpecHash] = "h0"
			live[state.LabelSpecParts] = "env=0,image=1"
		}
		o.Containers = append(o.Containers, state.Container{ID: "c" + name, Name: name, Image: "app:1",
			State: "running", Labels: live, Networks: []string{lan}})
	}
	return d, o
}

// BenchmarkCompute: go test ./reconcile -run '^$' -bench Compute -benchmem
func BenchmarkCompute(b *testing.B) {
	for _, bc := range []struct {
		name    string
		changed int
		empty   bool
	}{
		{name: "noop-10000"},
		{name: "changed-100-of-10000", changed: 100},
		{name: "create-10000", empty: true},
		{name: "recreate-10000", changed: 10000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, o := synth(10000, bc.changed)
			if bc.empty {
				o = &state.Observed{}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compute(d, o, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
