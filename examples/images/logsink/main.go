// Command logsink is a tiny write-only log sink used as a moat example image.
//
// Clients append log entries over HTTP; the sink keeps the most recent
// entries in memory only (it never writes to disk, so it runs unchanged on a
// read-only root filesystem as an unprivileged user).
//
// Endpoints:
//
//	POST /logs, PUT /logs  append the request body as one entry; 204 on
//	                       success, 413 if the body exceeds 64 KiB
//	GET  /logs             all retained entries as a JSON array, oldest first
//	GET  /healthz          200 "ok"
//
// The read path (GET /logs) exists on purpose: it lets a later example show
// a gateway in front of the sink that allows writes and blocks reads.
//
// Configuration (environment):
//
//	LISTEN  listen address (default ":8080")
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/moat-platform/moat/examples/images/internal/serve"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const (
	// maxEntryBytes is the largest accepted request body.
	maxEntryBytes = 64 << 10
	// ringSize is the number of entries retained.
	ringSize = 1000
)

// entry is one stored log record. Body is the raw request body as a string;
// invalid UTF-8 is replaced by U+FFFD when encoded as JSON.
type entry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Remote string    `json:"remote"`
	Body   string    `json:"body"`
}

// ring is a fixed-size, mutex-protected circular buffer of entries.
type ring struct {
	mu      sync.Mutex
	buf     []entry
	next    int    // index the next entry is written to
	full    bool   // buf has wrapped at least once
	lastSeq uint64 // sequence number of the newest entry
}

func newRing(size int) *ring { return &ring{buf: make([]entry, size)} }

// add stores e (assigning its sequence number), evicting the oldest entry
// when the buffer is full.
func (r *ring) add(e entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSeq++
	e.Seq = r.lastSeq
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// snapshot returns a copy of the retained entries, oldest first.
func (r *ring) snapshot() []entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]entry(nil), r.buf[:r.next]...)
	}
	out := make([]entry, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// newHandler builds the HTTP routes around store. Methods other than those
// listed get 405 from the mux; unknown paths get 404.
func newHandler(store *ring) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	write := func(w http.ResponseWriter, r *http.Request) { handleWrite(w, r, store) }
	mux.HandleFunc("POST /logs", write)
	mux.HandleFunc("PUT /logs", write)
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(store.snapshot()); err != nil {
			log.Printf("writing response: %v", err)
		}
	})
	return mux
}

// handleWrite appends the request body to store.
func handleWrite(w http.ResponseWriter, r *http.Request, store *ring) {
	// Reject early when the client announces an oversized body ...
	if r.ContentLength > maxEntryBytes {
		http.Error(w, fmt.Sprintf("entry larger than %d bytes", maxEntryBytes), http.StatusRequestEntityTooLarge)
		return
	}
	// ... and enforce the limit while reading (chunked bodies, lying clients).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEntryBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("entry larger than %d bytes", maxEntryBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	store.add(entry{Time: time.Now().UTC(), Remote: r.RemoteAddr, Body: string(body)})
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(newRing(ringSize)),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("logsink listening on %s (keeps last %d entries, max %d bytes each)", addr, ringSize, maxEntryBytes)
	if err := serve.Run(ctx, srv); err != nil {
		log.Printf("logsink: %v", err)
		os.Exit(1)
	}
	log.Printf("logsink stopped")
}
