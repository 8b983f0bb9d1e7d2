package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moat-platform/moat/diag"
)

// Load reads every *.yaml and *.yml file under the root of fsys (dot-folders
// and dot-files skipped, other files ignored), parses each into documents,
// and reports syntax errors and hostile input as diagnostics. Documents come
// back sorted by (File, Index). Zero fields of lim take DefaultLimits.
//
// The repository is untrusted (tenants edit it), so Load never panics on
// its content, never reads a file outside the root (symbolic links are
// resolved here, one element at a time, and never handed to the FS to
// follow), never opens a device or pipe, and bounds what it keeps in memory
// by the limits. A document with a problem that makes its tree unusable
// (too deep, too many nodes, not a mapping) is dropped after its diagnostic;
// merge keys and duplicate keys are reported and removed from the tree so
// later checks neither see them nor report them a second time.
//
// Links are checked before files are opened, so a tree that changes while
// Load runs could swap a checked directory for a link in between. Sources
// give Load a snapshot (a git tree), or for a live directory an
// (*os.Root).FS(), which refuses to leave the root on its own.
func Load(fsys fs.FS, lim Limits) ([]*Document, diag.List) {
	l := &loader{fsys: fsys, lim: lim.withDefaults()}
	l.walk()
	slices.SortStableFunc(l.docs, func(a, b *Document) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Index, b.Index))
	})
	return l.docs, l.diags
}

// loader is the state of one Load: what was read so far against the
// repository-wide limits.
type loader struct {
	fsys  fs.FS
	lim   Limits
	docs  []*Document
	diags diag.List

	files   int   // YAML files seen (links included)
	bytes   int64 // bytes read
	nodes   int   // YAML nodes kept, after alias expansion
	stopped bool  // a repository-wide limit was hit: read nothing more
}

// controlChar reports a name with a C0 control character or DEL.
func controlChar(name string) bool {
	return strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func isYAML(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

func (l *loader) walk() {
	// WalkDir visits entries in lexical order, so which files a limit cuts
	// off is deterministic. It does not descend into symbolic links to
	// directories: their DirEntry is a link, not a directory.
	_ = fs.WalkDir(l.fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// The root itself, or a directory that cannot be listed.
			l.diags.Add(diag.Pos{File: p}, RuleFile, "cannot read %s: %v", p, pathErr(err))
			return nil
		}
		if bad := controlChar(d.Name()); bad && (d.IsDir() || isYAML(p) || d.Type()&fs.ModeSymlink != 0) {
			// A newline in a name would forge lines in every report that
			// shows it; such a name is refused, and shown quoted.
			l.diags.Add(diag.Pos{File: p}, RuleFile,
				"the name %s contains a control character (a newline, tab, ...); rename it", strconv.Quote(d.Name()))
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			// .git, .github, editor swap files: never config.
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			l.link(p)
		case !isYAML(p):
			// README.md, scripts, images: ignored, not errors.
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				l.diags.Add(diag.Pos{File: p}, RuleFile, "cannot read %s: %v", p, pathErr(err))
				break
			}
			l.read(p, p, info.Size())
		default:
			// Opening a FIFO would block forever; a device could be
			// anything. Only regular files are read.
			l.diags.Add(diag.Pos{File: p}, RuleFile,
				"%s is not a regular file (%v); replace it with a file or rename it", p, t)
		}
		if l.stopped {
			return fs.SkipAll
		}
		return nil
	})
}

// pathErr strips the path from a *fs.PathError: the diagnostic already
// names the file, and an os.DirFS error may carry the host's absolute path.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// link handles the symbolic link at p. A link to a regular file inside the
// root is read as that file under the link's name; anything else is
// reported. Links with a non-YAML name are only reported when they leave
// the root or point to a directory (either could smuggle content in).
func (l *loader) link(p string) {
	pos := diag.Pos{File: p}
	rl, ok := l.fsys.(fs.ReadLinkFS)
	if !ok {
		if isYAML(p) {
			l.diags.Add(pos, RuleSymlink, "symbolic link cannot be resolved by this source; replace the link with the file itself")
		}
		return
	}
	real, info, bad := resolveLink(rl, p)
	switch {
	case bad.escapes:
		l.diags.Add(pos, RuleSymlink, "%s; links must stay inside the repository, replace the link with the file itself", bad.why)
		return
	case bad.why != "":
		if isYAML(p) {
			l.diags.Add(pos, RuleSymlink, "%s; replace the link with the file itself", bad.why)
		}
		return
	case info.IsDir():
		l.diags.Add(pos, RuleSymlink,
			"symbolic link to the directory %q is not followed; move the files into the repository instead", real)
		return
	case !isYAML(p):
		return
	case !info.Mode().IsRegular():
		l.diags.Add(pos, RuleFile, "symbolic link to %q, which is not a regular file (%v)", real, info.Mode().Type())
		return
	case !sameOwner(p, real):
		// Ownership is by folder: a link in tenants/acme/ to a file of
		// tenants/globex/ would let globex's file configure acme (or a
		// platform file be written by a tenant).
		l.diags.Add(pos, RuleSymlink,
			"symbolic link points to %q, outside %s; a link must stay inside its owner's folder, replace it with the file itself", real, ownerFolder(p))
		return
	}
	l.read(p, real, info.Size())
}

// sameOwner reports whether two repository paths have the same owner: the
// same tenant folder, or both outside tenants/.
func sameOwner(a, b string) bool {
	inA, inB := strings.HasPrefix(a, "tenants/"), strings.HasPrefix(b, "tenants/")
	if inA != inB {
		return false
	}
	return !inA || TenantOf(a) == TenantOf(b) && TenantOf(a) != ""
}

// ownerFolder names the folder that owns path p, for messages.
func ownerFolder(p string) string {
	if t := TenantOf(p); t != "" {
		return "tenants/" + t + "/"
	}
	if strings.HasPrefix(p, "tenants/") {
		return "tenants/"
	}
	return "the platform's files (everything outside tenants/)"
}

// errTooBig is returned by readBounded when a file grew past the limit
// between the size check and the read.
var errTooBig = errors.New("file too big")

// read reads the regular file real (a path inside the root with no
// symbolic link in it) and parses it as the file name. size is what the
// directory listing said; the limits are checked against it before the file
// is opened, and again against what is actually read.
func (l *loader) read(name, real string, size int64) {
	pos := diag.Pos{File: name}
	l.files++
	if l.files > l.lim.MaxFiles {
		l.diags.Add(pos, RuleFileCount,
			"the repository has more than %d YAML files; this and later files were not read", l.lim.MaxFiles)
		l.stopped = true
		return
	}
	if size > l.lim.MaxFileBytes {
		l.diags.Add(pos, RuleFileSize, "file is %d bytes, more than the limit of %d; split it", size, l.lim.MaxFileBytes)
		return
	}
	if l.bytes+size > l.lim.MaxTotalBytes {
		l.diags.Add(pos, RuleTotalSize,
			"the YAML files of the repository exceed %d bytes in total; this and later files were not read", l.lim.MaxTotalBytes)
		l.stopped = true
		return
	}
	data, err := readBounded(l.fsys, real, l.lim.MaxFileBytes)
	switch {
	case errors.Is(err, errTooBig):
		l.diags.Add(pos, RuleFileSize, "file is more than the limit of %d bytes; split it", l.lim.MaxFileBytes)
		return
	case err != nil:
		l.diags.Add(pos, RuleFile, "cannot read %s: %v", name, pathErr(err))
		return
	}
	l.bytes += int64(len(data))
	if l.bytes > l.lim.MaxTotalBytes {
		l.diags.Add(pos, RuleTotalSize,
			"the YAML files of the repository exceed %d bytes in total; this and later files were not read", l.lim.MaxTotalBytes)
		l.stopped = true
		return
	}
	l.parse(name, data)
}

// readBounded reads at most max bytes of the file: the size from the
// listing may be stale, and an FS may not know sizes at all.
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
	if info.Size() > max {
		return nil, errTooBig
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

// maxLinkHops bounds how many links one resolution follows (Linux uses 40).
const maxLinkHops = 40

// linkProblem says why a link is refused. escapes marks the problems that
// are reported whatever the link's name: a way out of the root.
type linkProblem struct {
	why     string
	escapes bool
}

// resolveLink follows the link at name the way the kernel would, one path
// element at a time, but inside fsys only: ".." never climbs above the
// root and an absolute target is refused. It returns the resolved path,
// which contains no symbolic link, so that opening it through any fs.FS
// (os.DirFS follows links on Open) reads exactly that file. Resolving by
// elements, not by cleaning the joined string, matters: "sub/../x" where sub
// is itself a link means the parent of sub's target, not x.
func resolveLink(fsys fs.ReadLinkFS, name string) (string, fs.FileInfo, linkProblem) {
	var done []string // resolved elements: real directories, no links
	todo := strings.Split(name, "/")
	hops := 0
	for len(todo) > 0 {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", nil, linkProblem{"symbolic link leads out of the repository", true}
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(path.Join(done...), elem)
		fi, err := fsys.Lstat(cur)
		if err != nil {
			return "", nil, linkProblem{why: fmt.Sprintf("symbolic link points to %s, which does not exist", cur)}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > maxLinkHops {
				return "", nil, linkProblem{why: "too many levels of symbolic links"}
			}
			target, err := fsys.ReadLink(cur)
			if err != nil {
				return "", nil, linkProblem{why: fmt.Sprintf("cannot read symbolic link %s: %v", cur, pathErr(err))}
			}
			slash := filepath.ToSlash(target)
			if target == "" || path.IsAbs(slash) || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
				return "", nil, linkProblem{fmt.Sprintf("symbolic link points to the absolute path %q", target), true}
			}
			// The target is relative to the link's directory, which is
			// done; continue with its elements, then what was left.
			todo = append(strings.Split(slash, "/"), todo...)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return "", nil, linkProblem{why: fmt.Sprintf("symbolic link points below %s, which is not a directory", cur)}
		}
		done = append(done, elem)
	}
	real := "."
	if len(done) > 0 {
		real = path.Join(done...)
	}
	// Every element of real is a checked non-link, so Lstat here sees
	// what Open will open.
	info, err := fsys.Lstat(real)
	if err != nil {
		return "", nil, linkProblem{why: fmt.Sprintf("symbolic link points to %s, which cannot be read", real)}
	}
	return real, info, linkProblem{}
}
