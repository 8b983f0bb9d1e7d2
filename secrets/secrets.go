// Package secrets reads the host's per-tenant secret store: one folder per
// tenant, one file per secret (DIR/<tenant>/<name>). Values never leave this
// package: callers get a keyed hash of each value (for the spec hash, so that
// a rotation recreates the app) and the host path to bind-mount read-only.
package secrets

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/moat-platform/moat/config"
)

// KeyFile is the name of the HMAC key inside the store. A keyed hash, not a
// plain one, so that the digest in a container label cannot be used to
// guess a weak secret offline.
const KeyFile = ".moat-digest-key"

// MaxSecretBytes bounds one secret file.
const MaxSecretBytes = 64 << 10

// Digests returns "tenant/name" -> keyed hash for every secret the apps of
// repo name. A missing store, file or key is an error naming the tenant and
// secret; dir "" with no secrets in use is fine.
func Digests(dir string, repo *config.Repo) (map[string]string, error) {
	need := map[string]bool{}
	for _, a := range repo.Apps {
		for _, s := range a.Secrets {
			need[a.Tenant+"/"+s] = true
		}
	}
	if len(need) == 0 {
		return map[string]string{}, nil
	}
	if dir == "" {
		return nil, fmt.Errorf("the config uses %d secret(s) but no secret store was given: pass --secrets DIR (or, for a plan that is only shown, --no-secrets)", len(need))
	}
	key, err := loadKey(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(need))
	for n := range need {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := read(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", n, err)
		}
		m := hmac.New(sha256.New, key)
		m.Write(v)
		out[n] = hex.EncodeToString(m.Sum(nil))[:32]
	}
	return out, nil
}

// read returns a secret's value: a regular file (no symlink, so a tenant's
// name can never point at another tenant's or the host's files), bounded.
func read(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("not in the secret store (want file %s)", path)
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxSecretBytes)
	}
	return b, nil
}

// loadKey reads the store's digest key, creating it (0600) on first use.
func loadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("digest key %s is shorter than 32 bytes", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// O_EXCL: two moat processes racing both end up with the winner's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("create digest key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write digest key: %w", err)
	}
	return b, f.Close()
}
