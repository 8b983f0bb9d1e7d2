package config

import "github.com/moat-platform/moat/diag"

// Decode turns schema-valid documents into the typed Repo, applying
// defaults. Documents of unknown kind are skipped (the schema reported them).
// TODO(helper): implementation in progress.
func Decode(docs []*Document) (*Repo, diag.List) {
	return &Repo{}, nil
}
