package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/moat-platform/moat/config"
)

// TestHardening attacks the applied examples from inside tenant containers
// (the probe image, running as the tenant's unprivileged uid), each blocked
// case next to the control that shows the same probe succeeds where it
// should.
func TestHardening(t *testing.T) {
	e := newEnv(t)
	e.apply()
	ctr := e.containers()
	ledger := e.instance + ".initech.ledger.1" // probe image, volume and secret
	worker := e.instance + ".acme.worker.1"    // probe image, secret
	for _, n := range []string{ledger, worker} {
		if ctr[n] == "" {
			t.Fatalf("container %s missing after apply", n)
		}
	}

	acmeUser := config.DefaultTenantUser("acme")
	initechUser := config.DefaultTenantUser("initech")

	t.Run("a tenant volume is writable by its tenant's uid only", func(t *testing.T) {
		if got := docker(t, "inspect", "--format", "{{.Config.User}}", ledger); got != initechUser {
			t.Fatalf("%s runs as %q, want initech's %s", ledger, got, initechUser)
		}
		// Allowed: initech's app writes its own volume.
		if out, code := e.exec(ledger, "write", "/data/ledger.txt", "mine"); code != 0 {
			t.Fatalf("initech's app cannot write its own volume:\n%s", out)
		}
		// Blocked: acme's uid, given initech's volume (it cannot mount it
		// through moat; this proves the uid separation on the path).
		vol := []string{"--mount", "type=volume,src=" + e.instance + ".initech.ledger-data,dst=/data,volume-nocopy"}
		if out, code := e.probeAs(acmeUser, vol, "write", "/data/acme.txt", "theirs"); code == 0 || !strings.Contains(out, "permission denied") {
			t.Errorf("acme's uid wrote initech's volume (exit %d):\n%s", code, out)
		}
		if out, code := e.probeAs(acmeUser, vol, "read", "/data/ledger.txt"); code == 0 {
			t.Errorf("acme's uid read initech's volume:\n%s", out)
		}
		// Control for the same harness: initech's uid may.
		if out, code := e.probeAs(initechUser, vol, "read", "/data/ledger.txt"); code != 0 || !strings.Contains(out, "mine") {
			t.Errorf("control: initech's uid cannot read its own volume (exit %d):\n%s", code, out)
		}
	})

	t.Run("forwarding is off in every moat container", func(t *testing.T) {
		// Control: a plain container on the same engine has forwarding
		// on, so the probe does see the value it reads.
		ctl := e.instance + "-control-fwd"
		out, code := run(t, "docker", "run", "--rm", "--name", ctl, "--label", "org.moat.test.run="+e.instance,
			"--user", "65534:65534", "--cap-drop", "ALL", "localhost/moat-examples/probe:1", "read", "/proc/sys/net/ipv4/ip_forward")
		if code != 0 || lastLine(out) != "1" {
			t.Fatalf("control: a plain container should read ip_forward 1, got exit %d:\n%s", code, out)
		}
		for _, n := range []string{ledger, worker} {
			for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
				out, code := e.exec(n, "read", f)
				if code != 0 || lastLine(out) != "0" {
					t.Errorf("%s: %s: want 0, got exit %d:\n%s", n, f, code, out)
				}
			}
		}
		// Every container of the instance carries the sysctls (shared
		// services and apps with other images have no probe to ask).
		for n := range ctr {
			got := docker(t, "inspect", "--format", "{{json .HostConfig.Sysctls}}", n)
			if !strings.Contains(got, `"net.ipv4.ip_forward":"0"`) || !strings.Contains(got, `"net.ipv6.conf.all.forwarding":"0"`) {
				t.Errorf("%s: sysctls %s lack forwarding off", n, got)
			}
		}
	})
}

// TestHardening (continued) lives in the subtests above; the helpers below
// run the probe as a given uid with a given mount, outside moat, to show
// what that uid could do if it ever got the path.

// probeAs runs the probe image once as user with extra docker run flags
// (mounts), hardened like a tenant app, and returns output and exit code.
func (e *env) probeAs(user string, flags []string, args ...string) (string, int) {
	e.t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	argv := []string{"run", "--rm", "--name", e.instance + "-probe-" + hex.EncodeToString(b),
		"--label", "org.moat.test.run=" + e.instance, "--network", "none", "--user", user,
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"}
	argv = append(argv, flags...)
	argv = append(argv, "localhost/moat-examples/probe:1")
	return run(e.t, "docker", append(argv, args...)...)
}

// exec runs the probe inside a container of the env (docker exec, as the
// container's own user) and returns its output and exit code.
func (e *env) exec(container string, args ...string) (string, int) {
	e.t.Helper()
	return run(e.t, "docker", append([]string{"exec", container, "/app"}, args...)...)
}

// run runs a command and returns its combined output and exit code; only
// a failure to start it fails the test.
func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out), 0
}

func lastLine(s string) string {
	parts := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(parts[len(parts)-1])
}
