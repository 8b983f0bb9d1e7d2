package render

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moat-platform/moat/reconcile"
	"github.com/moat-platform/moat/state"
)

var update = flag.Bool("update", false, "rewrite render/testdata goldens")

func op(a reconcile.Action, v reconcile.Verb, k reconcile.Kind, name, network, tenant, cause string, deps ...string) reconcile.Operation {
	o := reconcile.Operation{Resource: reconcile.ResourceID{Kind: k, Name: name}, Action: a, Verb: v,
		Cause: cause, Tenant: tenant, Network: network, DependsOn: deps}
	o.ID = reconcile.OpID(v, o.Resource, network)
	return o
}

// samplePlan has one operation of every verb, the way Compute orders them.
func samplePlan() *reconcile.Plan {
	lan := &state.NetworkSpec{Name: "prod.acme.lan", Driver: "bridge", Subnet: "10.20.1.0/24", Gateway: "10.20.1.1",
		Labels: map[string]string{state.LabelTenant: "acme"}}
	be := &state.NetworkSpec{Name: "prod.acme.backend", Driver: "bridge", Subnet: "10.20.9.0/24", Gateway: "10.20.9.1", Internal: true}
	web := &state.ContainerSpec{Name: "prod.acme.web_1", Image: "registry.example/shop:1.5",
		// A sentinel: Text and Markdown must never print spec contents.
		Env:           []string{"SENTINEL_ENV=do-not-print"},
		SecretDigests: map[string]string{"db-password": "hmac-sha256:0f1e2d"},
		Networks:      []state.Endpoint{{Network: "prod.acme.lan", Aliases: []string{"web"}}}}
	ops := []reconcile.Operation{
		op(reconcile.Replace, reconcile.VerbRemoveNetwork, reconcile.KindNetwork, "prod.acme.backend", "", "acme", "spec changed: subnet",
			"disconnect-network:container/prod.acme.db.1@prod.acme.backend"),
		op(reconcile.Replace, reconcile.VerbCreateNetwork, reconcile.KindNetwork, "prod.acme.backend", "", "acme", "spec changed: subnet",
			"remove-network:network/prod.acme.backend"),
		op(reconcile.Create, reconcile.VerbCreateNetwork, reconcile.KindNetwork, "prod.acme.lan", "", "acme", "missing"),
		op(reconcile.Create, reconcile.VerbCreateVolume, reconcile.KindVolume, "prod.acme.data", "", "acme", "missing"),
		op(reconcile.Report, reconcile.VerbReport, reconcile.KindContainer, "intruder", "prod.acme.lan", "acme",
			"unmanaged container attached to tenant LAN prod.acme.lan"),
		op(reconcile.Update, reconcile.VerbDisconnect, reconcile.KindContainer, "prod.acme.db.1", "prod.acme.backend", "acme",
			"network prod.acme.backend is being replaced"),
		op(reconcile.Update, reconcile.VerbConnect, reconcile.KindContainer, "prod.acme.db.1", "prod.acme.backend", "acme",
			"network prod.acme.backend was replaced", "create-network:network/prod.acme.backend"),
		op(reconcile.Update, reconcile.VerbStart, reconcile.KindContainer, "prod.acme.db.1", "", "acme", "stopped",
			"connect-network:container/prod.acme.db.1@prod.acme.backend"),
		op(reconcile.Replace, reconcile.VerbRecreate, reconcile.KindContainer, "prod.acme.web_1", "", "acme", "spec changed: env, image",
			"create-network:network/prod.acme.lan"),
		op(reconcile.Create, reconcile.VerbCreate, reconcile.KindContainer, "prod.acme.web_2", "", "acme", "missing",
			"create-network:network/prod.acme.lan"),
		op(reconcile.Update, reconcile.VerbDisconnect, reconcile.KindContainer, "prod.globex.api.1", "prod.acme.lan", "globex",
			"attached to a network it must not be on"),
		op(reconcile.Replace, reconcile.VerbRecreate, reconcile.KindContainer, "prod.shared.logsink", "", "", "spec changed: networks"),
		op(reconcile.Delete, reconcile.VerbRemove, reconcile.KindContainer, "prod.initech.app.1", "", "initech", "no longer in config"),
		op(reconcile.Delete, reconcile.VerbRemoveNetwork, reconcile.KindNetwork, "prod.initech.lan", "", "initech", "no longer in config",
			"remove-container:container/prod.initech.app.1"),
		op(reconcile.Delete, reconcile.VerbRemoveVolume, reconcile.KindVolume, "prod.initech.files", "", "initech", "no longer in config",
			"remove-container:container/prod.initech.app.1"),
	}
	ops[1].NetworkSpec = be
	ops[2].NetworkSpec = lan
	ops[3].VolumeSpec = &state.VolumeSpec{Name: "prod.acme.data", Labels: map[string]string{state.LabelTenant: "acme"}}
	ops[4].LiveID = "c0ffee"
	ops[6].Aliases = []string{"db"}
	ops[8].ContainerSpec, ops[8].LiveID, ops[8].StopTimeout = web, "abc123", 10
	web2 := *web
	web2.Name = "prod.acme.web_2"
	ops[9].ContainerSpec = &web2
	logsink := &state.ContainerSpec{Name: "prod.shared.logsink", Image: "registry.example/logsink:1"}
	ops[11].ContainerSpec = logsink
	ops[12].StopTimeout = 10
	return &reconcile.Plan{Instance: "prod", Revision: "4f49a9d", Fingerprint: "sha256:5e1f", Operations: ops}
}

// swarmPlan is a secret rotation on Swarm, with a service restarted and
// a replaced overlay, the way Compute orders it.
func swarmPlan() *reconcile.Plan {
	const (
		oldPw = "prod--acme--db-password--0a1b2c3d4e5f"
		newPw = "prod--acme--db-password--ffeeddccbbaa"
	)
	web := func(name string) *state.ContainerSpec {
		return &state.ContainerSpec{Name: name, Image: "registry.example/shop:1.4",
			Env:    []string{"SENTINEL_ENV=do-not-print"},
			Mounts: []state.Mount{{Type: state.MountSecret, Source: newPw, Target: "/run/secrets/db-password", ReadOnly: true}},
			Swarm:  &state.SwarmSpec{UpdateOrder: "start-first"}}
	}
	ops := []reconcile.Operation{
		op(reconcile.Replace, reconcile.VerbRemoveNetwork, reconcile.KindNetwork, "prod--acme--lan", "", "acme", "attachable by hand"),
		op(reconcile.Replace, reconcile.VerbCreateNetwork, reconcile.KindNetwork, "prod--acme--lan", "", "acme", "attachable by hand",
			"remove-network:network/prod--acme--lan"),
		op(reconcile.Create, reconcile.VerbCreateSecret, reconcile.KindSecret, newPw, "", "acme", "new version (rotated)"),
		op(reconcile.Update, reconcile.VerbStart, reconcile.KindContainer, "prod--acme--db--1", "", "acme", "no running task (failed)"),
		op(reconcile.Update, reconcile.VerbUpdate, reconcile.KindContainer, "prod--acme--web--1", "", "acme", "spec changed: secrets",
			"create-network:network/prod--acme--lan", "create-secret:secret/"+newPw),
		op(reconcile.Update, reconcile.VerbUpdate, reconcile.KindContainer, "prod--acme--web--2", "", "acme", "spec changed: secrets",
			"create-network:network/prod--acme--lan", "create-secret:secret/"+newPw),
		op(reconcile.Delete, reconcile.VerbRemoveSecret, reconcile.KindSecret, oldPw, "", "acme", "old version (now "+newPw+")",
			"start-container:container/prod--acme--db--1", "update-container:container/prod--acme--web--1", "update-container:container/prod--acme--web--2"),
	}
	ops[1].NetworkSpec = &state.NetworkSpec{Name: "prod--acme--lan", Driver: "overlay", Subnet: "10.20.1.0/24",
		Options: map[string]string{"encrypted": "true"}, Labels: map[string]string{state.LabelTenant: "acme"}}
	ops[0].LiveID = "net1"
	ops[2].SecretSpec = &state.SecretSpec{Name: newPw, Source: "/srv/moat-secrets/acme/db-password", Digest: "hmac-sha256:ffeeddccbbaa99887766554433221100",
		Labels: map[string]string{state.LabelTenant: "acme", state.LabelSecret: "db-password"}}
	ops[3].LiveID = "svc-db"
	ops[4].ContainerSpec, ops[4].LiveID = web("prod--acme--web--1"), "svc-web1"
	ops[5].ContainerSpec, ops[5].LiveID = web("prod--acme--web--2"), "svc-web2"
	ops[6].LiveID = "sec-old"
	return &reconcile.Plan{Instance: "prod", Revision: "4f49a9d", Fingerprint: "sha256:5e1f", Engine: state.EngineSwarm, Operations: ops}
}

// hostPlan has the single-host verbs samplePlan leaves out: host rules, an
// unpause and a kept volume.
func hostPlan() *reconcile.Plan {
	ops := []reconcile.Operation{
		op(reconcile.Create, reconcile.VerbEnsureRules, reconcile.KindHostRules, "prod.acme.lan", "", "acme", "missing"),
		op(reconcile.Update, reconcile.VerbUnpause, reconcile.KindContainer, "prod.acme.db.1", "", "acme", "paused"),
		op(reconcile.Delete, reconcile.VerbRemoveRules, reconcile.KindHostRules, "prod.gone.lan", "", "gone", "no longer in config"),
		op(reconcile.Report, reconcile.VerbKeepVolume, reconcile.KindVolume, "prod.gone.data", "", "gone", "no longer in config; kept"),
	}
	ops[0].HostRulesSpec = &state.HostRulesSpec{Network: "prod.acme.lan", Tenant: "acme", Bridge: "moat-x", Subnet: "10.20.1.0/24", Hash: "h"}
	return &reconcile.Plan{Instance: "prod", Fingerprint: "sha256:5e1f", Operations: ops}
}

func reportOnly() *reconcile.Plan {
	p := samplePlan()
	p.Operations = p.Operations[4:5]
	return p
}

func emptyPlan() *reconcile.Plan {
	return &reconcile.Plan{Instance: "prod", Revision: "4f49a9d", Fingerprint: "sha256:5e1f", Operations: []reconcile.Operation{}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./render -update and review the diff)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestGoldens(t *testing.T) {
	plans := map[string]*reconcile.Plan{"sample": samplePlan(), "empty": emptyPlan(), "report-only": reportOnly(), "swarm": swarmPlan()}
	formats := map[string]func(*bytes.Buffer, *reconcile.Plan) error{
		"txt":  func(b *bytes.Buffer, p *reconcile.Plan) error { return Text(b, p) },
		"md":   func(b *bytes.Buffer, p *reconcile.Plan) error { return Markdown(b, p) },
		"json": func(b *bytes.Buffer, p *reconcile.Plan) error { return JSON(b, p) },
	}
	for pn, p := range plans {
		for ext, f := range formats {
			var b bytes.Buffer
			if err := f(&b, p); err != nil {
				t.Fatal(err)
			}
			if ext != "json" && strings.Contains(b.String(), "SENTINEL") {
				t.Errorf("%s.%s prints a container spec", pn, ext)
			}
			golden(t, pn+"."+ext, b.Bytes())
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, p := range []*reconcile.Plan{samplePlan(), emptyPlan(), swarmPlan(), hostPlan()} {
		var b bytes.Buffer
		if err := JSON(&b, p); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPlan(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip changed the plan:\n%s\nvs\n%s", got, p)
		}
	}
}

func TestReadPlanRefuses(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, samplePlan()); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	for _, tc := range []struct{ name, doc, want string }{
		{"not json", "plan: yes", "not a moat plan file"},
		{"no version", `{"instance":"prod"}`, "no format_version"},
		{"other version", strings.Replace(good, `"format_version": "1"`, `"format_version": "2"`, 1), `format_version "2" is not supported`},
		{"unknown field", strings.Replace(good, `"instance": "prod",`, `"instance": "prod", "force": true,`, 1), `unknown field "force"`},
		{"unknown nested field", strings.Replace(good, `"cause": "missing",`, `"cause": "missing", "password": "x",`, 1), `unknown field "password"`},
		{"summary edited", strings.Replace(good, `"remove": 3`, `"remove": 0`, 1), "does not match the operations"},
		{"id edited", strings.Replace(good, `"id": "remove-container:container/prod.initech.app.1"`, `"id": "x"`, 1), "id should be"},
		{"unknown verb", strings.Replace(good, `"verb": "start-container"`, `"verb": "exec"`, 1), `unknown verb "exec"`},
		{"action and verb", strings.Replace(good, `"action": "-",`+"\n      \"verb\": \"remove-container\"", `"action": "+",`+"\n      \"verb\": \"remove-container\"", 1), "does not go with verb"},
		{"dangling dependency", strings.Replace(good, `"remove-network:network/prod.acme.backend"
      ]`, `"remove-network:network/gone"
      ]`, 1), "depends on unknown operation"},
		{"trailing data", good + "{}", "trailing data"},
		{"no instance", strings.Replace(good, `"instance": "prod",`, `"instance": "",`, 1), "no instance"},
	} {
		if tc.doc == good {
			t.Fatalf("%s: the edit did not apply", tc.name)
		}
		_, err := ReadPlan(strings.NewReader(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestReadPlanRefusesSwarm: a Swarm plan's new operations are checked
// like the others.
func TestReadPlanRefusesSwarm(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, swarmPlan()); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	cut := func(field string) string {
		i := strings.Index(good, `"`+field+`": {`)
		if i < 0 {
			t.Fatalf("no %s in the plan", field)
		}
		j := strings.Index(good[i:], "\n      }") + len("\n      }")
		return good[:i] + `"tenant": "acme"` + good[i+j:]
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown engine", strings.Replace(good, `"engine": "swarm"`, `"engine": "nomad"`, 1), `unknown engine "nomad"`},
		{"update without spec", cut("containerSpec"), "no spec to create from"},
		{"secret without spec", cut("secretSpec"), "no spec to create from"},
		{"secret spec of another", strings.Replace(good, `"secretSpec": {`+"\n        \"name\": \"prod--acme--db-password--ffeeddccbbaa\"", `"secretSpec": {"name": "other"`, 1), "spec is for another resource"},
		{"update as replace", strings.Replace(good, `"action": "~",`+"\n      \"verb\": \"update-container\"", `"action": "-/+",`+"\n      \"verb\": \"update-container\"", 1), "does not go with verb"},
	} {
		if tc.doc == good {
			t.Fatalf("%s: the edit did not apply", tc.name)
		}
		_, err := ReadPlan(strings.NewReader(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// A single-host plan says nothing of an engine: its file is as before.
	b.Reset()
	if err := JSON(&b, samplePlan()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `"engine"`) {
		t.Error("a single-host plan names an engine")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"text":     func() error { return Text(failWriter{}, samplePlan()) },
		"markdown": func() error { return Markdown(failWriter{}, samplePlan()) },
		"json":     func() error { return JSON(failWriter{}, samplePlan()) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: write error not returned", name)
		}
	}
}

func TestMarkdownTruncates(t *testing.T) {
	p := emptyPlan()
	for i := range MarkdownMaxRows + 5 {
		p.Operations = append(p.Operations, op(reconcile.Create, reconcile.VerbCreateVolume, reconcile.KindVolume,
			"v"+strings.Repeat("x", i), "", "acme", "missing"))
	}
	var b bytes.Buffer
	if err := Markdown(&b, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "and 5 more operations") {
		t.Errorf("no truncation note:\n%s", b.String()[len(b.String())-300:])
	}
}
