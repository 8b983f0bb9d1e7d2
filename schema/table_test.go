package schema

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/moat-platform/moat/diag"
)

// TestSchemaRulesRegistered keeps moat.cue, rules.go and the Go defaults
// in step: every rule named in the schema is registered, every registered
// rule is reachable, and every if=/unless= names a real definition.
func TestSchemaRulesRegistered(t *testing.T) {
	tb := loadTable()
	used := map[string]bool{
		// Reported from Go: see check and diagnose.
		"structure.kind": true, "structure.unknown-field": true, "structure.required": true, "structure.type": true,
	}
	s := cuecontext.New().CompileString(schemaSrc)
	var walk func(n *node)
	walk = func(n *node) {
		for _, a := range n.attrs {
			used[a.id] = true
			if _, ok := diag.Lookup(a.id); !ok {
				t.Errorf("moat.cue names unregistered rule %s", a.id)
			}
			for _, def := range []string{a.ifDef, a.unless} {
				if def != "" && !s.LookupPath(cue.ParsePath(def)).Exists() {
					t.Errorf("rule %s: definition %s does not exist", a.id, def)
				}
			}
			if a.msg == "" {
				t.Errorf("rule %s: attribute without msg", a.id)
			}
		}
		for _, c := range n.fields {
			walk(c)
		}
		if n.elem != nil {
			walk(n.elem)
		}
	}
	for _, k := range allKinds {
		walk(tb.kinds[k])
	}
	for _, r := range rules {
		if !used[r.ID] {
			t.Errorf("rule %s is registered but nothing reports it", r.ID)
		}
	}
	// The ids are also literally in moat.cue (a grep-able catalogue).
	for id := range used {
		if !strings.Contains(schemaSrc, "@rule("+id) && !slices.Contains([]string{"structure.kind", "structure.unknown-field"}, id) {
			t.Errorf("rule %s is not in moat.cue", id)
		}
	}
}

// TestKindsCovered: every kind of the model has a definition whose fields
// are the yaml names of the model's fields (so decode and schema agree).
func TestKindsCovered(t *testing.T) {
	want := map[string][]string{
		"Platform":      {"engine", "gateways", "kind", "name", "network", "policy", "runtime"},
		"Tenant":        {"block", "gatewayLimits", "grants", "kind", "name", "placement", "quota", "user"},
		"SharedService": {"command", "egress", "env", "image", "kind", "name", "offers", "port", "protocol", "resources"},
		"SharedVolume":  {"kind", "name", "offers"},
		"Lan":           {"internet", "kind", "name", "subnet", "tenant"},
		"Volume":        {"kind", "name", "tenant"},
		"App": {"capAdd", "command", "devices", "env", "healthcheck", "image", "ipc", "kind", "lans", "name", "network", "pid",
			"ports", "privileged", "replicas", "resources", "secrets", "securityOpt", "sysctls", "talksTo", "tenant", "user", "userns", "uses", "uts", "volumes"},
	}
	tb := loadTable()
	for k, names := range want {
		if got := tb.kinds[k].names; !slices.Equal(got, names) {
			t.Errorf("#%s fields\n got %v\nwant %v", k, got, names)
		}
	}
}

func TestPrefixRegexp(t *testing.T) {
	re := regexp.MustCompile(prefixRegexp([]string{"a.io/x/", "b+/"}))
	for s, want := range map[string]bool{"a.io/x/y:1": true, "aXio/x/y": false, "b+/c": true, "bb/c": false, "z/a.io/x/": false} {
		if re.MatchString(s) != want {
			t.Errorf("%q: match %v", s, !want)
		}
	}
	if prefixRegexp(nil) != "" {
		t.Error("no prefixes must allow any image")
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"replicas", "resources", "talksTo", "lans"}
	for in, want := range map[string]string{"replica": "replicas", "talksto": "talksTo", "lan": "lans", "xyz": "", "resource": "resources"} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
