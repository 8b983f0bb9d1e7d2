// Command masterdata is a read-only master-data HTTP server used as a moat
// example image.
//
// It serves a small JSON dataset that is loaded once at startup and never
// modified, so it runs unchanged on a read-only root filesystem as an
// unprivileged user.
//
// Endpoints (only GET and HEAD are allowed; anything else is 405):
//
//	GET /records       all records as a JSON array
//	GET /records/{id}  one record, or 404
//	GET /healthz       200 "ok"
//
// Configuration (environment):
//
//	LISTEN    listen address (default ":8080")
//	DATA_DIR  optional directory of *.json files. If it contains at least one
//	          such file, those records replace the built-in dataset. Each file
//	          holds either one JSON object or an array of objects, and every
//	          object needs a unique, non-empty string "id". Files are read in
//	          name order. A DATA_DIR that cannot be read, or holds invalid
//	          files, is a startup error; one without *.json files falls back
//	          to the built-in dataset.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/moat-platform/moat/examples/images/internal/serve"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// country is the shape of the built-in records.
type country struct {
	ID           string `json:"id"` // ISO 3166-1 alpha-2
	Name         string `json:"name"`
	Capital      string `json:"capital"`
	Currency     string `json:"currency"` // ISO 4217
	CurrencyName string `json:"currencyName"`
}

// builtin is the default dataset: a handful of countries and currencies.
var builtin = []country{
	{"AT", "Austria", "Vienna", "EUR", "Euro"},
	{"BR", "Brazil", "Brasília", "BRL", "Brazilian real"},
	{"CA", "Canada", "Ottawa", "CAD", "Canadian dollar"},
	{"CH", "Switzerland", "Bern", "CHF", "Swiss franc"},
	{"DE", "Germany", "Berlin", "EUR", "Euro"},
	{"GB", "United Kingdom", "London", "GBP", "Pound sterling"},
	{"IN", "India", "New Delhi", "INR", "Indian rupee"},
	{"JP", "Japan", "Tokyo", "JPY", "Japanese yen"},
	{"US", "United States", "Washington, D.C.", "USD", "US dollar"},
	{"ZA", "South Africa", "Pretoria", "ZAR", "South African rand"},
}

// dataset is an immutable, ordered collection of JSON records keyed by id.
type dataset struct {
	records []json.RawMessage          // in serving order
	byID    map[string]json.RawMessage // same records, by id
}

// add appends one record after validating its id.
func (d *dataset) add(raw json.RawMessage, source string) error {
	var head struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("%s: record is not a JSON object: %w", source, err)
	}
	id, ok := head.ID.(string)
	if !ok || id == "" {
		return fmt.Errorf("%s: record without a non-empty string \"id\"", source)
	}
	if _, dup := d.byID[id]; dup {
		return fmt.Errorf("%s: duplicate id %q", source, id)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	rec := json.RawMessage(buf.Bytes())
	d.records = append(d.records, rec)
	d.byID[id] = rec
	return nil
}

func newDataset() *dataset { return &dataset{byID: map[string]json.RawMessage{}} }

// builtinDataset returns the compiled-in records.
func builtinDataset() *dataset {
	d := newDataset()
	for _, c := range builtin {
		raw, err := json.Marshal(c)
		if err != nil {
			panic(err) // cannot happen for a plain struct
		}
		if err := d.add(raw, "builtin"); err != nil {
			panic(err) // programming error in the table above
		}
	}
	return d
}

// loadDir reads all *.json files in dir. It returns (nil, nil) when the
// directory has no such files.
func loadDir(dir string) (*dataset, error) {
	// Glob silently ignores I/O errors, so check the directory first.
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("DATA_DIR: %s is not a directory", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, nil
	}
	sort.Strings(files)
	d := newDataset()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '[' {
			var arr []json.RawMessage
			if err := json.Unmarshal(b, &arr); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for i, raw := range arr {
				if err := d.add(raw, fmt.Sprintf("%s[%d]", f, i)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("%s: invalid JSON", f)
		}
		if err := d.add(b, f); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// loadDataset picks the dataset according to DATA_DIR (see package doc).
func loadDataset(dataDir string) (*dataset, string, error) {
	if dataDir != "" {
		d, err := loadDir(dataDir)
		if err != nil {
			return nil, "", err
		}
		if d != nil {
			return d, dataDir, nil
		}
		log.Printf("DATA_DIR %s has no *.json files, using built-in dataset", dataDir)
	}
	return builtinDataset(), "built-in", nil
}

// newHandler builds the read-only HTTP routes around d.
func newHandler(d *dataset) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, d.records)
	})
	mux.HandleFunc("GET /records/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := d.byID[r.PathValue("id")]
		if !ok {
			http.Error(w, "record not found", http.StatusNotFound)
			return
		}
		writeJSON(w, rec)
	})
	return readOnly(mux)
}

// readOnly answers 405 to every method except GET and HEAD, whatever the
// path, so the server is read-only by construction.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	d, source, err := loadDataset(os.Getenv("DATA_DIR"))
	if err != nil {
		log.Printf("masterdata: loading data: %v", err)
		os.Exit(1)
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(d),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("masterdata serving %d records (%s) on %s", len(d.records), source, addr)
	if err := serve.Run(ctx, srv); err != nil {
		log.Printf("masterdata: %v", err)
		os.Exit(1)
	}
	log.Printf("masterdata stopped")
}
