// Package lock makes sure two moat processes (watch, apply, destroy) never
// reconcile the same instance on the same engine at once. It uses flock(2)
// on a file per (engine, instance): the kernel drops the lock when its
// holder exits however it exits, so a crashed holder never leaves a stale
// lock behind, and there is nothing to clean up by hand.
package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// EnvDir overrides the directory of lock files.
const EnvDir = "MOAT_LOCK_DIR"

// Lock is a held lock; Release drops it.
type Lock struct {
	f    *os.File
	Path string
}

// HeldError says who holds the lock.
type HeldError struct {
	Instance, Engine, Path string
	PID                    int // 0 when the holder's pid could not be read
	Holder                 string
}

func (e *HeldError) Error() string {
	who := "another moat process"
	if e.PID > 0 {
		who = fmt.Sprintf("moat process %d", e.PID)
		if e.Holder != "" {
			who += " (" + e.Holder + ")"
		}
	}
	return fmt.Sprintf("instance %s on engine %s is being reconciled by %s; only one moat may reconcile an instance at a time (lock %s)", e.Instance, e.Engine, who, e.Path)
}

// Held marks the error for callers that must stop rather than retry.
func (e *HeldError) Held() bool { return true }

// Dir is where lock files live: $MOAT_LOCK_DIR, else /run/lock/moat when
// it can be made (shared by every user of the host, like the engine),
// else a per-user directory under the temp dir.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	if err := os.MkdirAll("/run/lock/moat", 0o1777); err == nil {
		return "/run/lock/moat"
	}
	return filepath.Join(os.TempDir(), "moat-lock-"+strconv.Itoa(os.Getuid()))
}

// Key names the engine for the lock: the address, with a unix socket's
// path resolved, so that /var/run/docker.sock and /run/docker.sock (a
// symlink on most hosts) are the same engine.
func Key(engineHost string) string {
	if p, ok := strings.CutPrefix(engineHost, "unix://"); ok {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return "unix://" + r
		}
	}
	return engineHost
}

// Acquire takes the lock of (engine, instance) in dir without waiting: if
// another process holds it, the error is a *HeldError naming its pid.
// what describes this process for the holder's message ("moat watch").
func Acquire(dir, engineKey, instance, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	sum := sha256.Sum256([]byte(engineKey))
	path := filepath.Join(dir, instance+"-"+hex.EncodeToString(sum[:6])+".lock")
	// O_NOFOLLOW: a planted symlink must not make us truncate another file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			he := &HeldError{Instance: instance, Engine: engineKey, Path: path}
			if b, rerr := os.ReadFile(path); rerr == nil {
				pid, holder, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
				he.PID, _ = strconv.Atoi(pid)
				he.Holder = holder
			}
			return nil, he
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Only the holder writes: the content is the pid and what it runs.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), strings.ReplaceAll(what, " ", "-"))
	}
	return &Lock{f: f, Path: path}, nil
}

// Release drops the lock. The file stays: removing it would race with a
// process that has just opened it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
