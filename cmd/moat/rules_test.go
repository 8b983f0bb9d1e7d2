package main

import (
	"bytes"
	"os"
	"testing"
)

// docs/RULES.md is generated from the registered rules; it must not drift
// from them (regenerate with `make docs`).
func TestRulesDocUpToDate(t *testing.T) {
	var b bytes.Buffer
	if err := writeRulesMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/RULES.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, b.Bytes()) {
		t.Fatal("docs/RULES.md is out of date with the rule catalogue: run make docs")
	}
}
