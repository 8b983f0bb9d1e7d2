package watch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// snapshot is an immutable in-memory tree: what a revision's fs.FS is.
// Both sources read a revision whole before it is used, so validation
// never sees a half-written checkout or a file that changes under it.
// It implements fs.ReadLinkFS so the loader's symlink rules apply.
type snapshot struct {
	files map[string]*memFile // by slash path; directories included
}

type memFile struct {
	name string // base name
	data []byte
	mode fs.FileMode // fs.ModeDir, fs.ModeSymlink or 0
	kids []string    // sorted child base names, for directories
}

func newSnapshot() *snapshot {
	return &snapshot{files: map[string]*memFile{".": {name: ".", mode: fs.ModeDir | 0o755}}}
}

// add puts a file or symlink (link target in data) at p, making parents.
func (s *snapshot) add(p string, data []byte, mode fs.FileMode) {
	s.mkdirs(path.Dir(p))
	if _, ok := s.files[p]; !ok {
		parent := s.files[path.Dir(p)]
		parent.kids = append(parent.kids, path.Base(p))
	}
	s.files[p] = &memFile{name: path.Base(p), data: data, mode: mode}
}

func (s *snapshot) mkdirs(p string) {
	if _, ok := s.files[p]; ok || p == "." {
		return
	}
	s.mkdirs(path.Dir(p))
	parent := s.files[path.Dir(p)]
	parent.kids = append(parent.kids, path.Base(p))
	s.files[p] = &memFile{name: path.Base(p), mode: fs.ModeDir | 0o755}
}

// finish sorts directory listings and returns the content hash: paths,
// kinds and bytes, so that a touch, a rewrite with the same bytes or an
// editor's swap file dance gives the same revision id.
func (s *snapshot) finish() string {
	keys := make([]string, 0, len(s.files))
	for k, f := range s.files {
		slices.Sort(f.kids)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		f := s.files[k]
		if f.mode.IsDir() {
			continue
		}
		kind := "f"
		if f.mode&fs.ModeSymlink != 0 {
			kind = "l"
		}
		io.WriteString(h, kind+" "+k+"\x00")
		var n [8]byte
		for i, l := 0, len(f.data); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(f.data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (s *snapshot) lookup(op, name string) (*memFile, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	f, ok := s.files[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}

// Open follows no links: the loader resolves them itself with Lstat and
// ReadLink, one element at a time inside the root.
func (s *snapshot) Open(name string) (fs.File, error) {
	f, err := s.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if f.mode&fs.ModeSymlink != 0 {
		t, err := s.resolve(name, 0)
		if err != nil {
			return nil, err
		}
		f = t
	}
	return &openFile{f: f, s: s, path: name, r: bytes.NewReader(f.data)}, nil
}

// resolve follows a symlink inside the snapshot (for Open of a link).
func (s *snapshot) resolve(name string, depth int) (*memFile, error) {
	f := s.files[name]
	if f.mode&fs.ModeSymlink == 0 {
		return f, nil
	}
	if depth > 40 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	t := string(f.data)
	if strings.HasPrefix(t, "/") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	t = path.Join(path.Dir(name), t)
	if _, ok := s.files[t]; !ok || !fs.ValidPath(t) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.resolve(t, depth+1)
}

func (s *snapshot) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := s.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !f.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	out := make([]fs.DirEntry, 0, len(f.kids))
	for _, k := range f.kids {
		out = append(out, fs.FileInfoToDirEntry(info{s.files[path.Join(name, k)]}))
	}
	return out, nil
}

func (s *snapshot) ReadFile(name string) ([]byte, error) {
	fh, err := s.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(fh)
}

func (s *snapshot) Lstat(name string) (fs.FileInfo, error) {
	f, err := s.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return info{f}, nil
}

func (s *snapshot) Stat(name string) (fs.FileInfo, error) {
	f, err := s.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	if f.mode&fs.ModeSymlink != 0 {
		if f, err = s.resolve(name, 0); err != nil {
			return nil, err
		}
	}
	return info{f}, nil
}

func (s *snapshot) ReadLink(name string) (string, error) {
	f, err := s.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if f.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return string(f.data), nil
}

type info struct{ f *memFile }

func (i info) Name() string       { return i.f.name }
func (i info) Size() int64        { return int64(len(i.f.data)) }
func (i info) Mode() fs.FileMode  { return i.f.mode | 0o444 }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.f.mode.IsDir() }
func (i info) Sys() any           { return nil }

type openFile struct {
	f    *memFile
	s    *snapshot
	path string
	r    *bytes.Reader
	dir  int
}

func (o *openFile) Stat() (fs.FileInfo, error) { return info{o.f}, nil }
func (o *openFile) Read(b []byte) (int, error) {
	if o.f.mode.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: o.path, Err: fs.ErrInvalid}
	}
	return o.r.Read(b)
}
func (o *openFile) Close() error { return nil }

// ReadDir makes directories walkable through Open as well.
func (o *openFile) ReadDir(n int) ([]fs.DirEntry, error) {
	all, err := o.s.ReadDir(o.path)
	if err != nil {
		return nil, err
	}
	all = all[o.dir:]
	if n > 0 && len(all) > n {
		all = all[:n]
	}
	o.dir += len(all)
	if n > 0 && len(all) == 0 {
		return nil, io.EOF
	}
	return all, nil
}
