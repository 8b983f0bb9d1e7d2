// Package dirsnap reads a live directory of config into an immutable,
// consistent in-memory snapshot: what the directory held at one instant,
// never a mix of a file half-written by an editor or two checkouts.
//
// A reader of a directory that something else is writing can see a file
// truncated and half rewritten, or one file from the old checkout and
// another from the new. Read takes the snapshot as "hash, read, re-hash":
// it copies the tree (metadata and contents), reads it all a second time,
// and keeps the copy only if nothing differs and nothing changed shortly
// before the first read; otherwise it waits and tries again, a bounded
// number of times. The quiet period matters: a writer paused in the middle
// of a file produces the same half file in both reads, but its change time
// is recent. Change times are the kernel's (ctime on Linux), which a
// writer cannot set back the way it can set a modification time.
//
// The snapshot's FS is what config.Load reads (config.Load(s.FS, lim)):
// YAML files, symbolic links and their targets are copied; every other
// entry is listed with its size but not copied, so Load reports exactly
// what it would report for the directory itself (limits, links, FIFOs).
//
// The watcher's dir source and the CLI share this function; neither reads
// a config directory any other way.
package dirsnap

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moat-platform/moat/config"
)

// Options tune Read; the zero value is the production default.
type Options struct {
	// Limits bound what is copied, as config.Load bounds what it reads
	// (zero fields take config.DefaultLimits).
	Limits config.Limits
	// Quiet is how long before the first read nothing may have changed
	// (default 100ms). Editors and git write a file in well under that.
	Quiet time.Duration
	// Attempts bounds the reads (default 40): a directory that never
	// stays still for Quiet is an error, not a hang.
	Attempts int
}

// DefaultQuiet and DefaultAttempts are the defaults of Options.
const (
	DefaultQuiet    = 100 * time.Millisecond
	DefaultAttempts = 40
)

// Snapshot is one consistent copy of a directory.
type Snapshot struct {
	// FS holds the copy; it implements fs.ReadDirFS, fs.StatFS and
	// fs.ReadLinkFS and never changes.
	FS fs.FS
	// ID is a content hash ("sha256:<hex>") of everything config.Load
	// reads: paths, kinds, link targets and file contents, not times.
	// Equal IDs mean equal config, so a watcher can skip a reconcile.
	ID string
	// Reads is how many times the directory was read (2 when it was
	// still; more when something was writing it).
	Reads int
}

// ErrUnstable is returned (wrapped) when the directory kept changing for
// every attempt.
var ErrUnstable = errors.New("the directory kept changing while it was read")

// Read takes a consistent snapshot of dir; see the package comment.
func Read(ctx context.Context, dir string, opts Options) (*Snapshot, error) {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	lim := opts.Limits.WithDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("read config directory: %w", err)
	}
	defer root.Close()
	rfs := root.FS()

	reads := 0
	why := ""
	for attempt := 0; attempt < opts.Attempts; attempt++ {
		start := time.Now()
		first := readTree(rfs, lim, true)
		second := readTree(rfs, lim, false)
		reads += 2
		switch {
		case first.meta != second.meta:
			why = "files changed while they were read"
		case first.newest.After(start.Add(-opts.Quiet)) && !first.newest.After(time.Now().Add(time.Second)):
			// Changed less than Quiet before the read: maybe a writer
			// paused mid-file. Wait until it has been quiet that long.
			// (A change time in the future means the clock moved
			// back; it cannot be waited out and the re-read decides.)
			why = fmt.Sprintf("%s changed %s before it was read", first.newestPath, start.Sub(first.newest).Round(time.Millisecond))
			wait := first.newest.Add(opts.Quiet).Sub(time.Now())
			if wait < time.Millisecond {
				wait = time.Millisecond
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("read config directory %s: %w", dir, err)
			}
			continue
		default:
			return &Snapshot{FS: first.fs, ID: first.id, Reads: reads}, nil
		}
		if err := sleep(ctx, opts.Quiet/4); err != nil {
			return nil, fmt.Errorf("read config directory %s: %w", dir, err)
		}
	}
	return nil, fmt.Errorf("read config directory %s: %w (%d reads; last: %s); is something still writing it?", dir, ErrUnstable, reads, why)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tree is one read of the directory.
type tree struct {
	fs         *memFS
	meta       string    // hash of metadata and contents of every entry
	id         string    // hash of what Load reads (no times)
	newest     time.Time // latest change time seen
	newestPath string
}

// reader is the state of one read.
type reader struct {
	rfs    fs.FS
	lim    config.Limits
	keep   bool // build the copy (the second read only hashes)
	t      tree
	meta   hash.Hash
	id     hash.Hash
	copied int64 // bytes copied so far
}

func readTree(rfs fs.FS, lim config.Limits, keep bool) tree {
	r := &reader{rfs: rfs, lim: lim, keep: keep, meta: sha256.New(), id: sha256.New()}
	r.t.fs = &memFS{m: map[string]*entry{".": {name: ".", mode: fs.ModeDir | 0o755}}}
	var links []string
	_ = fs.WalkDir(rfs, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			r.add(p, &entry{name: path.Base(p), mode: fs.ModeDir, err: pathErr(err)}, nil)
			return nil
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			// .git and editor swap files: Load skips them too, and
			// git rewrites .git on every fetch.
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			r.add(p, &entry{name: d.Name(), mode: d.Type(), err: pathErr(err)}, nil)
			return nil
		}
		e := &entry{name: d.Name(), mode: info.Mode(), size: info.Size(), modTime: info.ModTime()}
		switch t := info.Mode(); {
		case p == ".":
			r.stamp(p, info)
			return nil
		case t&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(rfs, p)
			if err != nil {
				e.err = pathErr(err)
			}
			e.target = target
			links = append(links, p)
		case t.IsRegular() && isYAML(p):
			r.copyFile(p, e, info.Size())
		}
		r.add(p, e, info)
		return nil
	})
	for _, l := range links {
		r.copyTarget(l)
	}
	r.t.meta = hex.EncodeToString(r.meta.Sum(nil))
	r.t.id = "sha256:" + hex.EncodeToString(r.id.Sum(nil))
	return r.t
}

func isYAML(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// copyFile copies the regular file p into e when the limits allow; Load
// refuses what they do not, from the size alone.
func (r *reader) copyFile(p string, e *entry, size int64) {
	if size > r.lim.MaxFileBytes || r.copied+size > r.lim.MaxTotalBytes {
		return
	}
	data, err := readBounded(r.rfs, p, r.lim.MaxFileBytes)
	if err != nil {
		e.err = pathErr(err)
		return
	}
	r.copied += int64(len(data))
	// The size Load checks is what was read, not what the listing said.
	e.size = int64(len(data))
	e.copied = true
	if r.keep {
		e.data = data
	} else {
		// Only the hash is needed; keep nothing.
		e.data = nil
	}
	sum := sha256.Sum256(data)
	r.meta.Write(sum[:])
	r.id.Write(sum[:])
}

// copyTarget copies the regular file a link leads to, when the link stays
// inside the root (Load decides again, element by element, whether to read
// it; anything it would refuse is never needed).
func (r *reader) copyTarget(link string) {
	p := link
	for hops := 0; hops < 40; hops++ {
		target, err := fs.ReadLink(r.rfs, p)
		if err != nil || target == "" || path.IsAbs(target) {
			return
		}
		p = path.Join(path.Dir(p), target)
		if p == ".." || strings.HasPrefix(p, "../") {
			return
		}
		info, err := fs.Lstat(r.rfs, p)
		if err != nil {
			return
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			if _, seen := r.t.fs.m[p]; !seen {
				r.add(p, &entry{name: path.Base(p), mode: info.Mode(), target: target}, info)
			}
			continue
		}
		if e, seen := r.t.fs.m[p]; seen && (e.copied || !info.Mode().IsRegular()) {
			return
		}
		e := &entry{name: path.Base(p), mode: info.Mode(), size: info.Size(), modTime: info.ModTime()}
		if info.Mode().IsRegular() {
			r.copyFile(p, e, info.Size())
		}
		r.add(p, e, info)
		return
	}
}

// add records e at p and hashes its metadata (info may be nil when it
// could not be read).
func (r *reader) add(p string, e *entry, info fs.FileInfo) {
	if r.keep {
		r.t.fs.add(p, e)
	} else if _, ok := r.t.fs.m[p]; !ok {
		// Targets are looked up while copying links: keep the entry
		// without data.
		r.t.fs.m[p] = e
	}
	writeString(r.meta, p)
	writeString(r.id, p)
	writeInt(r.meta, uint64(e.mode))
	writeInt(r.id, uint64(e.mode.Type()))
	writeString(r.meta, e.target)
	writeString(r.id, e.target)
	if e.err != nil {
		writeString(r.meta, e.err.Error())
		writeString(r.id, e.err.Error())
	}
	if info != nil {
		r.stamp(p, info)
	}
}

// stamp hashes what changes when a file is written (size, times, inode)
// and tracks the latest change.
func (r *reader) stamp(p string, info fs.FileInfo) {
	writeInt(r.meta, uint64(info.Size()))
	writeInt(r.meta, uint64(info.ModTime().UnixNano()))
	ctime, ino := changeTime(info)
	writeInt(r.meta, uint64(ctime.UnixNano()))
	writeInt(r.meta, ino)
	if ctime.After(r.t.newest) {
		r.t.newest, r.t.newestPath = ctime, p
	}
}

func writeString(h hash.Hash, s string) {
	writeInt(h, uint64(len(s)))
	io.WriteString(h, s)
}

func writeInt(h hash.Hash, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

var errTooBig = errors.New("file too big")

// readBounded reads at most max bytes of a regular file: the size from the
// listing may be stale.
func readBounded(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errTooBig
	}
	return data, nil
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
