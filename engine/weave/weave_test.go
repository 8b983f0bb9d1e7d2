package weave

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moat-platform/moat/engine"
	"github.com/moat-platform/moat/state"
)

func TestParseReport(t *testing.T) {
	data, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	w, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &state.Weave{
		Version: "2.8.1-moat", Name: "7a:00:00:00:00:01", NickName: "moat-host", Encryption: true,
		Targets: []string{"169.254.77.2:6783", "10.9.9.9:6783"},
		Connections: []state.WeaveConnection{
			{Address: "169.254.77.2:6783", Outbound: true, State: "established", Encrypted: true,
				Info: "encrypted   sleeve 7a:00:00:00:00:02(moat-peer-link)", Peer: "7a:00:00:00:00:02"},
			{Address: "10.9.9.9:6783", Outbound: true, State: "failed",
				Info: "dial tcp 10.9.9.9:6783: connect: no route to host, retry: 2026-12-02 03:40:00"},
		},
		Peers: []state.WeavePeer{
			{Name: "7a:00:00:00:00:01", NickName: "moat-host", Established: 1},
			{Name: "7a:00:00:00:00:02", NickName: "moat-peer-link", Established: 1},
		},
		IPAM: &state.WeaveIPAM{Range: "10.64.0.0/10", DefaultSubnet: "10.64.0.0/16", ActiveIPs: 3,
			Entries: []state.WeaveIPAMEntry{{Token: "10.64.0.0", Size: 4194304, Peer: "7a:00:00:00:00:01", NickName: "moat-host"}}},
		DNS:        []state.WeaveDNSEntry{{Hostname: "api.weave.local.", Address: "10.80.1.5", ContainerID: "c0ffee", Origin: "7a:00:00:00:00:01"}},
		MeshDriver: "moatweavemesh",
		Exposed:    []string{},
	}
	if !reflect.DeepEqual(w, want) {
		t.Errorf("got  %+v\nwant %+v", w, want)
	}
}

func TestParseReportRefusesOtherJSON(t *testing.T) {
	for _, in := range []string{`{}`, `[1]`, `not json`, `{"Router": {"Name": ""}}`} {
		if _, err := ParseReport([]byte(in)); err == nil {
			t.Errorf("ParseReport(%q) succeeded", in)
		}
	}
}

// TestObserveIsOneGETWithJSONAccept pins what observing may do: exactly one
// GET /report with "Accept: application/json", never a POST or /ring.
func TestObserveIsOneGETWithJSONAccept(t *testing.T) {
	data, _ := os.ReadFile("testdata/report.json")
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Accept"))
		mu.Unlock()
		if r.Method == http.MethodGet && r.URL.Path == "/report" && r.Header.Get("Accept") == "application/json" {
			w.Write(data)
			return
		}
		if r.Method == http.MethodPost && (r.URL.Path == "/connect" || r.URL.Path == "/forget") {
			if err := r.ParseForm(); err != nil || r.Form.Get("peer") == "" {
				http.Error(w, "no peer", http.StatusBadRequest)
			}
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c, err := New(Options{API: strings.TrimPrefix(srv.URL, "http://"), Bridge: "moatweave",
		BridgeAddrs: func(name string) ([]string, error) { return []string{"10.80.1.1/24"}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.Exposed, []string{"10.80.1.1/24"}) {
		t.Errorf("Exposed = %v", w.Exposed)
	}
	if want := []string{"GET /report application/json"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls = %q, want %q", calls, want)
	}
	calls = nil
	if err := c.Connect(context.Background(), "10.0.0.2:6783"); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(context.Background(), "10.0.0.2:6783"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"POST /connect ", "POST /forget "}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls = %q, want %q", calls, want)
	}
}

func TestObserveUnreachable(t *testing.T) {
	c, err := New(Options{API: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(context.Background()); !errors.Is(err, engine.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestCheckPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/pw"
	os.WriteFile(good, []byte("s3cret"), 0o600)
	if err := CheckPasswordFile(good); err != nil {
		t.Errorf("good file: %v", err)
	}
	loose := dir + "/loose"
	os.WriteFile(loose, []byte("s3cret"), 0o644)
	empty := dir + "/empty"
	os.WriteFile(empty, nil, 0o600)
	for _, p := range []string{loose, empty, dir, dir + "/missing"} {
		if err := CheckPasswordFile(p); err == nil {
			t.Errorf("CheckPasswordFile(%s) = nil", p)
		}
	}
}
