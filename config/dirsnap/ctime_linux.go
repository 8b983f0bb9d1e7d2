package dirsnap

import (
	"io/fs"
	"syscall"
	"time"
)

// changeTime is the kernel's status change time and the inode: writes,
// truncations, renames and chmods all set it, and no user call can set it
// back.
func changeTime(info fs.FileInfo) (time.Time, uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec), st.Ino
	}
	return info.ModTime(), 0
}
