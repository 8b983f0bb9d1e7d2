package config

import (
	"io/fs"

	"github.com/moat-platform/moat/diag"
)

// Load reads every *.yaml and *.yml file under the root of fsys (dot-folders
// skipped), parses each into documents, and reports syntax errors and
// hostile input as diagnostics. Documents come back sorted by (File, Index).
// TODO(helper): implementation in progress.
func Load(fsys fs.FS, lim Limits) ([]*Document, diag.List) {
	return nil, nil
}
