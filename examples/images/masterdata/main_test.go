package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func do(t *testing.T, method, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
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
	return resp.StatusCode, resp.Header, b
}

func TestBuiltinDataset(t *testing.T) {
	d, source, err := loadDataset("")
	if err != nil || source != "built-in" {
		t.Fatalf("loadDataset: %v %q", err, source)
	}
	ts := httptest.NewServer(newHandler(d))
	defer ts.Close()

	code, hdr, body := do(t, http.MethodGet, ts.URL+"/records")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /records: %d %q", code, hdr.Get("Content-Type"))
	}
	var all []country
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != len(builtin) || all[0] != builtin[0] {
		t.Fatalf("got %d records (first %+v), want %d", len(all), all[0], len(builtin))
	}

	code, _, body = do(t, http.MethodGet, ts.URL+"/records/CH")
	var one country
	if err := json.Unmarshal(body, &one); err != nil || code != http.StatusOK {
		t.Fatalf("GET /records/CH: %d %v", code, err)
	}
	if one.Currency != "CHF" {
		t.Errorf("CH record = %+v", one)
	}

	for _, p := range []string{"/records/XX", "/records/", "/records/CH/extra", "/other"} {
		if code, _, _ := do(t, http.MethodGet, ts.URL+p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	if code, _, body := do(t, http.MethodGet, ts.URL+"/healthz"); code != http.StatusOK || string(body) != "ok" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, _, _ := do(t, http.MethodHead, ts.URL+"/records"); code != http.StatusOK {
		t.Errorf("HEAD /records: %d", code)
	}
}

func TestNonGetIs405(t *testing.T) {
	ts := httptest.NewServer(newHandler(builtinDataset()))
	defer ts.Close()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		for _, p := range []string{"/records", "/records/DE", "/healthz", "/anything"} {
			code, hdr, _ := do(t, m, ts.URL+p)
			if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow=%q, want 405", m, p, code, hdr.Get("Allow"))
			}
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.json", `[{"id":"x","v":1},{"id":"y","v":2}]`)
	writeFile(t, dir, "a.json", `{ "id": "w", "v": 0 }`)
	writeFile(t, dir, "ignored.txt", `not json`)

	d, source, err := loadDataset(dir)
	if err != nil || source != dir {
		t.Fatalf("loadDataset: %v %q", err, source)
	}
	ts := httptest.NewServer(newHandler(d))
	defer ts.Close()

	_, _, body := do(t, http.MethodGet, ts.URL+"/records")
	if got, want := strings.TrimSpace(string(body)), `[{"id":"w","v":0},{"id":"x","v":1},{"id":"y","v":2}]`; got != want {
		t.Errorf("records = %s, want %s", got, want)
	}
	if code, _, body := do(t, http.MethodGet, ts.URL+"/records/y"); code != http.StatusOK || strings.TrimSpace(string(body)) != `{"id":"y","v":2}` {
		t.Errorf("GET /records/y: %d %s", code, body)
	}
	if code, _, _ := do(t, http.MethodGet, ts.URL+"/records/DE"); code != http.StatusNotFound {
		t.Errorf("built-in record still served from DATA_DIR dataset")
	}
}

func TestDataDirWithoutJSONFallsBack(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "readme.txt", "nothing here")
	d, source, err := loadDataset(dir)
	if err != nil || source != "built-in" || len(d.records) != len(builtin) {
		t.Fatalf("got %v %q %d records", err, source, len(d.records))
	}
}

func TestDataDirErrors(t *testing.T) {
	cases := map[string]string{
		"invalid JSON":  `{"id":`,
		"missing id":    `[{"name":"no id"}]`,
		"numeric id":    `{"id": 7}`,
		"empty id":      `{"id": ""}`,
		"duplicate id":  `[{"id":"a"},{"id":"a"}]`,
		"not an object": `["a"]`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "data.json", content)
			if _, _, err := loadDataset(dir); err == nil {
				t.Errorf("no error for %s", content)
			}
		})
	}
	if _, _, err := loadDataset(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing DATA_DIR")
	}
}
