//go:build !linux

package dirsnap

import (
	"io/fs"
	"time"
)

// changeTime falls back to the modification time where the status change
// time is not portable.
func changeTime(info fs.FileInfo) (time.Time, uint64) { return info.ModTime(), 0 }
