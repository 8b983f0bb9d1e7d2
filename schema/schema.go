// Package schema validates each document of a config repository against the
// CUE schema embedded in the binary (moat.cue): structure, hardening and
// image rules, one document at a time. Rules that cross documents
// (ownership, uniqueness, addresses, links, grants, quotas, port policy)
// are Go code in package policy.
//
// # How a document is checked
//
//  1. Its kind is read from the yaml.Node; a missing or unknown kind is
//     reported (structure.kind) and the document goes no further.
//  2. The document root is checked in Go against a table read once per
//     process from the CUE definitions: unknown top-level fields
//     (closedness) and missing required fields.
//  3. Each top-level field's value is converted straight to a CUE AST (no
//     text round trip; scalars typed by the tag yaml.v3 resolved; keys
//     always quoted labels, so a key can never name a definition or a
//     hidden field), built in the worker's cue.Context, unified with that
//     field's constraint in the closed definition #<Kind> and validated
//     concretely. Nested structs stay closed, so CUE reports unknown and
//     missing fields below the root.
//  4. Every CUE error is mapped to one diagnostic. Its path is walked down
//     the yaml.Node to find the exact line and column: the key for an
//     unknown field, the value for a bad value, the mapping that lacks a
//     missing field. This is exact and needs neither a token.File nor
//     offsets, since yaml.v3 already recorded every node's position.
//  5. The rule id and message come from @rule attributes beside the
//     constraint in moat.cue (see the comment at its top), read once per
//     process into the same table. CUE's raw messages are never shown.
//
// # Why per field, and the memo
//
// Unifying a whole App with #App costs about 150µs, most of it spent on
// the definition's two dozen optional fields whatever the document holds.
// Per field, the cost follows what the document holds, and a field value
// that already passed (same kind, field and canonical value: see
// appendCanon) passes again without CUE. In a real repository names and
// env differ per app, but images, resources, LANs, uses and mounts repeat,
// so most fields hit the memo. The memo lives in one worker for one Check
// call. The price: a top-level field's constraint must not refer to a
// sibling top-level field (cross-field rules go inside a nested struct,
// like #Mount, or into package policy). moat.cue says so at its top.
//
// # Re-validation rounds
//
// CUE stops reporting closedness ("field not allowed") and required-field
// errors inside a struct once a field in it has a value error. To still
// give every diagnostic at once, a field with errors is validated again
// with each offending value replaced by _ (or an unknown field dropped),
// until a round finds nothing new (at most maxRounds). Valid values take
// one round; list indices never shift because elements are replaced, not
// removed. Errors at or under a replaced path are ignored, so nothing is
// reported twice.
//
// # Concurrency and memory
//
// Check runs Options.Workers goroutines. Each creates its own cue.Context
// inside Check and compiles the schema once: a context is not safe for
// concurrent use, and it interns every label it ever saw, so a context kept
// across calls would grow with every revision validated. The contexts and
// memos die with the call (see TestHeapStable).
package schema

import (
	_ "embed"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/diag"
)

//go:embed moat.cue
var schemaSrc string

// Options carry the platform settings that per-document rules need.
type Options struct {
	ImagePrefixes []string // allowed image prefixes (empty: any)
	RequireDigest bool     // images must be pinned by @sha256:
	Workers       int      // parallel CUE evaluators (default GOMAXPROCS)
}

// chunk is how many documents a worker claims at once: large enough that
// the atomic counter is not contended, small enough to balance the tail.
const chunk = 32

// Check validates every document against the schema of its kind. The list
// is sorted; nil documents are skipped.
func Check(docs []*config.Document, opts Options) diag.List {
	if len(docs) == 0 {
		return nil
	}
	t := loadTable()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, (len(docs)+chunk-1)/chunk)

	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		results = make([]diag.List, workers)
	)
	for w := range workers {
		wg.Go(func() {
			c := newChecker(t, opts)
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(docs) {
					return
				}
				for _, d := range docs[start:min(start+chunk, len(docs))] {
					if d == nil {
						continue
					}
					var broken bool
					results[w], broken = c.safeCheck(d, results[w])
					if broken {
						// A panic may leave the context half-updated.
						c = newChecker(t, opts)
					}
				}
			}
		})
	}
	wg.Wait()
	return slices.Concat(results...).Sort()
}

// checker is one worker's evaluator: its own context, schema and kinds.
type checker struct {
	t        *table
	opts     Options
	ctx      *cue.Context
	schema   cue.Value
	fields   map[string]map[string]cue.Value // kind -> top-level field -> constraint
	prefixes string                          // for messages
	conv     converter
	canon    []byte          // scratch for memo keys
	valid    map[string]bool // memo: canonical field values that passed
}

func newChecker(t *table, opts Options) *checker {
	ctx := cuecontext.New()
	s := ctx.CompileString(schemaSrc, cue.Filename("moat.cue"))
	s = s.FillPath(cue.ParsePath("policy.imagePrefix"), prefixRegexp(opts.ImagePrefixes))
	digest := ""
	if opts.RequireDigest {
		digest = "@sha256:[0-9a-f]{64}$"
	}
	s = s.FillPath(cue.ParsePath("policy.imageDigest"), digest)
	c := &checker{t: t, opts: opts, ctx: ctx, schema: s,
		fields: map[string]map[string]cue.Value{}, valid: map[string]bool{}}
	for _, k := range allKinds {
		fs := map[string]cue.Value{}
		// Optional fields are not reachable by LookupPath; the iterator
		// yields them with their constraints.
		it, err := s.LookupPath(cue.MakePath(cue.Def(k))).Fields(cue.Optional(true))
		if err != nil {
			panic(fmt.Errorf("schema: definition #%s: %w", k, err)) // embedded: a build defect
		}
		for it.Next() {
			fs[it.Selector().Unquoted()] = it.Value()
		}
		c.fields[k] = fs
	}
	c.prefixes = describePrefixes(opts.ImagePrefixes)
	return c
}

func prefixRegexp(prefixes []string) string {
	if len(prefixes) == 0 {
		return ""
	}
	q := make([]string, len(prefixes))
	for i, p := range prefixes {
		q[i] = regexp.QuoteMeta(p)
	}
	return "^(?:" + strings.Join(q, "|") + ")"
}

func describePrefixes(prefixes []string) string {
	q := make([]string, len(prefixes))
	for i, p := range prefixes {
		q[i] = fmt.Sprintf("%q", p)
	}
	if len(q) == 1 {
		return q[0]
	}
	return "one of " + strings.Join(q, ", ")
}

// safeCheck turns a panic inside CUE into a diagnostic: the repository is
// untrusted input, and one hostile document must not take down the
// reconciler. broken tells the caller to replace the checker.
func (c *checker) safeCheck(d *config.Document, out diag.List) (res diag.List, broken bool) {
	defer func() {
		if r := recover(); r != nil {
			res = append(out, diag.At(diag.Pos{File: d.File}, "structure.type",
				"this document could not be evaluated (internal error: %v): simplify it and report the problem", r))
			broken = true
		}
	}()
	return c.check(d, out), false
}
