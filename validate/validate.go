// Package validate runs the whole validation pipeline over one revision of
// a config repository: load (syntax, hostile input) -> decode -> CUE schema
// per document -> Go rules across documents. All diagnostics come back at
// once, sorted; a repo is valid only when the list is empty.
package validate

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
	"github.com/moat-platform/moat/policy"
	"github.com/moat-platform/moat/schema"
)

// Options tune a run; the zero value is the production default.
type Options struct {
	Limits  config.Limits
	Workers int // parallel CUE evaluators (0: GOMAXPROCS)
}

// Run validates the repository rooted at fsys. The Repo is returned even
// when there are diagnostics (for tools that want to show what they could
// read), but nothing may be applied from a Repo with diagnostics.
func Run(fsys fs.FS, opts Options) (*config.Repo, diag.List) {
	docs, ds := config.Load(fsys, opts.Limits)
	if noPlatform(docs, ds) {
		// Not a config repository (validate run in the wrong folder):
		// every YAML file there would otherwise get its own finding.
		return &config.Repo{Digest: digest(docs)}, diag.List{diag.At(diag.Pos{}, "ownership.platform",
			"no Platform document found, so this is not a moat config repository (or its platform.yaml is missing); nothing else was checked: run moat in the repository's root, or add platform.yaml with kind: Platform")}
	}
	if stopped(ds) {
		// Files were left unread: every later rule would judge a part of
		// the repository and report what the unread part defines as
		// missing. The limit is the one finding.
		repo := &config.Repo{Digest: digest(docs)}
		return repo, ds.Sort()
	}
	// Decode before the schema: the platform's image policy parameterises
	// the per-document image rule. Decode skips documents it cannot read;
	// the schema reports why.
	repo, dd := config.Decode(docs)
	repo.Unread = unread(ds)
	ds = append(ds, dd...)
	repo.Digest = digest(docs)
	sopts := schema.Options{Workers: opts.Workers}
	if repo.Platform != nil {
		sopts.ImagePrefixes = repo.Platform.Policy.Images
		sopts.RequireDigest = repo.Platform.Policy.RequireDigest
	}
	sd := schema.Check(docs, sopts)
	ds = append(ds, sd...)
	// One finding per place: where the schema already refused a value
	// (capAdd: [SYS_ADMIN]), a Go rule about the same value (no platform
	// exception for it) would only repeat the problem.
	seen := make(map[diag.Pos]bool, len(sd))
	for _, d := range sd {
		seen[d.Pos] = true
	}
	for _, d := range policy.Check(repo) {
		if !seen[d.Pos] {
			ds = append(ds, d)
		}
	}
	return repo, ds.Sort()
}

// noPlatform reports a repository with no document of kind Platform
// anywhere and no platform.yaml that failed to load (a syntax error there
// is reported as such, with the rest).
func noPlatform(docs []*config.Document, ds diag.List) bool {
	for _, d := range docs {
		if d.Kind == config.KindPlatform {
			return false
		}
	}
	for _, d := range ds {
		if d.File == "platform.yaml" || d.File == "platform.yml" {
			return false
		}
	}
	return true
}

// stopped reports a repository-wide limit: the loader read no further.
func stopped(ds diag.List) bool {
	for _, d := range ds {
		if d.Rule == config.RuleFileCount || d.Rule == config.RuleTotalSize {
			return true
		}
	}
	return false
}

// unread returns the owners of files whose documents the loader dropped:
// every input.* finding and a document that is not a mapping. Duplicate and
// merge keys are removed from a document that is kept.
func unread(ds diag.List) map[string]bool {
	var out map[string]bool
	for _, d := range ds {
		if !strings.HasPrefix(d.Rule, "input.") && d.Rule != config.RuleDocument {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[config.TenantOf(d.File)] = true
	}
	return out
}

// digest hashes every file's path and bytes once (the documents of one file
// share Content), in the loader's sorted order.
func digest(docs []*config.Document) string {
	h := sha256.New()
	last := ""
	for _, d := range docs {
		if d.File == last {
			continue
		}
		last = d.File
		h.Write([]byte(d.File))
		h.Write([]byte{0})
		h.Write(d.Content)
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
