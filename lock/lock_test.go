package lock

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestSecondHolderRefusedWithPID(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "unix:///x.sock", "demo", "moat watch")
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description: a second open in
	// the same process conflicts like another process would.
	_, err = Acquire(dir, "unix:///x.sock", "demo", "moat apply")
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second acquire: %v, want HeldError", err)
	}
	if he.PID != os.Getpid() || he.Holder != "moat-watch" {
		t.Errorf("holder %d %q, want %d moat-watch", he.PID, he.Holder, os.Getpid())
	}
	if !strings.Contains(err.Error(), "instance demo") || !strings.Contains(err.Error(), "moat process") {
		t.Errorf("message %q", err)
	}
	// Other instance, other engine: independent.
	for _, k := range [][2]string{{"unix:///x.sock", "other"}, {"tcp://h:2375", "demo"}} {
		o, err := Acquire(dir, k[0], k[1], "x")
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		o.Release()
	}
	l.Release()
	l2, err := Acquire(dir, "unix:///x.sock", "demo", "moat apply")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// A holder killed with SIGKILL leaves no stale lock.
func TestCrashedHolderLeavesNoStaleLock(t *testing.T) {
	if os.Getenv("LOCK_HOLDER") != "" {
		if _, err := Acquire(os.Getenv("LOCK_HOLDER"), "e", "demo", "holder"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashedHolderLeavesNoStaleLock$")
	cmd.Env = append(os.Environ(), "LOCK_HOLDER="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	_, err := Acquire(dir, "e", "demo", "me")
	var he *HeldError
	if !errors.As(err, &he) || he.PID != cmd.Process.Pid {
		t.Fatalf("while held: %v (want pid %d)", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "e", "demo", "me")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}
