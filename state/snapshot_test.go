package state

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleObserved() *Observed {
	mgd := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: "prod"}
	return &Observed{
		Networks: []Network{
			{ID: "n2", Name: "moat-t2-lan", Driver: "bridge", Internal: true, Subnet: "10.2.0.0/24", Labels: mgd},
			{ID: "n1", Name: "moat-t1-lan", Driver: "bridge", Subnet: "10.1.0.0/24", Labels: mgd},
		},
		Containers: []Container{
			{ID: "c2", Name: "intruder", Image: "busybox", State: "running", Networks: []string{"moat-t1-lan"}},
			{ID: "c1", Name: "moat-t1-web-1", Image: "echo:1", State: "exited", Labels: mgd,
				Networks: []string{"moat-t2-lan", "moat-t1-lan"}},
		},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	obs := sampleObserved()
	before := Fingerprint(obs)
	var buf bytes.Buffer
	when := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", CreatedAt: when, Observed: obs}); err != nil {
		t.Fatal(err)
	}
	// The caller's slices are not reordered by writing.
	if obs.Networks[0].Name != "moat-t2-lan" || obs.Containers[1].Networks[0] != "moat-t2-lan" {
		t.Fatal("WriteSnapshot reordered the caller's Observed")
	}
	snap, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, buf.String())
	}
	if snap.Instance != "prod" || !snap.CreatedAt.Equal(when) {
		t.Errorf("snapshot = %+v", snap)
	}
	got := snap.Observed
	if Fingerprint(got) != before {
		t.Error("fingerprint changed across the round trip")
	}
	if got.Networks[0].Name != "moat-t1-lan" || got.Containers[0].Name != "intruder" {
		t.Errorf("not sorted: %+v", got)
	}
	if !reflect.DeepEqual(got.Containers[1].Networks, []string{"moat-t1-lan", "moat-t2-lan"}) {
		t.Errorf("container networks not sorted: %v", got.Containers[1].Networks)
	}
	if got.Volumes != nil {
		t.Errorf("volumes not listed must stay nil, got %v", got.Volumes)
	}
	// Writing twice gives the same bytes: exports diff cleanly.
	var again bytes.Buffer
	if err := WriteSnapshot(&again, snap); err != nil {
		t.Fatal(err)
	}
	if again.String() != buf.String() {
		t.Errorf("second export differs:\n%s\n---\n%s", buf.String(), again.String())
	}
}

func TestSnapshotEmptyAndVolumes(t *testing.T) {
	var buf bytes.Buffer
	obs := &Observed{Volumes: []Volume{{Name: "b"}, {Name: "a", Labels: map[string]string{"k": "v"}}}}
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "i", Observed: obs}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"networks": []`) {
		t.Errorf("empty networks should be written as []:\n%s", buf.String())
	}
	snap, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Observed; len(got.Volumes) != 2 || got.Volumes[0].Name != "a" {
		t.Errorf("volumes = %+v", got.Volumes)
	}
}

func TestWriteSnapshotRejects(t *testing.T) {
	if err := WriteSnapshot(io.Discard, &Snapshot{Observed: sampleObserved()}); err == nil {
		t.Error("missing instance accepted")
	}
	if err := WriteSnapshot(io.Discard, &Snapshot{Instance: "x"}); err == nil {
		t.Error("nil observed accepted")
	}
	if err := WriteSnapshot(io.Discard, nil); err == nil {
		t.Error("nil snapshot accepted")
	}
}

func TestReadSnapshotCorrupt(t *testing.T) {
	valid := func() map[string]any {
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: sampleObserved()}); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "fingerprint") // cases below edit content on purpose
		return m
	}
	enc := func(m map[string]any) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	edit := func(f func(m map[string]any)) string {
		m := valid()
		f(m)
		return enc(m)
	}
	obsOf := func(m map[string]any) map[string]any { return m["observed"].(map[string]any) }
	container0 := func(m map[string]any) map[string]any {
		return obsOf(m)["containers"].([]any)[0].(map[string]any)
	}

	cases := []struct {
		name, input, want string
	}{
		{"empty", "", "empty input"},
		{"whitespace", "  \n", "empty input"},
		{"not json", "hello", "invalid JSON: line 1, column 1"},
		{"truncated", `{"format":"moat-state","version":1,`, "invalid JSON"},
		{"syntax error line", "{\n\"format\": \"moat-state\",\n\"version\": 1 1}", "line 3"},
		{"array", `[]`, "invalid JSON"},
		{"unknown top field", edit(func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"unknown nested field", edit(func(m map[string]any) { container0(m)["env"] = []string{"A=b"} }), `unknown field "env"`},
		{"wrong type", edit(func(m map[string]any) { m["version"] = "1" }), "invalid JSON"},
		{"missing format", edit(func(m map[string]any) { delete(m, "format") }), `missing "format"`},
		{"plan file", `{"format":"moat-plan","version":1}`, `format is "moat-plan"`},
		{"missing version", edit(func(m map[string]any) { delete(m, "version") }), `missing "version"`},
		{"future version", edit(func(m map[string]any) { m["version"] = 2 }), "unsupported version 2"},
		{"missing instance", edit(func(m map[string]any) { delete(m, "instance") }), `missing "instance"`},
		{"missing observed", edit(func(m map[string]any) { delete(m, "observed") }), `missing "observed"`},
		{"null observed", edit(func(m map[string]any) { m["observed"] = nil }), `missing "observed"`},
		{"container without id", edit(func(m map[string]any) { delete(container0(m), "id") }), `containers[0] (intruder): missing "id"`},
		{"container without name", edit(func(m map[string]any) { delete(container0(m), "name") }), `containers[0]: missing "name"`},
		{"container slash name", edit(func(m map[string]any) { container0(m)["name"] = "/x" }), `must not start with "/"`},
		{"bad state", edit(func(m map[string]any) { container0(m)["state"] = "sleeping" }), `unknown state "sleeping"`},
		{"missing state", edit(func(m map[string]any) { delete(container0(m), "state") }), `missing "state"`},
		{"duplicate container", edit(func(m map[string]any) {
			cs := obsOf(m)["containers"].([]any)
			obsOf(m)["containers"] = append(cs, cs[0])
		}), "duplicate container name"},
		{"network without id", edit(func(m map[string]any) {
			delete(obsOf(m)["networks"].([]any)[0].(map[string]any), "id")
		}), `networks[0] (moat-t1-lan): missing "id"`},
		{"trailing data", enc(valid()) + `{}`, "unexpected data after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := ReadSnapshot(strings.NewReader(tc.input))
			if err == nil {
				t.Fatalf("accepted corrupt snapshot: %+v", snap)
			}
			if snap != nil {
				t.Error("returned state together with an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestReadSnapshotFingerprintMismatch(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: sampleObserved()}); err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(buf.String(), `"exited"`, `"running"`, 1)
	if _, err := ReadSnapshot(strings.NewReader(tampered)); err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Fatalf("tampered snapshot: err = %v", err)
	}
}

func TestReadSnapshotTooLarge(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"format":"moat-state","pad":"`),
		io.LimitReader(repeatReader('x'), MaxSnapshotSize+10))
	_, err := ReadSnapshot(r)
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("err = %v", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestFingerprintStable(t *testing.T) {
	a := sampleObserved()
	b := sampleObserved()
	// Reverse every slice and rebuild maps: same state, different order.
	b.Networks[0], b.Networks[1] = b.Networks[1], b.Networks[0]
	b.Containers[0], b.Containers[1] = b.Containers[1], b.Containers[0]
	b.Containers[0].Networks = []string{"moat-t1-lan", "moat-t2-lan"}
	b.Containers[0].Labels = map[string]string{LabelInstance: "prod", LabelManagedBy: ManagedBy}
	fa, fb := Fingerprint(a), Fingerprint(b)
	if fa != fb {
		t.Fatalf("order changed the fingerprint: %s vs %s", fa, fb)
	}
	if !strings.HasPrefix(fa, "sha256:") || len(fa) != len("sha256:")+64 {
		t.Errorf("fingerprint format: %s", fa)
	}
	if Fingerprint(&Observed{}) != Fingerprint(nil) {
		t.Error("nil and empty observed differ")
	}

	mutations := map[string]func(o *Observed){
		"container state":   func(o *Observed) { o.Containers[1].State = "running" },
		"container id":      func(o *Observed) { o.Containers[1].ID = "c9" },
		"container image":   func(o *Observed) { o.Containers[1].Image = "echo:2" },
		"container label":   func(o *Observed) { o.Containers[0].Labels = map[string]string{"a": "b"} },
		"container network": func(o *Observed) { o.Containers[0].Networks = nil },
		"network label":     func(o *Observed) { o.Networks[0].Labels = nil },
		"network internal":  func(o *Observed) { o.Networks[0].Internal = false },
		"network subnet":    func(o *Observed) { o.Networks[0].Subnet = "10.9.0.0/24" },
		"network id":        func(o *Observed) { o.Networks[0].ID = "n9" },
		"volumes listed":    func(o *Observed) { o.Volumes = []Volume{} },
		"container removed": func(o *Observed) { o.Containers = o.Containers[:1] },
		// Moving a string between fields must not collide.
		"shifted strings": func(o *Observed) {
			o.Containers[0].Name, o.Containers[0].Image = o.Containers[0].Name+o.Containers[0].Image[:1], o.Containers[0].Image[1:]
		},
	}
	for name, mut := range mutations {
		o := sampleObserved()
		mut(o)
		if Fingerprint(o) == fa {
			t.Errorf("%s: fingerprint did not change", name)
		}
	}
}

func TestFingerprintPinned(t *testing.T) {
	// Pinned so that an accidental change of the encoding (which would
	// make every saved plan stale) fails here first.
	got := Fingerprint(sampleObserved())
	const want = "sha256:9ccb5ed599d5eadecb860d8b5c1366856574400de59ca107db767dfd499198b5"
	if got != want {
		t.Errorf("Fingerprint(sample) = %s, want %s (changing the encoding makes saved plans stale: bump the v1 tag deliberately)", got, want)
	}
}

// TestObservedCarriesNoSecrets guards the snapshot's promise that it
// never contains secret values: Observed holds no env, command, mounts or
// spec. A new field must be reviewed and added here deliberately.
func TestObservedCarriesNoSecrets(t *testing.T) {
	allowed := map[string][]string{
		// Images: image references and ids, as the engine lists them.
		// Unenforceable: audit check names and the engine's reasons.
		// Secrets: Swarm secret objects' ids, names and labels; the
		// engine's list never carries values.
		// GatewayBridge: the node's docker_gwbridge as a Network (names,
		// subnet, interface, ICC option).
		"Observed":  {"Networks", "Containers", "Volumes", "Weave", "Images", "HostFirewall", "Secrets", "Unenforceable", "GatewayBridge"},
		"Network":   {"ID", "Name", "Driver", "Internal", "Subnet", "Bridge", "ICC", "Labels", "Attachable", "Encrypted"},
		"Secret":    {"ID", "Name", "Labels"},
		"Container": {"ID", "Name", "Image", "ImageID", "State", "Labels", "Networks", "NetworkIDs", "Volumes", "Addresses", "Inspect"},
		"Volume":    {"Name", "Labels"},
		// The router's report carries whether a password is set, never
		// the password; DNS entries are names and addresses.
		"Weave": {"Version", "Name", "NickName", "Encryption", "Targets", "Connections", "Peers",
			"IPAM", "DNS", "MeshDriver", "Exposed"},
		"WeaveConnection": {"Address", "Outbound", "State", "Encrypted", "Info", "Peer"},
		"WeaveDNSEntry":   {"Hostname", "Address", "ContainerID", "Origin", "Tombstone"},
	}
	for _, v := range []any{Observed{}, Network{}, Container{}, Volume{}, Secret{}, Weave{}, WeaveConnection{}, WeaveDNSEntry{}} {
		typ := reflect.TypeOf(v)
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		if !reflect.DeepEqual(got, allowed[typ.Name()]) {
			t.Errorf("%s fields = %v, reviewed set is %v: check that no secret value can reach a snapshot", typ.Name(), got, allowed[typ.Name()])
		}
	}
}

// Image ids and the resolved references round-trip through a snapshot and
// count in the fingerprint; a state without them (an older snapshot) keeps
// the fingerprint it had and has no Images, so image drift is not checked.
func TestSnapshotImages(t *testing.T) {
	old := sampleObserved()
	obs := sampleObserved()
	obs.Images = map[string]string{"localhost/app:1": "sha256:aa"}
	obs.Containers[0].ImageID = "sha256:bb"
	if Fingerprint(obs) == Fingerprint(old) {
		t.Fatal("image ids do not change the fingerprint")
	}
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: obs}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Observed.Images["localhost/app:1"] != "sha256:aa" || Fingerprint(got.Observed) != Fingerprint(obs) {
		t.Errorf("images lost in the round trip: %+v", got.Observed.Images)
	}
	buf.Reset()
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: old}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "images") {
		t.Errorf("a state without images writes them:\n%s", buf.String())
	}
	got, err = ReadSnapshot(&buf)
	if err != nil || got.Observed.Images != nil {
		t.Errorf("older snapshot: err %v, images %v (want nil: not checked)", err, got.Observed.Images)
	}
}

func TestResolveImage(t *testing.T) {
	m := map[string]string{"localhost/a/echo:1": "sha256:1", "alpine:latest": "sha256:2", "busybox@sha256:ff": "sha256:3"}
	for ref, want := range map[string]string{
		"localhost/a/echo:1": "sha256:1", "alpine": "sha256:2", "docker.io/library/alpine": "sha256:2",
		"busybox@sha256:ff": "sha256:3", "localhost/a/echo:2": "", "localhost:5000/x": "",
	} {
		if got := ResolveImage(m, ref); got != want {
			t.Errorf("ResolveImage(%q) = %q, want %q", ref, got, want)
		}
	}
	if ResolveImage(nil, "alpine") != "" {
		t.Error("nil images resolve")
	}
}

// The Swarm node's docker_gwbridge round-trips through a snapshot and its
// interface and ICC count in the fingerprint (host protection depends on
// them); a state without it keeps the fingerprint it had.
func TestSnapshotGatewayBridge(t *testing.T) {
	old := sampleObserved()
	obs := sampleObserved()
	obs.GatewayBridge = &Network{ID: "gw1", Name: GatewayBridgeNetwork, Driver: "bridge", Subnet: "172.18.0.0/16", Bridge: GatewayBridgeInterface, ICC: "false"}
	if Fingerprint(obs) == Fingerprint(old) {
		t.Fatal("the gateway bridge does not change the fingerprint")
	}
	other := sampleObserved()
	other.GatewayBridge = &Network{ID: "gw1", Name: GatewayBridgeNetwork, Driver: "bridge", Subnet: "172.18.0.0/16", Bridge: "docker_gwbridge", ICC: "false"}
	if Fingerprint(obs) == Fingerprint(other) {
		t.Fatal("the gateway bridge's interface does not count in the fingerprint")
	}
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: obs}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if gb := got.Observed.GatewayBridge; gb == nil || !reflect.DeepEqual(*gb, *obs.GatewayBridge) || Fingerprint(got.Observed) != Fingerprint(obs) {
		t.Errorf("gateway bridge lost in the round trip: %+v", got.Observed.GatewayBridge)
	}
	buf.Reset()
	if err := WriteSnapshot(&buf, &Snapshot{Instance: "prod", Observed: old}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "gatewayBridge") {
		t.Errorf("a state without the gateway bridge writes it:\n%s", buf.String())
	}
}
