package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/spf13/cobra"

	"github.com/moat-platform/moat/apply"
	"github.com/moat-platform/moat/controller"
	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/lock"
	"github.com/moat-platform/moat/watch"
)

type watchFlags struct {
	git, branch, path, dir   string
	secrets                  string
	allowMassDelete          bool
	parallel                 int
	listen                   string
	webhookSecretFile        string
	poll, resync             time.Duration
	trust                    string
	once                     bool
	cacheDir                 string
	sshKey, sshKeyPassFile   string
	knownHosts               string
	gitUser, gitPasswordFile string
	allowForcePush           bool
	logFormat, logLevel      string
	quiet, maxDelay          time.Duration
	noEvents                 bool
	backoffMin, backoffMax   time.Duration
}

func newWatch() *cobra.Command {
	var f watchFlags
	c := &cobra.Command{
		Use:   "watch (--git URL | --dir DIR)",
		Short: "Follow the config repository: apply each good revision and revert drift",
		Long: `watch follows a git branch (--git URL, fetched into a bare cache; ssh,
https or a local path) or a local directory (--dir DIR, watched with
inotify) and reconciles the local engine on every trigger: a poll of the
branch, a file change, a webhook (POST /hooks/git), an engine event that may
be drift, and the periodic resync. An invalid or refused revision is never
applied: the last good one stays in force. With --once it runs one
reconcile and exits 0 (converged), 1 (error) or 3 (revision invalid or
refused). See docs/WATCH.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runWatch(c, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.git, "git", "", "follow this git repository (https://, ssh://, user@host:path, a local path or file://)")
	fl.StringVar(&f.branch, "branch", "main", "the branch to follow (with --git)")
	fl.StringVar(&f.path, "path", "", "the configuration's folder inside the repository (with --git)")
	fl.StringVar(&f.dir, "dir", "", "follow this local directory instead of a git repository")
	fl.StringVar(&f.secrets, "secrets", "", "the host's secret store: DIR/<tenant>/<secret>")
	fl.BoolVar(&f.allowMassDelete, "allow-mass-delete", false, "allow a plan that removes more than half of the managed containers or all of a tenant's")
	fl.IntVar(&f.parallel, "parallel", apply.DefaultParallel, "operations in flight at once")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9797", `address of the HTTP endpoints (/healthz, /readyz, /status, /metrics, /hooks/git); "" turns them off`)
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook secret; without it POST /hooks/git is off")
	fl.DurationVar(&f.poll, "poll", 60*time.Second, "how often the git branch is fetched (jittered ±10%; 0 turns polling off)")
	fl.DurationVar(&f.resync, "resync", 5*time.Minute, "how often a full reconcile runs whatever the triggers (0 turns it off)")
	fl.StringVar(&f.trust, "trust", "", "trust file: which OpenPGP keys may sign which paths (with --git); unsigned or out-of-scope commits are refused")
	fl.BoolVar(&f.once, "once", false, "one reconcile, then exit 0 (converged), 1 (error) or 3 (revision invalid or refused)")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "where the bare clones and the last applied revision are kept")
	fl.StringVar(&f.sshKey, "ssh-key", "", "private key file for ssh:// and user@host:path URLs")
	fl.StringVar(&f.sshKeyPassFile, "ssh-key-passphrase-file", "", "file holding the passphrase of --ssh-key")
	fl.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file that the ssh server's key must be in (default: ~/.ssh/known_hosts)")
	fl.StringVar(&f.gitUser, "git-user", "git", "user name for https (with --git-password-file)")
	fl.StringVar(&f.gitPasswordFile, "git-password-file", "", "file holding the https password or access token")
	fl.BoolVar(&f.allowForcePush, "allow-force-push", false, "accept a branch head that does not descend from the applied revision")
	fl.StringVar(&f.logFormat, "log-format", "text", `log format: "text" or "json"`)
	fl.StringVar(&f.logLevel, "log-level", "info", `log level: "debug", "info", "warn" or "error"`)
	fl.DurationVar(&f.quiet, "quiet-period", 500*time.Millisecond, "with --dir: how long the tree must be quiet before it is read")
	fl.DurationVar(&f.maxDelay, "max-delay", 5*time.Second, "with --dir: the longest a burst of file events delays a read")
	fl.BoolVar(&f.noEvents, "no-events", false, "do not follow the engine's event stream (drift is then seen at the next resync)")
	fl.DurationVar(&f.backoffMin, "backoff-min", time.Second, "first retry delay after a failed reconcile (doubled each time, jittered)")
	fl.DurationVar(&f.backoffMax, "backoff-max", time.Minute, "longest retry delay after failed reconciles")
	return c
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "moat")
	}
	return filepath.Join(os.TempDir(), "moat-cache")
}

func newLogger(c *cobra.Command, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(c.ErrOrStderr(), opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.ErrOrStderr(), opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runWatch(c *cobra.Command, f *watchFlags) error {
	usage := func(err error) error { return withCode(exitError, err) }
	if (f.git == "") == (f.dir == "") {
		return usage(errors.New("give exactly one of --git URL and --dir DIR"))
	}
	if f.dir != "" && (f.trust != "" || f.path != "" || f.allowForcePush) {
		return usage(errors.New("--trust, --path and --allow-force-push need --git"))
	}
	log, err := newLogger(c, f.logFormat, f.logLevel)
	if err != nil {
		return usage(err)
	}
	src, err := newSource(f)
	if err != nil {
		return withCode(exitInvalid, err)
	}
	var secret []byte
	if f.webhookSecretFile != "" {
		if secret, err = watch.ReadSecret(f.webhookSecretFile); err != nil {
			return withCode(exitInvalid, err)
		}
	}
	var (
		mu   sync.Mutex
		held *lock.Lock
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		held.Release()
	}()
	what := "moat watch"
	if f.once {
		what = "moat watch --once"
	}
	metrics := watch.NewMetrics()
	var w *watch.Watcher
	w = watch.New(watch.Options{
		Source:          src,
		Load:            controller.LoadOptions{SecretsDir: f.secrets},
		AllowMassDelete: f.allowMassDelete,
		Parallel:        f.parallel,
		Poll:            f.poll,
		Resync:          f.resync,
		NoEvents:        f.noEvents,
		BackoffMin:      f.backoffMin,
		BackoffMax:      f.backoffMax,
		StateFile:       stateFile(f),
		Log:             log,
		Metrics:         metrics,
		Lock:            watch.LockInfo{PID: os.Getpid()},
		// The lock first, then the engine: a second moat exits at once
		// without touching anything.
		// The engine is the one the revision's platform chooses
		// (engineOf); a revision that changes it reconnects, keeping the
		// lock (the lock is the engine's, and both kinds are the same
		// engine).
		Connect: func(instance, kind string) (engine.Engine, error) {
			mu.Lock()
			defer mu.Unlock()
			// TODO(weave): the watcher does not read the router yet.
			eng, err := openContainerEngine(instance, c.ErrOrStderr(), kind)
			if err != nil {
				return nil, err
			}
			if held == nil {
				if held, err = lockInstance(eng, instance, what); err != nil {
					eng.Close()
					return nil, err
				}
			}
			log.Info("instance locked", "instance", instance, "engine", kind, "lock", held.Path)
			return eng, nil
		},
	})
	if f.once {
		res, err := w.Once(c.Context())
		s := w.Status()
		switch res {
		case watch.Converged, watch.Applied:
			fmt.Fprintf(c.OutOrStdout(), "converged: %s at revision %s\n", res, s.LastApplied.Revision)
			return nil
		case watch.Invalid, watch.Refused:
			if s.LastSeen != nil {
				for _, d := range s.LastSeen.Diagnostics {
					fmt.Fprintln(c.ErrOrStderr(), d)
				}
			}
			return withCode(exitRefused, err)
		}
		return withCode(exitInvalid, err)
	}

	ctx := c.Context()
	if f.listen != "" {
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			return withCode(exitInvalid, fmt.Errorf("--listen: %w", err))
		}
		srv := &http.Server{Handler: w.Handler(secret), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info("listening", "addr", ln.Addr().String())
	}
	log.Info("watching", "source", src.String(), "poll", f.poll, "resync", f.resync)
	if err := w.Run(ctx); err != nil {
		return withCode(exitInvalid, err)
	}
	log.Info("stopped")
	return nil
}

// stateFile keeps the last applied revision per source.
func stateFile(f *watchFlags) string {
	if f.git == "" {
		return ""
	}
	return filepath.Join(f.cacheDir, "applied-"+safeName(f.git+"#"+f.branch+"#"+f.path))
}

func safeName(s string) string {
	out := []byte{}
	for i := 0; i < len(s) && len(out) < 80; i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.' {
			out = append(out, ch)
		} else {
			out = append(out, '_')
		}
	}
	return string(out)
}

func newSource(f *watchFlags) (watch.Source, error) {
	if f.dir != "" {
		d, err := watch.NewDirSource(f.dir)
		if err != nil {
			return nil, err
		}
		d.Quiet, d.MaxDelay = f.quiet, f.maxDelay
		return d, nil
	}
	auth, err := gitAuth(f)
	if err != nil {
		return nil, err
	}
	var trust *watch.Trust
	if f.trust != "" {
		if trust, err = watch.LoadTrust(f.trust); err != nil {
			return nil, err
		}
	}
	return watch.NewGitSource(watch.GitOptions{URL: f.git, Branch: f.branch, Path: f.path, CacheDir: f.cacheDir,
		Auth: auth, AllowForcePush: f.allowForcePush, Trust: trust})
}

// gitAuth builds ssh or https credentials from files only: secrets never
// come from flags or the environment, where ps and /proc show them.
func gitAuth(f *watchFlags) (transport.AuthMethod, error) {
	switch {
	case f.sshKey != "" && f.gitPasswordFile != "":
		return nil, errors.New("--ssh-key and --git-password-file exclude each other")
	case f.sshKey != "":
		pass := ""
		if f.sshKeyPassFile != "" {
			b, err := watch.ReadSecret(f.sshKeyPassFile)
			if err != nil {
				return nil, err
			}
			pass = string(b)
		}
		keys, err := gitssh.NewPublicKeysFromFile("git", f.sshKey, pass)
		if err != nil {
			return nil, fmt.Errorf("--ssh-key: %w", err)
		}
		kh := f.knownHosts
		if kh == "" {
			home, _ := os.UserHomeDir()
			kh = filepath.Join(home, ".ssh", "known_hosts")
		}
		cb, err := gitssh.NewKnownHostsCallback(kh)
		if err != nil {
			return nil, fmt.Errorf("--known-hosts %s: %w", kh, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	case f.gitPasswordFile != "":
		b, err := watch.ReadSecret(f.gitPasswordFile)
		if err != nil {
			return nil, err
		}
		return &githttp.BasicAuth{Username: f.gitUser, Password: string(b)}, nil
	}
	return nil, nil
}
