// Package policy holds the rules that cross documents, in Go after CUE
// (CUE evaluates those too slowly at scale): ownership by path, uniqueness,
// addresses, links, access modes, quotas, secrets and ports.
package policy

import (
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

// Check applies every cross-document rule to a decoded repository.
// TODO(helper): implementation in progress.
func Check(repo *config.Repo) diag.List {
	return nil
}
