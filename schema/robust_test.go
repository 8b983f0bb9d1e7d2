package schema

import (
	"slices"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"gopkg.in/yaml.v3"
)

// TestWorkersDeterministic: the result does not depend on how many
// workers share the documents or in which order they finish.
func TestWorkersDeterministic(t *testing.T) {
	docs := genRepo(t, 20, 5, true)
	// Break some documents so that there is something to compare.
	bad := parseDocs(t, "tenants/t1/bad.yaml", app+"privileged: true\nfoo: 1\n---\n"+app+"capAdd: [SYS_ADMIN]\n---\nkind: Nope\n")
	docs = append(append(docs[:10:10], bad...), docs[10:]...)
	want := Check(docs, Options{ImagePrefixes: defaultOpts.ImagePrefixes, Workers: 1})
	if len(want) != 4 {
		t.Fatalf("want 4 diagnostics, got:\n%s", render(want))
	}
	for _, w := range []int{0, 2, 3, 16} {
		got := Check(docs, Options{ImagePrefixes: defaultOpts.ImagePrefixes, Workers: w})
		if !slices.Equal(got, want) {
			t.Errorf("workers=%d:\n%s\nwant\n%s", w, render(got), render(want))
		}
	}
}

func TestOddInput(t *testing.T) {
	t.Run("nil documents and nodes", func(t *testing.T) {
		ds := Check([]*config.Document{nil, {File: "a.yaml"}}, Options{})
		if len(ds) != 1 || ds[0].Rule != "structure.kind" {
			t.Fatalf("got %v", ds)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if ds := Check(nil, Options{}); ds != nil {
			t.Fatalf("got %v", ds)
		}
	})
	t.Run("aliases are followed", func(t *testing.T) {
		src := "kind: App\nname: web\nimage: localhost/moat-examples/e:1\nresources: &r {cpus: 1, memory: 1G, pids: 1}\nenv: &e {A: b}\nlabels: *e\n"
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		if len(ds) != 1 || ds[0].Rule != "structure.unknown-field" || ds[0].Line != 6 {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("alias to a bad value points at the alias", func(t *testing.T) {
		src := "x: &p true\n---\n" + app + "privileged: *p\n"
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		// The first document has no kind; the alias is reported where it
		// is used (line 7), the anchor's node where it was written.
		if len(ds) != 2 || ds[1].Rule != "hardening.privileged" {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("duplicate keys keep the first", func(t *testing.T) {
		src := app + "replicas: 1\nreplicas: x\n"
		if ds := Check(parseDocs(t, "x.yaml", src), defaultOpts); len(ds) != 0 {
			t.Fatalf("the loader reports duplicates; the schema judged the first only, got\n%s", render(ds))
		}
	})
	t.Run("keys cannot reach definitions", func(t *testing.T) {
		src := app + "\"#Never\": 1\n_hidden: 2\n"
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		if len(ds) != 2 || ds[0].Rule != "structure.unknown-field" || ds[1].Rule != "structure.unknown-field" {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("non-scalar key", func(t *testing.T) {
		src := app + "? [a, b]\n: c\n"
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		if len(ds) != 1 || ds[0].Rule != "structure.unknown-field" {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("yaml number forms", func(t *testing.T) {
		src := app + "replicas: 0x0A\nports: [{container: 0o17, host: 1_025}]\n"
		if ds := Check(parseDocs(t, "x.yaml", src), defaultOpts); len(ds) != 0 {
			t.Fatalf("got\n%s", render(ds))
		}
		// Too big for int64: yaml.v3 resolves it as a float, but it is a
		// whole number out of range, and the message says so (it used to
		// say "must be a whole number, not a decimal number").
		src = app + "replicas: 99999999999999999999999\n"
		if ds := Check(parseDocs(t, "x.yaml", src), defaultOpts); len(ds) != 1 || ds[0].Rule != "structure.range" ||
			!strings.Contains(ds[0].Message, "from 0 to 100 (got 99999999999999999999999)") {
			t.Fatalf("got\n%s", render(ds))
		}
		// .nan is not "a decimal number": say what it is.
		src = app + "replicas: .nan\n"
		if ds := Check(parseDocs(t, "x.yaml", src), defaultOpts); len(ds) != 1 ||
			!strings.Contains(ds[0].Message, "must be a whole number, not .nan (not a number)") {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("deep nesting is bounded", func(t *testing.T) {
		deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
		src := app + "command: " + deep + "\n"
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "too large or nested too deeply") {
			t.Fatalf("got\n%s", render(ds))
		}
	})
	t.Run("long values are cut in messages", func(t *testing.T) {
		src := strings.Replace(app, "name: web", "name: "+strings.Repeat("x", 5000), 1)
		ds := Check(parseDocs(t, "x.yaml", src), defaultOpts)
		if len(ds) != 1 || len(ds[0].Message) > 300 {
			t.Fatalf("got %d diagnostics, first %d bytes", len(ds), len(ds[0].Message))
		}
	})
	t.Run("document node is unwrapped", func(t *testing.T) {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("kind: Volume\nname: a\n"), &n); err != nil {
			t.Fatal(err)
		}
		if ds := Check([]*config.Document{{File: "v.yaml", Node: &n}}, Options{}); len(ds) != 0 {
			t.Fatalf("got %v", ds)
		}
	})
}

// TestMemoDoesNotHideErrors: a value that passed in one document and the
// same field failing in the next are told apart, and the same bad value
// in two documents is reported twice, at each position.
func TestMemoDoesNotHideErrors(t *testing.T) {
	src := app + "---\n" + strings.Replace(app, "64MiB", "64Mb", 1) + "---\n" + strings.Replace(app, "64MiB", "64Mb", 1)
	ds := Check(parseDocs(t, "x.yaml", src), Options{ImagePrefixes: defaultOpts.ImagePrefixes, Workers: 1})
	if len(ds) != 2 || ds[0].Line != 9 || ds[1].Line != 14 {
		t.Fatalf("got\n%s", render(ds))
	}
}
