package schema

import (
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
	"gopkg.in/yaml.v3"
)

// parseDocs parses YAML text (documents separated by ---) into Documents
// the way the loader will hand them over: one mapping node per document,
// positions intact. file names the file for positions.
func parseDocs(t testing.TB, file, src string) []*config.Document {
	t.Helper()
	docs, err := decodeDocs(file, []byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return docs
}

func decodeDocs(file string, src []byte) ([]*config.Document, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	var docs []*config.Document
	for i := 0; ; i++ {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if err.Error() == "EOF" {
				return docs, nil
			}
			return docs, err
		}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		docs = append(docs, &config.Document{File: file, Index: i, Node: root, Content: src, Tenant: config.TenantOf(file)})
	}
}
