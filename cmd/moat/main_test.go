package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moat-platform/moat/engine/fake"
	"github.com/moat-platform/moat/state"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the txtar scripts run the real moat command in-process:
// `moat ...` inside a script is this binary's main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"moat": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScripts runs testdata/script/*.txtar against the in-memory engine
// (MOAT_FAKE_ENGINE, a file in the script's work dir) with the example
// platform at $EXAMPLES and a writable copy of its secrets at $SECRETS.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples/platform")
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := filepath.Abs("../../examples/platform-secrets")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			env.Setenv("SECRETS", filepath.Join(env.WorkDir, "secrets"))
			env.Setenv("MOAT_FAKE_ENGINE", filepath.Join(env.WorkDir, "engine.json"))
			env.Setenv("MOAT_LOCK_DIR", filepath.Join(env.WorkDir, "locks"))
			return os.CopyFS(filepath.Join(env.WorkDir, "secrets"), os.DirFS(secrets))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
			"fake":  cmdFake,
		},
	})
}

// exits N prog args...: run prog and require exit code N (testscript's
// "! exec" only knows "non-zero"; moat's codes mean different things).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// fake VERB ARGS: drift made by hand on the fake engine, as a person with
// the docker CLI would: stop NAME | rm NAME | connect NET NAME |
// run NAME NET (an unmanaged container) | fault OP NTH.
func cmdFake(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || (neg && args[0] != "has-volume") {
		ts.Fatalf("usage: fake stop|rm|connect|run|fault|has-volume ...")
	}
	e, err := fake.Open(ts.Getenv("MOAT_FAKE_ENGINE"))
	if err != nil {
		ts.Fatalf("fake: %v", err)
	}
	switch args[0] {
	case "has-volume": // [!] fake has-volume NAME: the volume exists (not)
		instance, _, _ := strings.Cut(args[1], ".")
		o, err := e.Observe(context.Background(), instance, true)
		if err != nil {
			ts.Fatalf("fake observe: %v", err)
		}
		found := slices.ContainsFunc(o.Volumes, func(v state.Volume) bool { return v.Name == args[1] })
		if found == neg {
			ts.Fatalf("volume %s exists: %v", args[1], found)
		}
		return
	case "stop":
		err = e.Stop(args[1])
	case "rm":
		err = e.Remove(args[1])
	case "connect":
		err = e.ConnectUnmanaged(args[1], args[2])
	case "run":
		_, err = e.AddUnmanagedContainer(args[1], "localhost/moat-examples/probe:1", args[2:]...)
	case "fault":
		n, _ := strconv.Atoi(args[2])
		err = e.InjectFault(fake.Fault{Op: args[1], Nth: n})
	default:
		ts.Fatalf("fake: unknown verb %s", args[0])
	}
	if err != nil {
		ts.Fatalf("fake %s: %v", args[0], err)
	}
	if err := e.Save(); err != nil {
		ts.Fatalf("fake save: %v", err)
	}
}

// TestGatewayEnvFlags: MOAT_GATEWAY_* fills flags not given; a flag given
// wins; a bad value names the variable.
func TestGatewayEnvFlags(t *testing.T) {
	c := newGateway()
	if err := c.Flags().Parse([]string{"--mode=read-only"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MOAT_GATEWAY_MODE": "write-only", "MOAT_GATEWAY_TENANT": "acme", "MOAT_GATEWAY_MAX_BODY": "123"}
	if err := envFlags(c.Flags(), func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"mode": "read-only", "tenant": "acme", "max-body": "123"} {
		if got := c.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	c = newGateway()
	err := envFlags(c.Flags(), func(k string) string { return map[string]string{"MOAT_GATEWAY_RPS": "fast"}[k] })
	if err == nil || !strings.Contains(err.Error(), "MOAT_GATEWAY_RPS") {
		t.Errorf("bad env value: %v", err)
	}
}
