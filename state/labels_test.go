package state

import "testing"

// An image can carry moat's labels; the container list merges them into
// every container made from it. Only a container with moat's name shape is
// believed.
func TestContainerLabelsDistrustsImageLabels(t *testing.T) {
	moat := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: "demo", LabelTenant: "acme", "app": "x"}
	if got := ContainerLabels("demo.acme.web.1", moat, "demo"); !Managed(got, "demo") {
		t.Errorf("moat's own container lost its labels: %v", got)
	}
	got := ContainerLabels("someones-container", moat, "demo")
	if Managed(got, "demo") || got[LabelTenant] != "" || got["app"] != "x" {
		t.Errorf("foreign name: labels %v, want moat's dropped and the rest kept", got)
	}
	if moat[LabelManagedBy] != ManagedBy {
		t.Error("input map modified")
	}
	other := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: "prod"}
	if got := ContainerLabels("x", other, "demo"); !Managed(got, "prod") {
		t.Error("another instance's labels are not this instance's business")
	}
}

// On Swarm moat's objects are services; a container named like one of them
// ("demo--acme--web--1.1.<task>", or one started by hand under such a name)
// is not believed because of its image's labels.
func TestContainerLabelsOnSwarmNames(t *testing.T) {
	moat := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: "demo"}
	if got := ContainerLabels("demo--acme--web--1", moat, "demo"); Managed(got, "demo") {
		t.Errorf("a container with a Swarm service's name kept moat's labels: %v", got)
	}
}
