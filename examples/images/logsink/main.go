// Command logsink is a tiny write-only log sink used as a moat example image.
//
// Clients append log entries over HTTP; the sink keeps the most recent
// entries in memory only (it never writes to disk, so it runs unchanged on a
// read-only root filesystem as an unprivileged user).
//
// It is a shared service: every tenant's gateway forwards to it and names
// the calling tenant in X-Moat-Tenant (moat's gateways strip any copy a
// client sends). The sink keeps each tenant's entries apart, each tenant's
// store bounded in entries AND bytes, so no tenant can evict another's
// entries or make the sink run out of memory: the whole retained set is at
// most MAX_TENANTS x TENANT_BYTES, below the container's memory limit.
//
// Endpoints:
//
//	POST /logs, PUT /logs  append the request body as one entry of the
//	                       calling tenant; 204 on success, 413 if the body
//	                       exceeds 64 KiB, 507 when MAX_TENANTS other
//	                       tenants already have a store. A request without
//	                       X-Moat-Tenant (never one through a gateway) is
//	                       stored for the anonymous tenant "".
//	GET  /logs             the calling tenant's retained entries as a JSON
//	                       array, oldest first (never another tenant's)
//	GET  /healthz          200 "ok"
//
// The read path (GET /logs) exists on purpose: a write-only gateway in
// front of the sink shows that it blocks reads.
//
// Configuration (environment):
//
//	LISTEN          listen address (default ":8080")
//	TENANT_ENTRIES  entries kept per tenant (default 1000)
//	TENANT_BYTES    body bytes kept per tenant (default 1048576)
//	MAX_TENANTS     tenants with a store (default 16)
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
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	// maxEntryBytes is the largest accepted request body.
	maxEntryBytes = 64 << 10
	// Defaults of the per-tenant bounds (see the package doc).
	defaultTenantEntries = 1000
	defaultTenantBytes   = 1 << 20
	defaultMaxTenants    = 16
)

// tenantHeader names the calling tenant; set by moat's gateway.
const tenantHeader = "X-Moat-Tenant"

// entry is one stored log record. Body is the raw request body as a string;
// invalid UTF-8 is replaced by U+FFFD when encoded as JSON.
type entry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	Remote string    `json:"remote"`
	Body   string    `json:"body"`
}

// ring is one tenant's entries, oldest first, bounded in count and in body
// bytes: adding evicts that tenant's oldest entries until both hold.
type ring struct {
	entries  []entry
	bytes    int
	maxCount int
	maxBytes int
}

func (r *ring) add(e entry) {
	r.entries = append(r.entries, e)
	r.bytes += len(e.Body)
	drop := 0
	for len(r.entries)-drop > r.maxCount || (r.bytes > r.maxBytes && len(r.entries)-drop > 1) {
		r.bytes -= len(r.entries[drop].Body)
		r.entries[drop] = entry{} // let the body be collected
		drop++
	}
	if drop > 0 {
		// Copy down rather than reslice, so the backing array does not keep
		// growing at the front.
		r.entries = append(r.entries[:0], r.entries[drop:]...)
	}
}

// store holds one ring per tenant.
type store struct {
	mu                 sync.Mutex
	tenants            map[string]*ring
	lastSeq            uint64
	maxCount, maxBytes int
	maxTenants         int
}

func newStore(maxCount, maxBytes, maxTenants int) *store {
	return &store{tenants: map[string]*ring{}, maxCount: maxCount, maxBytes: maxBytes, maxTenants: maxTenants}
}

var errTooManyTenants = errors.New("too many tenants")

// add stores e in its tenant's ring (assigning its sequence number).
func (s *store) add(e entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tenants[e.Tenant]
	if r == nil {
		if len(s.tenants) >= s.maxTenants {
			return errTooManyTenants
		}
		r = &ring{maxCount: s.maxCount, maxBytes: s.maxBytes}
		s.tenants[e.Tenant] = r
	}
	s.lastSeq++
	e.Seq = s.lastSeq
	r.add(e)
	return nil
}

// snapshot returns a copy of tenant's retained entries, oldest first.
func (s *store) snapshot(tenant string) []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tenants[tenant]
	if r == nil {
		return []entry{}
	}
	return append([]entry(nil), r.entries...)
}

// newHandler builds the HTTP routes around store. Methods other than those
// listed get 405 from the mux; unknown paths get 404.
func newHandler(store *store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	write := func(w http.ResponseWriter, r *http.Request) { handleWrite(w, r, store) }
	mux.HandleFunc("POST /logs", write)
	mux.HandleFunc("PUT /logs", write)
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		tenant := r.Header.Get(tenantHeader)
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(store.snapshot(tenant)); err != nil {
			log.Printf("writing response: %v", err)
		}
	})
	return mux
}

// handleWrite appends the request body to store.
func handleWrite(w http.ResponseWriter, r *http.Request, store *store) {
	tenant := r.Header.Get(tenantHeader)
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
	if err := store.add(entry{Time: time.Now().UTC(), Tenant: tenant, Remote: r.RemoteAddr, Body: string(body)}); err != nil {
		http.Error(w, err.Error(), http.StatusInsufficientStorage)
		return
	}
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
		Handler:           newHandler(newStore(envInt("TENANT_ENTRIES", defaultTenantEntries), envInt("TENANT_BYTES", defaultTenantBytes), envInt("MAX_TENANTS", defaultMaxTenants))),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("logsink listening on %s (per tenant: last %d entries, at most %d bytes; %d tenants; max %d bytes each)",
		addr, envInt("TENANT_ENTRIES", defaultTenantEntries), envInt("TENANT_BYTES", defaultTenantBytes), envInt("MAX_TENANTS", defaultMaxTenants), maxEntryBytes)
	if err := serve.Run(ctx, srv); err != nil {
		log.Printf("logsink: %v", err)
		os.Exit(1)
	}
	log.Printf("logsink stopped")
}

// envInt reads a positive integer from the environment, else def.
func envInt(key string, def int) int {
	v, err := strconv.Atoi(os.Getenv(key))
	if err != nil || v < 1 {
		return def
	}
	return v
}
