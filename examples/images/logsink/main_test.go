package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func do(t *testing.T, method, u string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return doAs(t, "acme", method, u, body)
}

// doAs calls the sink as tenant ("" sends no X-Moat-Tenant).
func doAs(t *testing.T, tenant, method, u string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set(tenantHeader, tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func readEntries(t *testing.T, base string) []entry {
	t.Helper()
	return readAs(t, "acme", base)
}

func readAs(t *testing.T, tenant, base string) []entry {
	t.Helper()
	resp, body := doAs(t, tenant, http.MethodGet, base+"/logs", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /logs: %d", resp.StatusCode)
	}
	var got []entry
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return got
}

func TestWriteAndRead(t *testing.T) {
	ts := httptest.NewServer(newHandler(newStore(defaultTenantEntries, defaultTenantBytes, defaultMaxTenants)))
	defer ts.Close()

	if got := readEntries(t, ts.URL); len(got) != 0 {
		t.Fatalf("fresh sink has %d entries", len(got))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		resp, _ := do(t, m, ts.URL+"/logs", strings.NewReader("line via "+m))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s /logs: %d, want 204", m, resp.StatusCode)
		}
	}
	got := readEntries(t, ts.URL)
	if len(got) != 2 || got[0].Body != "line via POST" || got[1].Body != "line via PUT" {
		t.Fatalf("entries = %+v", got)
	}
	if got[0].Seq != 1 || got[1].Seq != 2 || got[0].Time.IsZero() {
		t.Errorf("bad seq/time: %+v", got)
	}
}

func TestBodyLimit(t *testing.T) {
	ts := httptest.NewServer(newHandler(newStore(defaultTenantEntries, defaultTenantBytes, defaultMaxTenants)))
	defer ts.Close()

	// Exactly at the limit is accepted.
	resp, _ := do(t, http.MethodPost, ts.URL+"/logs", bytes.NewReader(make([]byte, maxEntryBytes)))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("64 KiB body: %d, want 204", resp.StatusCode)
	}
	// One byte more is refused, with and without a Content-Length.
	big := bytes.Repeat([]byte("x"), maxEntryBytes+1)
	resp, _ = do(t, http.MethodPost, ts.URL+"/logs", bytes.NewReader(big))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d, want 413", resp.StatusCode)
	}
	// io.MultiReader hides the length, so the request is sent chunked.
	resp, _ = do(t, http.MethodPut, ts.URL+"/logs", io.MultiReader(bytes.NewReader(big)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized chunked body: %d, want 413", resp.StatusCode)
	}
	if got := readEntries(t, ts.URL); len(got) != 1 {
		t.Fatalf("want only the accepted entry, got %d", len(got))
	}
}

func TestMethodsAndHealth(t *testing.T) {
	ts := httptest.NewServer(newHandler(newStore(defaultTenantEntries, defaultTenantBytes, defaultMaxTenants)))
	defer ts.Close()

	resp, body := do(t, http.MethodGet, ts.URL+"/healthz", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, http.MethodDelete, ts.URL+"/logs", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /logs: %d, want 405", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodGet, ts.URL+"/nope", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", resp.StatusCode)
	}
}

func TestRingKeepsNewest(t *testing.T) {
	s := newStore(3, 1<<20, 4)
	if got := s.snapshot("acme"); len(got) != 0 {
		t.Fatalf("empty store snapshot = %v", got)
	}
	for i := 1; i <= 7; i++ {
		s.add(entry{Tenant: "acme", Body: fmt.Sprint(i)})
	}
	got := s.snapshot("acme")
	if len(got) != 3 {
		t.Fatalf("len = %d, want 3", len(got))
	}
	for i, want := range []string{"5", "6", "7"} {
		if got[i].Body != want || got[i].Seq != uint64(5+i) {
			t.Errorf("entry %d = %+v, want body %s seq %d", i, got[i], want, 5+i)
		}
	}
}

// TestTenantsApart: one tenant's flood (tiny posts past the entry bound,
// big posts past the byte bound) evicts only its own entries, and a tenant
// reads only its own; the retained bytes stay bounded.
func TestTenantsApart(t *testing.T) {
	ts := httptest.NewServer(newHandler(newStore(100, 256<<10, 4)))
	defer ts.Close()
	doAs(t, "globex", http.MethodPost, ts.URL+"/logs", strings.NewReader("globex keeps this"))
	for i := 0; i < 1000; i++ {
		doAs(t, "acme", http.MethodPost, ts.URL+"/logs", strings.NewReader("x"))
	}
	big := strings.Repeat("y", maxEntryBytes)
	for i := 0; i < 50; i++ {
		doAs(t, "acme", http.MethodPost, ts.URL+"/logs", strings.NewReader(big))
	}
	g := readAs(t, "globex", ts.URL)
	if len(g) != 1 || g[0].Body != "globex keeps this" || g[0].Tenant != "globex" {
		t.Errorf("globex's entries = %+v", g)
	}
	a := readAs(t, "acme", ts.URL)
	total := 0
	for _, e := range a {
		total += len(e.Body)
		if e.Tenant != "acme" {
			t.Errorf("acme read an entry of %s", e.Tenant)
		}
	}
	if total > 256<<10 || len(a) == 0 {
		t.Errorf("acme retains %d bytes in %d entries, bound 256 KiB", total, len(a))
	}
	if resp, _ := doAs(t, "", http.MethodPost, ts.URL+"/logs", strings.NewReader("anonymous")); resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST without tenant: %d, want 204", resp.StatusCode)
	}
	if got := readAs(t, "", ts.URL); len(got) != 1 || got[0].Body != "anonymous" {
		t.Errorf("anonymous entries = %+v", got)
	}
	for _, tn := range []string{"t4"} {
		doAs(t, tn, http.MethodPost, ts.URL+"/logs", strings.NewReader("x"))
	}
	if resp, _ := doAs(t, "t5", http.MethodPost, ts.URL+"/logs", strings.NewReader("x")); resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("fifth tenant: %d, want 507", resp.StatusCode)
	}
}
