//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestVolumeInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another uid needs root")
	}
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := func() (uint32, uint32, os.FileMode) {
		fi, err := os.Lstat(dir)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode().Perm()
	}
	out, errOut, code := runMoat(t, "volume-init", "--uid", "20001", "--gid", "20002", "--mode", "0700", dir)
	if code != 0 || !strings.Contains(out, "now owned by 20001:20002, mode 0700") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if u, g, m := owner(); u != 20001 || g != 20002 || m != 0o700 {
		t.Fatalf("owner %d:%d mode %o", u, g, m)
	}
	// Idempotent: nothing to do the second time.
	if out, _, code := runMoat(t, "volume-init", "--uid", "20001", "--gid", "20002", "--mode", "0700", dir); code != 0 || !strings.Contains(out, "already owned") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	// A new owner (the tenant's id changed): chmod and chown again.
	if _, _, code := runMoat(t, "volume-init", "--uid", "20003", "--gid", "20003", "--mode", "0750", dir); code != 0 {
		t.Fatalf("new owner: exit %d", code)
	}
	if u, g, m := owner(); u != 20003 || g != 20003 || m != 0o750 {
		t.Fatalf("owner %d:%d mode %o", u, g, m)
	}
	// A symlink is never followed: the target keeps its owner.
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runMoat(t, "volume-init", "--uid", "20001", "--gid", "20001", link); code == 0 {
		t.Error("volume-init followed a symlink")
	}
	// Root and bad modes are usage errors.
	for _, args := range [][]string{{"--uid", "0", "--gid", "1", dir}, {"--uid", "1", "--gid", "1", "--mode", "9", dir}} {
		if _, _, code := runMoat(t, append([]string{"volume-init"}, args...)...); code == 0 {
			t.Errorf("volume-init %v: exit 0", args)
		}
	}
}

func runMoat(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut strings.Builder
	code := execute(args, &out, &errOut)
	return out.String(), errOut.String(), code
}
