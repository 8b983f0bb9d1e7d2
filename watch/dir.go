package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/moat-platform/moat/config/dirsnap"
)

// Read bounds of the git source, matching the loader's defaults: a blob
// is read up to one byte past the loader's per-file limit (so the loader
// still reports it as too large, with its name), never whole.
const (
	dirMaxFileBytes = 1<<20 + 1
	dirMaxFiles     = 20001
)

// DirSource is a local directory. Its revision id is the hash of the
// content moat reads (YAML files and symlinks outside dot-folders), so a
// touch or an editor's save of the same bytes is not a new revision.
type DirSource struct {
	Root string
	// Quiet is how long the tree must be quiet after an event before it is
	// read (default 500 ms); MaxDelay bounds the wait under a constant
	// stream of events (default 5 s).
	Quiet, MaxDelay time.Duration

	mu   sync.Mutex
	last *Revision
	// rescans counts full rescans after an event-queue overflow (tests).
	rescans int
}

// NewDirSource returns a dir source for root.
func NewDirSource(root string) (*DirSource, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dir source %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("dir source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("dir source %s: not a directory", root)
	}
	return &DirSource{Root: abs, Quiet: 500 * time.Millisecond, MaxDelay: 5 * time.Second}, nil
}

func (d *DirSource) String() string { return "dir " + d.Root }

// Fetch reads the tree as one consistent snapshot (config/dirsnap: hash,
// read, re-hash, quiet period), so a revision is never half of one save
// and half of the next.
func (d *DirSource) Fetch(ctx context.Context, _ string) (*Revision, error) {
	snap, err := dirsnap.Read(ctx, d.Root, dirsnap.Options{})
	if err != nil {
		return nil, fmt.Errorf("dir source: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last != nil && d.last.ID == snap.ID {
		return d.last, nil
	}
	d.last = &Revision{ID: snap.ID, FS: snap.FS, Time: time.Now()}
	return d.last, nil
}

// skip says whether a directory entry is outside what moat reads.
func skip(name string) bool { return strings.HasPrefix(name, ".") }

func isYAML(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

// Watch follows the tree with fsnotify. fsnotify is not recursive: every
// directory is added, new ones as they appear (and read at once: files
// created before the watch was in place would otherwise be missed);
// removed ones drop out by themselves. Events are debounced: changed is
// called once the tree has been quiet for Quiet, or MaxDelay after the
// first event of a burst, and only if the content hash moved. An
// event-queue overflow means events were lost: the whole tree is added
// again and read.
func (d *DirSource) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return fmt.Errorf("dir source: %w", err)
	}
	defer w.Close()
	if err := d.addTree(w, d.Root); err != nil {
		return err
	}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var first time.Time // start of the current burst; zero when none
	pending := false
	arm := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		wait := d.Quiet
		if rest := first.Add(d.MaxDelay).Sub(now); rest < wait {
			wait = max(rest, 0)
		}
		quiet.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("dir source: watcher closed")
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() && !skip(filepath.Base(ev.Name)) {
					_ = d.addTree(w, ev.Name)
				}
			}
			if d.relevant(ev.Name) {
				arm()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("dir source: watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				d.mu.Lock()
				d.rescans++
				d.mu.Unlock()
				_ = d.addTree(w, d.Root)
				arm()
			}
		case <-quiet.C:
			pending = false
			d.mu.Lock()
			prev := ""
			if d.last != nil {
				prev = d.last.ID
			}
			d.mu.Unlock()
			rev, err := d.Fetch(ctx, "")
			if err != nil || rev.ID != prev {
				changed() // the watcher fetches again and reports the error
			}
		}
	}
}

// relevant: events inside dot-folders (.git during a checkout) are not.
func (d *DirSource) relevant(name string) bool {
	rel, err := filepath.Rel(d.Root, name)
	if err != nil {
		return false
	}
	for _, el := range strings.Split(filepath.ToSlash(rel), "/") {
		if skip(el) && el != "." {
			return false
		}
	}
	return true
}

// addTree watches dir and every directory below it (not dot-folders).
func (d *DirSource) addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile
		}
		if !e.IsDir() {
			return nil
		}
		if p != d.Root && skip(e.Name()) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil && p == d.Root {
			return fmt.Errorf("dir source: watch %s: %w", p, err)
		}
		return nil
	})
}
