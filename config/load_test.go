package config

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/diag"
	"gopkg.in/yaml.v3"
)

func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1]), Mode: 0o644}
	}
	return m
}

func lines(ds diag.List) string {
	var b strings.Builder
	for _, d := range ds.Sort() {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func docIDs(docs []*Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, fmt.Sprintf("%s#%d %s/%s tenant=%s", d.File, d.Index, d.Kind, d.Name, d.Tenant))
	}
	return out
}

// aliasBomb multiplies by ten per line: over 10^5 nodes from six short lines.
const aliasBomb = `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
`

func deep(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		fsys  fs.FS
		lim   Limits
		docs  []string
		diags string
	}{
		{
			name: "documents, kinds, tenants, order",
			fsys: files(
				"tenants/acme/web.yaml", "kind: App\nname: web\n---\nkind: Lan\nname: back\n",
				"platform.yaml", "kind: Platform\nname: p\n",
				"tenants/acme/a.yml", "kind: Volume\nname: v\n",
				"tenants/x.yaml", "kind: App\nname: 12\n",
			),
			docs: []string{
				"platform.yaml#0 Platform/p tenant=",
				"tenants/acme/a.yml#0 Volume/v tenant=acme",
				"tenants/acme/web.yaml#0 App/web tenant=acme",
				"tenants/acme/web.yaml#1 Lan/back tenant=acme",
				"tenants/x.yaml#0 App/ tenant=",
			},
		},
		{
			name: "non-YAML, dot-files and dot-folders are ignored",
			fsys: files(
				"README.md", "kind: [",
				".hidden.yaml", "kind: [",
				".git/config.yaml", "kind: [",
				"tenants/.github/x.yml", "kind: [",
				"x.yaml.bak", "\x00",
				"ok.yaml", "kind: App\nname: ok\n",
			),
			docs: []string{"ok.yaml#0 App/ok tenant="},
		},
		{
			name: "empty documents are skipped, indices count them",
			fsys: files("a.yaml", "# only a comment\n---\n# c\n---\nkind: App\nname: a\n---\n", "b.yaml", "", "c.yaml", "# nothing\n"),
			docs: []string{"a.yaml#1 App/a tenant="},
		},
		{
			name:  "syntax error keeps earlier documents",
			fsys:  files("a.yaml", "kind: App\nname: a\n---\nkind: App\nname: [\n"),
			docs:  []string{"a.yaml#0 App/a tenant="},
			diags: "a.yaml:6: input.syntax: invalid YAML: did not find expected node content\n",
		},
		{
			// yaml.v3 gives parser errors a 0-based line; Load corrects it.
			name:  "parser error line",
			fsys:  files("a.yaml", "kind: App\nlans: [a, b\nname: x\n"),
			diags: "a.yaml:2: input.syntax: invalid YAML: did not find expected ',' or ']'\n",
		},
		{
			// yaml.v3 names where the construct began: the scalar x.
			name:  "scanner error line",
			fsys:  files("a.yaml", "kind: App\nname: x\n\tlans: []\n"),
			diags: "a.yaml:3:1: input.syntax: invalid YAML: found a tab character that violates indentation\n",
		},
		{
			name:  "unknown anchor gets the line of its use",
			fsys:  files("a.yaml", "kind: App\nname: *nope\n"),
			diags: "a.yaml:2:7: input.syntax: invalid YAML: unknown anchor 'nope' referenced\n",
		},
		{
			name:  "NUL byte",
			fsys:  files("a.yaml", "kind: App\nname: a\x00\n"),
			diags: "a.yaml:2: input.encoding: file contains a NUL byte (binary data); YAML files must be UTF-8 text\n",
		},
		{
			name:  "not UTF-8",
			fsys:  files("a.yaml", "kind: App\n\nname: caf\xe9\n"),
			diags: "a.yaml:3: input.encoding: file contains bytes that are not UTF-8; YAML files must be UTF-8 text\n",
		},
		{
			name:  "UTF-16 with a byte-order mark",
			fsys:  files("a.yaml", "\xff\xfek\x00i\x00"),
			diags: "a.yaml:1: input.encoding: file contains bytes that are not UTF-8; YAML files must be UTF-8 text\n",
		},
		{
			name: "duplicate keys at any depth, the first is kept",
			fsys: files("a.yaml", "kind: App\nname: a\nenv:\n  A: x\n  B: y\n  A: z\nname: b\n"),
			docs: []string{"a.yaml#0 App/a tenant="},
			diags: "a.yaml:6:3: structure.duplicate-key: key \"A\" is already defined at line 4; remove one of them\n" +
				"a.yaml:7:1: structure.duplicate-key: key \"name\" is already defined at line 2; remove one of them\n",
		},
		{
			name:  "merge key",
			fsys:  files("a.yaml", "kind: App\nname: a\nbase: &b {cpus: 1}\nresources:\n  <<: *b\n"),
			docs:  []string{"a.yaml#0 App/a tenant="},
			diags: "a.yaml:5:3: structure.merge-key: merge key << is not allowed: it hides where values come from; write the keys out\n",
		},
		{
			name:  "a quoted << is a plain key",
			fsys:  files("a.yaml", "kind: App\nname: a\nenv: {\"<<\": x}\n"),
			docs:  []string{"a.yaml#0 App/a tenant="},
			diags: "",
		},
		{
			name: "documents that are not mappings",
			fsys: files("a.yaml", "- kind: App\n---\nhello\n---\nnull\n---\nkind: App\nname: ok\n"),
			docs: []string{"a.yaml#3 App/ok tenant="},
			diags: "a.yaml:1:1: structure.document: document is a list, not a mapping; every document must be a mapping with kind and name\n" +
				"a.yaml:3:1: structure.document: document is a plain value, not a mapping; every document must be a mapping with kind and name\n" +
				"a.yaml:5:1: structure.document: document is a null value, not a mapping; every document must be a mapping with kind and name\n",
		},
		{
			name:  "too deep",
			fsys:  files("a.yaml", "a: "+deep(70)),
			diags: "a.yaml:1:67: input.depth: document is nested more than 64 levels deep (aliases included); flatten it\n",
		},
		{
			name: "depth limit is exact",
			fsys: files("a.yaml", "a: "+deep(63)),
			docs: []string{"a.yaml#0 / tenant="},
		},
		{
			name:  "a cyclic alias ends at the depth limit",
			fsys:  files("a.yaml", "kind: App\nname: a\nx: &x [*x]\n"),
			diags: "a.yaml:3:8: input.depth: document is nested more than 64 levels deep (aliases included); flatten it\n",
		},
		{
			name:  "alias bomb",
			fsys:  files("a.yaml", "kind: App\nname: a\n"+aliasBomb, "b.yaml", "kind: App\nname: b\n"),
			docs:  []string{"b.yaml#0 App/b tenant="},
			diags: "a.yaml:6:36: input.alias-expansion: document expands to more than 10000 YAML nodes (every use of an alias counts its whole value); write values out instead of nesting aliases\n",
		},
		{
			name:  "many plain nodes",
			fsys:  files("a.yaml", "kind: App\nname: a\nx: ["+strings.Repeat("1,", 20)+"]\n"),
			lim:   Limits{MaxNodes: 20},
			diags: "a.yaml:1:1: input.alias-expansion: document expands to more than 20 YAML nodes (every use of an alias counts its whole value); write values out instead of nesting aliases\n",
		},
		{
			name:  "file size",
			fsys:  files("a.yaml", "kind: App\nname: a\n", "b.yaml", "kind: App\nname: bbbbbbbbbbbbbbb\n"),
			lim:   Limits{MaxFileBytes: 20},
			docs:  []string{"a.yaml#0 App/a tenant="},
			diags: "b.yaml: input.file-size: file is 32 bytes, more than the limit of 20; split it\n",
		},
		{
			name:  "file count stops the walk",
			fsys:  files("a.yaml", "kind: App\nname: a\n", "b.yaml", "kind: App\nname: b\n", "c.yaml", "kind: App\nname: c\n"),
			lim:   Limits{MaxFiles: 2},
			docs:  []string{"a.yaml#0 App/a tenant=", "b.yaml#0 App/b tenant="},
			diags: "c.yaml: input.file-count: the repository has more than 2 YAML files; this and later files were not read\n",
		},
		{
			name:  "total size stops the walk",
			fsys:  files("a.yaml", "kind: App\nname: a\n", "b.yaml", "kind: App\nname: b\n", "c.yaml", "kind: App\nname: c\n"),
			lim:   Limits{MaxTotalBytes: 40},
			docs:  []string{"a.yaml#0 App/a tenant=", "b.yaml#0 App/b tenant="},
			diags: "c.yaml: input.total-size: the YAML files of the repository exceed 40 bytes in total; this and later files were not read\n",
		},
		{
			name:  "total nodes stop the walk",
			fsys:  files("a.yaml", "kind: App\nname: a\n---\nkind: App\nname: b\n", "b.yaml", "kind: App\nname: c\n"),
			lim:   Limits{MaxTotalNodes: 12},
			docs:  []string{"a.yaml#0 App/a tenant=", "a.yaml#1 App/b tenant="},
			diags: "b.yaml:1:1: input.total-size: the repository has more than 12 YAML nodes after alias expansion; this and later files were not read\n",
		},
		{
			name:  "a device is not opened",
			fsys:  fstest.MapFS{"a.yaml": {Mode: fs.ModeNamedPipe}},
			diags: "a.yaml: input.file: a.yaml is not a regular file (p---------); replace it with a file or rename it\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, ds := Load(tt.fsys, tt.lim)
			if got := docIDs(docs); !slices.Equal(got, tt.docs) {
				t.Errorf("documents:\n got %q\nwant %q", got, tt.docs)
			}
			if got := lines(ds); got != tt.diags {
				t.Errorf("diagnostics:\n--- got\n%s--- want\n%s", got, tt.diags)
			}
			for _, d := range docs {
				checkTree(t, d.Node, 1)
			}
		})
	}
}

// checkTree asserts what Load promises downstream: no alias, no merge key,
// no duplicate key, depth within the default limit.
func checkTree(t *testing.T, n *yaml.Node, depth int) {
	t.Helper()
	if depth > DefaultLimits.MaxDepth {
		t.Fatalf("node at line %d deeper than %d", n.Line, DefaultLimits.MaxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Alias != nil {
		t.Fatalf("alias left at line %d", n.Line)
	}
	if n.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" || seen[k.Value] {
				t.Fatalf("merge or duplicate key %q left at line %d", k.Value, k.Line)
			}
			seen[k.Value] = true
		}
	}
	for _, c := range n.Content {
		checkTree(t, c, depth+1)
	}
}

func TestLoadAliasesAreExpanded(t *testing.T) {
	docs, ds := Load(files("a.yaml", "kind: App\nname: a\nbase: &r {cpus: 1, memory: 64MiB}\nresources: *r\n"), Limits{})
	if len(ds) != 0 || len(docs) != 1 {
		t.Fatalf("got %d docs, %v", len(docs), ds)
	}
	d := docs[0]
	checkTree(t, d.Node, 1)
	if p := d.Pos("resources"); p.Line != 4 || p.Col != 12 {
		t.Errorf("resources at %v, want the alias use 4:12", p)
	}
	if p := d.Pos("resources", "memory"); p.Line != 3 {
		t.Errorf("resources.memory at %v, want the anchor's line 3", p)
	}
	var v struct {
		Resources Resources `yaml:"resources"`
	}
	if err := d.Node.Decode(&v); err != nil || v.Resources.Memory != "64MiB" {
		t.Errorf("decode: %v %+v", err, v)
	}
	// The copy is independent of the anchor's value.
	d.Node.Content[5].Content[1].Value = "2"
	if got := d.Node.Content[7].Content[1].Value; got != "1" {
		t.Errorf("alias copy shares nodes with its anchor (cpus=%s)", got)
	}
}

func TestLoadContentIsShared(t *testing.T) {
	src := "kind: App\nname: a\n---\nkind: App\nname: b\n"
	docs, _ := Load(files("a.yaml", src), Limits{})
	if len(docs) != 2 || string(docs[0].Content) != src || &docs[0].Content[0] != &docs[1].Content[0] {
		t.Fatalf("documents of one file should share its content")
	}
}

// noLinkFS hides ReadLink and Lstat: a source that cannot tell where a
// link goes.
type noLinkFS struct{ fs.FS }

func (f noLinkFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.FS, name) }

func TestLoadMapFSSymlinks(t *testing.T) {
	m := files("real.yaml", "kind: App\nname: r\n")
	m["tenants/acme/t.yaml"] = &fstest.MapFile{Data: []byte("kind: App\nname: t\n")}
	m["tenants/acme/l.yaml"] = &fstest.MapFile{Data: []byte("t.yaml"), Mode: fs.ModeSymlink}
	m["up.yaml"] = &fstest.MapFile{Data: []byte("../real.yaml"), Mode: fs.ModeSymlink}

	docs, ds := Load(m, Limits{})
	wantDocs := []string{"real.yaml#0 App/r tenant=", "tenants/acme/l.yaml#0 App/t tenant=acme", "tenants/acme/t.yaml#0 App/t tenant=acme"}
	if got := docIDs(docs); !slices.Equal(got, wantDocs) {
		t.Errorf("documents: got %q, want %q", got, wantDocs)
	}
	want := "up.yaml: input.symlink: symbolic link leads out of the repository; links must stay inside the repository, replace the link with the file itself\n"
	if got := lines(ds); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}

	_, ds = Load(noLinkFS{m}, Limits{})
	want = "tenants/acme/l.yaml: input.symlink: symbolic link cannot be resolved by this source; replace the link with the file itself\n" +
		"up.yaml: input.symlink: symbolic link cannot be resolved by this source; replace the link with the file itself\n"
	if got := lines(ds); got != want {
		t.Errorf("without ReadLinkFS got\n%swant\n%s", got, want)
	}
}

// TestLoadRefusesControlCharacterNames: a file name with a newline could
// forge a diagnostic line in any output that shows it; it is refused (and
// not read), and its name is shown quoted.
func TestLoadRefusesControlCharacterNames(t *testing.T) {
	m := files("tenants/acme/ok.yaml", "kind: App\nname: ok\n",
		"tenants/acme/x\napi.yaml:1:1: fake.rule: oops.yaml", "kind: App\nname: forged\n",
		"tenants/ac\tme/y.yaml", "kind: App\nname: tab\n")
	docs, ds := Load(m, Limits{})
	if got := docIDs(docs); !slices.Equal(got, []string{"tenants/acme/ok.yaml#0 App/ok tenant=acme"}) {
		t.Errorf("documents: %q", got)
	}
	want := `"tenants/ac\tme": input.file: the name "ac\tme" contains a control character (a newline, tab, ...); rename it` + "\n" +
		`"tenants/acme/x\napi.yaml:1:1: fake.rule: oops.yaml": input.file: the name "x\napi.yaml:1:1: fake.rule: oops.yaml" contains a control character (a newline, tab, ...); rename it` + "\n"
	if got := lines(ds); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}
