package dirsnap

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// GitDrift says how the config files of a snapshot differ from the commit
// its git work tree has checked out: applying a work tree applies what is
// on disk, which may be an uncommitted edit or a half-finished checkout.
type GitDrift struct {
	Head     string   // commit id checked out ("" before the first commit)
	Modified []string // config files whose content differs from HEAD
	Added    []string // config files not in HEAD
	Deleted  []string // config files in HEAD, missing on disk
}

// Clean says the snapshot's config files are exactly HEAD's.
func (d *GitDrift) Clean() bool {
	return len(d.Modified)+len(d.Added)+len(d.Deleted) == 0 && d.Head != ""
}

func (d *GitDrift) String() string {
	if d.Head == "" {
		return "the git work tree has no commit yet"
	}
	var parts []string
	for _, x := range []struct {
		what  string
		files []string
	}{{"modified", d.Modified}, {"not committed", d.Added}, {"deleted", d.Deleted}} {
		if len(x.files) == 0 {
			continue
		}
		shown := x.files
		if len(shown) > 5 {
			shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(x.files)-5))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", x.what, strings.Join(shown, ", ")))
	}
	return fmt.Sprintf("config files differ from git HEAD %.12s (%s)", d.Head, strings.Join(parts, "; "))
}

// CheckGit compares the snapshot s of dir with the HEAD commit of the git
// work tree dir is in. It returns nil, nil when dir is not in a git work
// tree. Only config files (what config.Load reads) are compared, by their
// git blob ids, so the check reads no file again.
func CheckGit(dir string, s *Snapshot) (*GitDrift, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("git status of %s: %w", dir, err)
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("git status of %s: open repository: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("git status of %s: %w", dir, err)
	}
	rel, err := relative(wt.Filesystem.Root(), abs)
	if err != nil {
		return nil, fmt.Errorf("git status of %s: %w", dir, err)
	}
	want := map[string]plumbing.Hash{} // HEAD's config files under dir
	d := &GitDrift{}
	head, err := repo.Head()
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		// No commit yet: every file is new.
	case err != nil:
		return nil, fmt.Errorf("git status of %s: HEAD: %w", dir, err)
	default:
		d.Head = head.Hash().String()
		if err := headFiles(repo, head.Hash(), rel, want); err != nil {
			return nil, fmt.Errorf("git status of %s: %w", dir, err)
		}
	}
	mfs := s.FS.(*memFS)
	for p, e := range mfs.m {
		if !configFile(p) || (!e.copied && e.mode&fs.ModeSymlink == 0) {
			continue
		}
		content := e.data
		if e.mode&fs.ModeSymlink != 0 {
			content = []byte(e.target) // git stores a link's target as its blob
		}
		h, ok := want[p]
		switch {
		case !ok:
			d.Added = append(d.Added, p)
		case plumbing.ComputeHash(plumbing.BlobObject, content) != h:
			d.Modified = append(d.Modified, p)
		}
		delete(want, p)
	}
	for p := range want {
		d.Deleted = append(d.Deleted, p)
	}
	slices.Sort(d.Modified)
	slices.Sort(d.Added)
	slices.Sort(d.Deleted)
	return d, nil
}

// relative is dir's path inside the work tree root, with links resolved
// on both sides (a temp dir may be reached through a link).
func relative(root, dir string) (string, error) {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r, d)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// headFiles collects the config files of commit under the folder rel.
func headFiles(repo *git.Repository, commit plumbing.Hash, rel string, out map[string]plumbing.Hash) error {
	c, err := repo.CommitObject(commit)
	if err != nil {
		return fmt.Errorf("HEAD commit: %w", err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("HEAD tree: %w", err)
	}
	if rel != "." {
		if tree, err = tree.Tree(rel); errors.Is(err, object.ErrDirectoryNotFound) {
			return nil // the folder is not committed at all
		} else if err != nil {
			return fmt.Errorf("HEAD tree %s: %w", rel, err)
		}
	}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if err != nil {
			break // io.EOF, or a broken tree: what was read is compared
		}
		if entry.Mode.IsFile() && configFile(name) {
			out[name] = entry.Hash
		}
	}
	return nil
}

// configFile says whether config.Load reads the path: a YAML name with no
// dot-folder or dot-file on the way.
func configFile(p string) bool {
	if !isYAML(p) {
		return false
	}
	for _, elem := range strings.Split(p, "/") {
		if strings.HasPrefix(elem, ".") {
			return false
		}
	}
	return true
}
