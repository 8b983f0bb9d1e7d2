package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestDirSourceOneChangePerBurst: an atomic-rename save, a new sub-folder
// with a file in it, and a checkout that rewrites 1,000 files each give
// exactly one change after the quiet period; a touch gives none.
func TestDirSourceOneChangePerBurst(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 1\n"), 0o644)
	src, err := NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	src.Quiet, src.MaxDelay = 200*time.Millisecond, 3*time.Second
	if _, err := src.Fetch(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Watch(ctx, func() { changes.Add(1) }); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // watches in place

	expect := func(what string, want int32, act func()) {
		t.Helper()
		changes.Store(0)
		act()
		// Wait for the change (a slow machine reads 1,000 files slowly),
		// then long enough for a second one to show up if there were one.
		deadline := time.Now().Add(20 * time.Second)
		for changes.Load() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(src.Quiet + time.Second)
		if got := changes.Load(); got != want {
			t.Errorf("%s: %d changes, want %d", what, got, want)
		}
	}
	expect("atomic rename save", 1, func() {
		tmp := filepath.Join(dir, ".a.yaml.swp")
		os.WriteFile(tmp, []byte("a: 2\n"), 0o644)
		os.Rename(tmp, filepath.Join(dir, "a.yaml"))
	})
	expect("touch", 0, func() {
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "a.yaml"), now, now)
	})
	expect("new sub-folder with a file", 1, func() {
		os.MkdirAll(filepath.Join(dir, "tenants", "new", "deep"), 0o755)
		os.WriteFile(filepath.Join(dir, "tenants", "new", "deep", "x.yaml"), []byte("x: 1\n"), 0o644)
	})
	expect("a file in the new folder (watched now)", 1, func() {
		os.WriteFile(filepath.Join(dir, "tenants", "new", "deep", "y.yaml"), []byte("y: 1\n"), 0o644)
	})
	expect("checkout of 1,000 files", 1, func() {
		for i := range 1000 {
			sub := filepath.Join(dir, "bulk", fmt.Sprint(i%10))
			os.MkdirAll(sub, 0o755)
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.yaml", i)), []byte(fmt.Sprintf("i: %d\n", i)), 0o644)
		}
	})
	expect("removing a folder", 1, func() {
		os.RemoveAll(filepath.Join(dir, "tenants"))
	})
	expect("changes inside a dot-folder", 0, func() {
		os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
		os.WriteFile(filepath.Join(dir, ".git", "index"), []byte("x"), 0o644)
	})
	rev, err := src.Fetch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bulk")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.yaml")); err != nil || string(b) != "a: 2\n" {
		t.Fatal("setup")
	}
	if _, err := rev.FS.Open("bulk/9/f999.yaml"); err != nil {
		t.Errorf("snapshot lacks a checked-out file: %v", err)
	}
}
