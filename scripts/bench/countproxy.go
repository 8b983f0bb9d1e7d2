//go:build ignore

// countproxy is a counting proxy for the Docker Engine API, used by
// scripts/bench-compose.sh to count the API calls a client makes:
//
//	go build -o /tmp/countproxy scripts/bench/countproxy.go
//	/tmp/countproxy -listen /tmp/x.sock -upstream /var/run/docker.sock -log calls.txt &
//	DOCKER_HOST=unix:///tmp/x.sock docker-compose up -d
//	wc -l < calls.txt
//
// Every request is forwarded unchanged to the upstream socket and, when it
// is answered, one line "METHOD /path/pattern MICROSECONDS" is appended to
// the log: the API version prefix and the query dropped, object ids and
// names replaced by {id} (the patterns moat --stats prints), and the time
// from the request to the end of the response, as the client waits for
// it. It is not part of moat (build tag ignore).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

// pattern turns /v1.41/containers/abc/json into /containers/{id}/json.
func pattern(path string) string {
	path = versionPrefix.ReplaceAllString(path, "")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	// An image name may hold slashes: /images/localhost/x/echo:1/json.
	if parts[0] == "images" && len(parts) > 3 {
		parts = []string{"images", "{id}", parts[len(parts)-1]}
	}
	switch parts[0] {
	case "containers", "networks", "volumes", "exec", "images", "plugins", "secrets", "configs", "services", "tasks", "nodes":
		if len(parts) >= 2 {
			switch parts[1] {
			case "json", "create", "prune", "load", "search", "get":
			default:
				parts[1] = "{id}"
			}
		}
	}
	return "/" + strings.Join(parts, "/")
}

func main() {
	listen := flag.String("listen", "", "unix socket to listen on (required)")
	upstream := flag.String("upstream", "/var/run/docker.sock", "the engine's unix socket")
	logPath := flag.String("log", "", "file to append one line per request to (required)")
	flag.Parse()
	if *listen == "" || *logPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	lf, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(lf)

	target, _ := url.Parse("http://docker")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *upstream)
		},
		MaxIdleConnsPerHost: 64,
	}
	proxy.FlushInterval = -1 // stream (events, logs) as they come
	handler := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		proxy.ServeHTTP(rw, r)
		took := time.Since(start)
		mu.Lock()
		fmt.Fprintf(w, "%s %s %d\n", r.Method, pattern(r.URL.Path), took.Microseconds())
		w.Flush()
		mu.Unlock()
	})

	_ = os.Remove(*listen)
	ln, err := net.Listen("unix", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	mu.Lock()
	w.Flush()
	mu.Unlock()
	_ = os.Remove(*listen)
}
