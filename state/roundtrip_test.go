package state

import (
	"bytes"
	"testing"
)

// A snapshot whose image list came back empty (the file omits it) must
// read back with the fingerprint it was written with.
func TestSnapshotRoundTripWithWeaveAndNoImages(t *testing.T) {
	obs := &Observed{
		Networks:   []Network{{ID: "n1", Name: "i.a.lan", Driver: "x"}},
		Containers: []Container{{ID: "c1", Name: "i.a.b.1", State: "running", ImageID: "sha256:1"}},
		Images:     map[string]string{},
		Weave: &Weave{Name: "aa:bb", Targets: []string{"b:1", "a:1"},
			Connections: []WeaveConnection{{Address: "a:1", State: "established", Encrypted: true, Outbound: true}},
			IPAM:        &WeaveIPAM{Range: "10.0.0.0/8", PendingClaims: []WeaveIPAMClaim{}},
			Exposed:     []string{}},
	}
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "i", Observed: obs}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
}

// "Volumes listed, none found" and "volumes not listed" plan differently
// (prune or not) and so fingerprint differently: both must survive the
// file. An empty list was dropped by omitempty and read back as "not
// listed", so every export of an instance without volumes (the Weave demo,
// an empty Swarm) failed its own fingerprint check in plan --live.
func TestSnapshotRoundTripKeepsAnEmptyVolumeList(t *testing.T) {
	for name, vols := range map[string][]Volume{"not listed": nil, "listed, none": {}, "one": {{Name: "i.a.v"}}} {
		obs := &Observed{Volumes: vols, Secrets: []Secret{}}
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, &Snapshot{Instance: "i", Observed: obs}); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSnapshot(&buf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if (got.Observed.Volumes == nil) != (vols == nil) {
			t.Errorf("%s: read back Volumes nil=%v", name, got.Observed.Volumes == nil)
		}
	}
}
