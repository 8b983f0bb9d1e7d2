package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// GitOptions configure a git source.
type GitOptions struct {
	URL    string
	Branch string // default "main"
	// Path is the configuration's folder inside the repository ("" root).
	Path string
	// CacheDir holds the bare clones (one per URL).
	CacheDir string
	// Auth for ssh or https (nil for local paths and anonymous https).
	Auth transport.AuthMethod
	// AllowForcePush accepts a head that does not descend from the last
	// applied revision.
	AllowForcePush bool
	// Trust, when set, is checked on every commit of each new range.
	Trust *Trust
	// FetchTimeout bounds one fetch (default 2 minutes).
	FetchTimeout time.Duration
}

// GitSource is a branch of a git repository, fetched into a bare clone;
// files are read straight from the commit's tree, so there is no work tree
// that could ever be seen half checked out.
type GitSource struct {
	opts   GitOptions
	repo   *git.Repository
	remote string // the remote-tracking ref name

	mu      sync.Mutex // one fetch at a time
	lastRev *Revision
	checked map[[2]string]error // trust and ancestry verdicts by (base, head)
}

var installFile sync.Once

// NewGitSource opens (or creates) the bare clone of opts.URL in CacheDir.
func NewGitSource(opts GitOptions) (*GitSource, error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 2 * time.Minute
	}
	opts.Path = strings.Trim(path.Clean("/"+filepath.ToSlash(opts.Path)), "/")
	if local, ok := localPath(opts.URL); ok {
		abs, err := filepath.Abs(local)
		if err != nil {
			return nil, fmt.Errorf("git source %s: %w", opts.URL, err)
		}
		opts.URL = "file://" + abs
	}
	// Local repositories are served in-process by go-git, never by running
	// git-upload-pack: moat's image has no git binary.
	installFile.Do(func() { client.InstallProtocol("file", server.NewClient(localLoader{})) })

	sum := sha256.Sum256([]byte(opts.URL))
	dir := filepath.Join(opts.CacheDir, hex.EncodeToString(sum[:8])+".git")
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("git cache: %w", err)
		}
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("git cache %s: %w", dir, err)
	}
	if _, err := repo.Remote("origin"); errors.Is(err, git.ErrRemoteNotFound) {
		if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{opts.URL}}); err != nil {
			return nil, fmt.Errorf("git cache: %w", err)
		}
	}
	return &GitSource{opts: opts, repo: repo, remote: "refs/remotes/origin/" + opts.Branch, checked: map[[2]string]error{}}, nil
}

// localPath says whether url names a local repository (a path or file://).
func localPath(url string) (string, bool) {
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		return p, true
	}
	if strings.Contains(url, "://") || (strings.Contains(url, ":") && !strings.HasPrefix(url, "/") && !strings.HasPrefix(url, ".")) {
		return "", false // https://, ssh://, or scp-like user@host:path
	}
	return url, true
}

func (g *GitSource) String() string {
	s := "git " + g.opts.URL + " branch " + g.opts.Branch
	if g.opts.Path != "" {
		s += " path " + g.opts.Path
	}
	return s
}

// Watch: git has no change notifications; the watcher polls Fetch.
func (g *GitSource) Watch(ctx context.Context, _ func()) error { return nil }

// Fetch fetches the one branch and returns its head. A head that does not
// descend from base is refused (force push) unless allowed; with trust,
// every commit from base to head is verified first. Either refusal is a
// *RefusedError.
func (g *GitSource) Fetch(ctx context.Context, base string) (*Revision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, g.opts.FetchTimeout)
	defer cancel()
	spec := gitconfig.RefSpec("+refs/heads/" + g.opts.Branch + ":" + g.remote)
	err := g.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{spec}, Auth: g.opts.Auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("git fetch %s branch %s: %w", g.opts.URL, g.opts.Branch, err)
	}
	ref, err := g.repo.Reference(plumbing.ReferenceName(g.remote), true)
	if err != nil {
		return nil, fmt.Errorf("git %s: branch %s: %w", g.opts.URL, g.opts.Branch, err)
	}
	head, err := g.repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("git %s: head %s: %w", g.opts.URL, ref.Hash(), err)
	}
	id := head.Hash.String()
	if base != "" && base != id {
		key := [2]string{base, id}
		verdict, done := g.checked[key]
		if !done {
			verdict = g.check(base, head)
			g.remember(key, verdict)
		}
		if verdict != nil {
			return nil, verdict
		}
	} else if base == "" && g.opts.Trust != nil {
		// No applied revision to start from: the head must be signed by a
		// platform key, which vouches for the whole tree.
		key := [2]string{"", id}
		verdict, done := g.checked[key]
		if !done {
			verdict = g.opts.Trust.verifyFirst(head, g.opts.Path)
			g.remember(key, verdict)
		}
		if verdict != nil {
			return nil, verdict
		}
	}
	if g.lastRev != nil && g.lastRev.ID == id {
		return g.lastRev, nil
	}
	snap, err := g.readTree(head)
	if err != nil {
		return nil, err
	}
	snap.finish()
	g.lastRev = &Revision{ID: id, FS: snap, Time: head.Committer.When, Summary: firstLine(head.Message)}
	return g.lastRev, nil
}

// remember keeps a verdict; the map is bounded (a watcher runs for
// months), and a forgotten verdict is only computed again.
func (g *GitSource) remember(key [2]string, verdict error) {
	if len(g.checked) >= 64 {
		clear(g.checked)
	}
	g.checked[key] = verdict
}

// check refuses a head that is not a fast-forward of base, and verifies
// the range's signatures.
func (g *GitSource) check(base string, head *object.Commit) error {
	baseCommit, err := g.repo.CommitObject(plumbing.NewHash(base))
	forward := false
	if err == nil {
		forward, err = baseCommit.IsAncestor(head)
		if err != nil {
			return fmt.Errorf("git %s: ancestry of %s: %w", g.opts.URL, short(base), err)
		}
	}
	if !forward && !g.opts.AllowForcePush {
		return &RefusedError{Revision: head.Hash.String(), Reason: fmt.Sprintf(
			"branch %s moved from %s to %s, which does not descend from it (a force push?); moat keeps %s in force (--allow-force-push accepts such moves)",
			g.opts.Branch, short(base), short(head.Hash.String()), short(base))}
	}
	if g.opts.Trust == nil {
		return nil
	}
	commits, err := g.rangeCommits(baseCommit, head)
	if err != nil {
		return err
	}
	return g.opts.Trust.verifyRange(commits, g.opts.Path, head.Hash.String())
}

// rangeCommits lists the commits reachable from head and not from base
// (every commit a fast-forward brings in, merged side branches included).
func (g *GitSource) rangeCommits(base, head *object.Commit) ([]*object.Commit, error) {
	seen := map[plumbing.Hash]bool{}
	if base != nil {
		iter := object.NewCommitPreorderIter(base, nil, nil)
		err := iter.ForEach(func(c *object.Commit) error { seen[c.Hash] = true; return nil })
		if err != nil {
			return nil, fmt.Errorf("git history of %s: %w", short(base.Hash.String()), err)
		}
	}
	var out []*object.Commit
	iter := object.NewCommitPreorderIter(head, seen, nil)
	err := iter.ForEach(func(c *object.Commit) error {
		if !seen[c.Hash] {
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("git history of %s: %w", short(head.Hash.String()), err)
	}
	return out, nil
}

// readTree reads the configuration folder of commit into a snapshot:
// YAML files and symlinks, outside dot-folders, each blob read up to one
// byte past the loader's per-file limit.
func (g *GitSource) readTree(c *object.Commit) (*snapshot, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("git tree of %s: %w", short(c.Hash.String()), err)
	}
	if g.opts.Path != "" {
		if tree, err = tree.Tree(g.opts.Path); err != nil {
			return nil, fmt.Errorf("git %s: folder %s at %s: %w", g.opts.URL, g.opts.Path, short(c.Hash.String()), err)
		}
	}
	snap := newSnapshot()
	n := 0
	var walk func(t *object.Tree, prefix string) error
	walk = func(t *object.Tree, prefix string) error {
		for _, e := range t.Entries {
			if skip(e.Name) {
				continue
			}
			p := path.Join(prefix, e.Name)
			switch e.Mode {
			case filemode.Dir:
				sub, err := g.repo.TreeObject(e.Hash)
				if err != nil {
					return fmt.Errorf("git tree %s: %w", p, err)
				}
				snap.mkdirs(p)
				if err := walk(sub, p); err != nil {
					return err
				}
			case filemode.Symlink:
				data, err := g.blob(e.Hash, 4096)
				if err != nil {
					return fmt.Errorf("git link %s: %w", p, err)
				}
				snap.add(p, data, os.ModeSymlink)
			case filemode.Regular, filemode.Executable, filemode.Deprecated:
				if !isYAML(p) {
					continue
				}
				if n++; n > dirMaxFiles {
					return nil
				}
				data, err := g.blob(e.Hash, dirMaxFileBytes)
				if err != nil {
					return fmt.Errorf("git file %s: %w", p, err)
				}
				snap.add(p, data, 0)
			}
			// Submodules are not followed: their content is another repo.
		}
		return nil
	}
	if err := walk(tree, ""); err != nil {
		return nil, err
	}
	return snap, nil
}

func (g *GitSource) blob(h plumbing.Hash, max int64) ([]byte, error) {
	b, err := g.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, max))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// localLoader serves file:// repositories to go-git's in-process
// transport: a bare repository, or the .git folder of a work tree.
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	p := ep.Path
	if fi, err := os.Stat(filepath.Join(p, ".git")); err == nil && fi.IsDir() {
		p = filepath.Join(p, ".git")
	}
	if _, err := os.Stat(filepath.Join(p, "HEAD")); err != nil {
		return nil, transport.ErrRepositoryNotFound
	}
	return filesystem.NewStorage(osfs.New(p), cache.NewObjectLRUDefault()), nil
}
