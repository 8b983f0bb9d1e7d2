package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/moat-platform/moat/watch"
)

// TestWatchDocsListEverything: docs/WATCH.md names every flag of moat
// watch, every metric the watcher registers and every endpoint it serves;
// the README has the section a user looks for.
func TestWatchDocsListEverything(t *testing.T) {
	b, err := os.ReadFile("../../docs/WATCH.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	n := 0
	newWatch().Flags().VisitAll(func(f *pflag.Flag) {
		n++
		if !regexp.MustCompile("`--" + regexp.QuoteMeta(f.Name) + "[` ]").MatchString(doc) {
			t.Errorf("docs/WATCH.md does not document the flag --%s", f.Name)
		}
	})
	if n < 20 {
		t.Fatalf("only %d flags found", n)
	}
	m := watch.NewMetrics()
	v := reflect.ValueOf(m).Elem()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	metrics := 0
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			name := fq.FindStringSubmatch(d.String())[1]
			metrics++
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/WATCH.md does not document the metric %s", name)
			}
		}
	}
	if metrics < 10 {
		t.Fatalf("only %d metrics found", metrics)
	}
	for _, e := range watch.Endpoints {
		if !strings.Contains(doc, e+"`") {
			t.Errorf("docs/WATCH.md does not document the endpoint %s", e)
		}
	}
	readme, _ := os.ReadFile("../../README.md")
	for _, want := range []string{"## Run moat on a host", "docs/moat-watch.service", "make image"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	if _, err := os.Stat("../../docs/moat-watch.service"); err != nil {
		t.Error(err)
	}
}
