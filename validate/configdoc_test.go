package validate_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/schema"
)

// TestConfigDocMatchesCode reads the units and limits docs/CONFIG.md
// promises (its own text, not a copy here) and checks each against the
// schema and the loader: every size unit it lists is accepted, every
// spelling it says is refused is refused, the name length is the schema's,
// and the hostile-input limits are config.DefaultLimits.
func TestConfigDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	bullet := func(title string) string {
		i := strings.Index(doc, "- **"+title+"**")
		if i < 0 {
			t.Fatalf("CONFIG.md has no %q bullet", title)
		}
		rest := doc[i+2:]
		if j := strings.Index(rest, "\n- **"); j >= 0 {
			rest = rest[:j]
		}
		return strings.Join(strings.Fields(rest), " ")
	}
	ticks := regexp.MustCompile("`([^`]+)`")
	tokens := func(s string) []string {
		var out []string
		for _, m := range ticks.FindAllStringSubmatch(s, -1) {
			out = append(out, strings.Fields(strings.Trim(m[1], " /"))...)
		}
		return out
	}
	// schemaOK validates one Platform document with the given name and
	// tmpfsSize (a size with no engine floor), schema only.
	schemaOK := func(name, size string) bool {
		src := "kind: Platform\nname: " + name + "\nnetwork: {pool: 10.80.0.0/12}\nruntime: {tmpfsSize: \"" + size + "\"}\n"
		docs, ds := config.Load(fstest.MapFS{"platform.yaml": {Data: []byte(src)}}, config.Limits{})
		if len(ds) > 0 {
			t.Fatalf("load: %v", ds)
		}
		return len(schema.Check(docs, schema.Options{})) == 0
	}

	sizes := bullet("Sizes")
	accepted, refused, ok := strings.Cut(sizes, "Not accepted")
	if !ok {
		t.Fatalf("Sizes bullet lost its \"Not accepted\" list: %s", sizes)
	}
	units := regexp.MustCompile(`units (.*?), for example`).FindStringSubmatch(accepted)
	if units == nil {
		t.Fatalf("Sizes bullet lists no units: %s", accepted)
	}
	for _, u := range tokens(units[1]) {
		if !schemaOK("x", "64"+u) {
			t.Errorf("CONFIG.md says unit %s is accepted; the schema refuses 64%s", u, u)
		}
	}
	for _, ex := range tokens(accepted[strings.Index(accepted, "for example"):]) {
		if !schemaOK("x", ex) {
			t.Errorf("CONFIG.md gives %s as an example size; the schema refuses it", ex)
		}
	}
	refused, _, _ = strings.Cut(refused, "Binary units")
	for _, r := range tokens(refused) {
		v := r
		if r[0] < '0' || r[0] > '9' {
			v = "64" + r
		}
		if schemaOK("x", v) {
			t.Errorf("CONFIG.md says %s is not accepted; the schema accepts %s", r, v)
		}
	}

	m := regexp.MustCompile(`at most (\d+) characters`).FindStringSubmatch(bullet("Names"))
	if m == nil {
		t.Fatal("Names bullet states no length")
	}
	n, _ := strconv.Atoi(m[1])
	if !schemaOK(strings.Repeat("a", n), "16MiB") || schemaOK(strings.Repeat("a", n+1), "16MiB") {
		t.Errorf("CONFIG.md says names have at most %d characters; the schema disagrees", n)
	}

	i := strings.Index(doc, "## Hostile input")
	if i < 0 {
		t.Fatal("CONFIG.md has no Hostile input section")
	}
	hostile := strings.Join(strings.Fields(doc[i:i+strings.Index(doc[i+3:], "\n## ")+3]), " ")
	num := regexp.MustCompile(`\((?:default )?([\d,]+)( MiB)?`)
	var got []int64
	for _, m := range num.FindAllStringSubmatch(hostile, -1) {
		v, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if m[2] != "" {
			v <<= 20
		}
		got = append(got, v)
	}
	d := config.DefaultLimits
	want := []int64{d.MaxFileBytes, int64(d.MaxFiles), d.MaxTotalBytes, int64(d.MaxNodes), int64(d.MaxDepth)}
	if len(got) < len(want) {
		t.Fatalf("Hostile input states %d limits (%v), want %d", len(got), got, len(want))
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("Hostile input limit %d: CONFIG.md says %d, the loader uses %d", k+1, got[k], want[k])
		}
	}
}
