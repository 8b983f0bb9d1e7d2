package dirsnap

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// entry is one path of a snapshot. A regular file that was copied has
// data; one that was not (too big, not YAML and no link's target) has only
// its size, so that Load sees the same listing and reports the same limits.
type entry struct {
	name    string // base name
	mode    fs.FileMode
	size    int64
	modTime time.Time
	data    []byte // regular files that were copied
	copied  bool
	target  string   // symbolic links
	err     error    // what opening it would have said
	kids    []string // directories: sorted child names
}

// memFS is an immutable in-memory tree: what the directory held at one
// instant. It implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS,
// the interfaces config.Load uses. Open does not follow symbolic links
// (Load resolves links itself, inside the root, and opens the real path).
type memFS struct{ m map[string]*entry }

var errLink = errors.New("is a symbolic link; resolve it first")

func (f *memFS) lookup(op, name string) (*entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e, ok := f.m[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

func (f *memFS) Open(name string) (fs.File, error) {
	e, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	switch {
	case e.err != nil:
		return nil, &fs.PathError{Op: "open", Path: name, Err: e.err}
	case e.mode&fs.ModeSymlink != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLink}
	case e.mode.IsDir():
		return &memDir{fs: f, dir: name, e: e}, nil
	case e.mode.IsRegular() && !e.copied:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not copied into the snapshot (too big, or not a file moat reads)")}
	case !e.mode.IsRegular():
		// Never opened for reading (a FIFO would block); Stat works.
		return &memFile{e: e}, nil
	}
	return &memFile{e: e, r: strings.NewReader(string(e.data))}, nil
}

func (f *memFS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	if e.mode&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: errLink}
	}
	return info{e}, nil
}

func (f *memFS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return info{e}, nil
}

func (f *memFS) ReadLink(name string) (string, error) {
	e, err := f.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return e.target, nil
}

func (f *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: e.err}
	}
	if !e.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, 0, len(e.kids))
	for _, k := range e.kids {
		out = append(out, fs.FileInfoToDirEntry(info{f.m[path.Join(name, k)]}))
	}
	return out, nil
}

// add records e at p and lists it in its parent (created as needed).
func (f *memFS) add(p string, e *entry) {
	f.m[p] = e
	for p != "." {
		dir := path.Dir(p)
		parent, ok := f.m[dir]
		if !ok {
			parent = &entry{name: path.Base(dir), mode: fs.ModeDir | 0o755}
			f.m[dir] = parent
		}
		base := path.Base(p)
		if i, found := slices.BinarySearch(parent.kids, base); !found {
			parent.kids = slices.Insert(parent.kids, i, base)
		}
		if ok {
			return
		}
		p = dir
	}
}

type info struct{ e *entry }

func (i info) Name() string       { return i.e.name }
func (i info) Size() int64        { return i.e.size }
func (i info) Mode() fs.FileMode  { return i.e.mode }
func (i info) ModTime() time.Time { return i.e.modTime }
func (i info) IsDir() bool        { return i.e.mode.IsDir() }
func (i info) Sys() any           { return nil }

type memFile struct {
	e *entry
	r *strings.Reader
}

func (m *memFile) Stat() (fs.FileInfo, error) { return info{m.e}, nil }
func (m *memFile) Close() error               { return nil }
func (m *memFile) Read(b []byte) (int, error) {
	if m.r == nil {
		return 0, &fs.PathError{Op: "read", Path: m.e.name, Err: fs.ErrInvalid}
	}
	return m.r.Read(b)
}

type memDir struct {
	fs   *memFS
	dir  string
	e    *entry
	next int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return info{d.e}, nil }
func (d *memDir) Close() error               { return nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.dir, Err: errors.New("is a directory")}
}

func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	rest := all[d.next:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.next += len(rest)
	return rest, nil
}
