// Package schema validates each document against the CUE schema embedded
// in the binary (schema/*.cue): structure, hardening and image rules.
package schema

import (
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// Options carry the platform settings that per-document rules need.
type Options struct {
	ImagePrefixes []string // allowed image prefixes (empty: any)
	RequireDigest bool     // images must be pinned by @sha256:
	Workers       int      // parallel CUE evaluators (default GOMAXPROCS)
}

// Check validates every document against the schema of its kind.
// TODO(helper): implementation in progress.
func Check(docs []*config.Document, opts Options) diag.List {
	return nil
}
