package schema

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzCheck feeds arbitrary YAML through Check: it must never panic (a
// recovered panic inside CUE is reported as a diagnostic, which the fuzzer
// also counts as a failure) and every diagnostic must carry a rule and a
// message.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		app,
		app + "volumes: [{host: /var/run/docker.sock, path: /s}]\nprivileged: true\n",
		"kind: Platform\nname: p\nnetwork: {pool: 10.0.0.0/8}\npolicy: {images: [a/]}\n",
		"kind: Tenant\nname: t\nblock: 10.0.0.0/24\nquota: {cpus: 1}\ngrants: {a: [read-only]}\n",
		"a: &x [1, 2]\nb: *x\nkind: App\n",
		"kind: App\n? [a]\n: b\nenv: {\"#x\": 1, _y: 2}\n",
		"kind: Lan\nname: 0x1F\nsubnet: !!binary aGk=\ninternet: 2001-12-14\n",
		"--- 5\n--- [kind, App]\n--- ~\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		docs, _ := decodeDocs("tenants/acme/f.yaml", []byte(src))
		if len(docs) == 0 {
			return
		}
		for _, d := range docs {
			if tooLarge(d.Node, 0) {
				return // the loader's limits refuse these before Check
			}
		}
		for _, d := range Check(docs, Options{ImagePrefixes: []string{"a/"}, RequireDigest: len(src)%2 == 0, Workers: 1}) {
			if d.Rule == "" || d.Message == "" {
				t.Fatalf("empty diagnostic %#v", d)
			}
			if d.Rule == "structure.type" && len(d.Message) > 30 && d.Message[:30] == "this document could not be eva" {
				t.Fatalf("panic inside Check: %s", d.Message)
			}
		}
	})
}

// tooLarge mirrors the loader's alias-expansion limit so that the fuzzer
// does not spend its time on billion-laughs inputs the loader refuses.
func tooLarge(n *yaml.Node, depth int) bool {
	count := 0
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		count++
		if n == nil || count > 10000 || depth > 64 {
			return n != nil
		}
		if n.Kind == yaml.AliasNode {
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if walk(c, depth+1) {
				return true
			}
		}
		return false
	}
	return walk(n, depth)
}
