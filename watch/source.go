// Package watch is moat's long-running reconciler: it follows a source of
// configuration revisions (a git branch or a local directory), and runs the
// controller's pipeline whenever a trigger fires (a poll, a file change, a
// webhook, an engine event, the periodic resync), one reconcile at a time.
// It imports no Docker SDK: the engine is the engine.Engine interface.
package watch

import (
	"context"
	"io/fs"
	"time"
)

// Revision is one immutable state of the configuration.
type Revision struct {
	// ID is the commit hash (git) or "sha256:<content hash>" (dir).
	ID string
	// FS holds the whole configuration (the --path subfolder for git).
	FS fs.FS
	// Time is the commit time (git) or when the snapshot was read (dir).
	Time time.Time
	// Summary is the commit's first line (git), for logs and status.
	Summary string
}

// Source yields revisions.
type Source interface {
	// Fetch brings the source up to date (a git fetch of one branch, a
	// directory read) and returns its newest revision. base is the last
	// applied revision id ("" when none): the git source refuses a head
	// that does not descend from it (a force push) unless allowed, and
	// checks the signatures of every commit in between.
	Fetch(ctx context.Context, base string) (*Revision, error)
	// Watch calls changed whenever Fetch may return something new, until
	// ctx ends. A source without change notifications (git) returns at
	// once: the watcher polls it.
	Watch(ctx context.Context, changed func()) error
	// String describes the source for logs.
	String() string
}

// RefusedError is a revision that may not be applied for a reason other
// than its content: a force push, a commit signature that trust refuses.
// Like an invalid revision, it is reported and not retried until the
// source's head changes.
type RefusedError struct {
	Revision string
	Reason   string
}

func (e *RefusedError) Error() string {
	return "revision " + short(e.Revision) + " refused: " + e.Reason
}

func short(id string) string {
	if len(id) > 12 && id[:7] != "sha256:" {
		return id[:12]
	}
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
