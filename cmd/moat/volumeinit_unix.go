//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// initDir sets owner and mode of the directory at path, through a file
// descriptor opened without following a symlink, so that nothing in the
// volume can redirect the change elsewhere. It reports whether anything
// changed; a directory already right is left alone (idempotent, and an app
// using the volume meanwhile never sees it change).
func initDir(path string, uid, gid int, mode uint32) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, fmt.Errorf("stat %s: no owner information", path)
	}
	perm := os.FileMode(mode&0o777) | setIDBits(mode)
	changed := false
	// Mode first: while root still owns a fresh volume no capability is
	// needed; on a re-run for a new owner, FOWNER allows it.
	if uint32(st.Mode)&0o7777 != mode {
		if err := f.Chmod(perm); err != nil {
			return false, err
		}
		changed = true
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		if err := f.Chown(uid, gid); err != nil {
			return false, err
		}
		changed = true
		// chown clears set-id bits; set the mode again if it had any.
		if mode&0o7000 != 0 {
			if err := f.Chmod(perm); err != nil {
				return false, err
			}
		}
	}
	return changed, nil
}

// setIDBits converts the setuid, setgid and sticky bits of a Unix mode to
// os.FileMode's.
func setIDBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
