// Command probe is a tiny static network probe used by moat isolation tests.
//
// It ships in a FROM scratch image (no shell, no curl), so the tests run it
// with `docker exec` or as a one-shot container to check what a container
// can and cannot reach.
//
// Usage:
//
//	probe dial tcp HOST:PORT        exit 0 if a TCP connection is established
//	                                within the timeout, else 1
//	probe http GET|POST URL [BODY]  print the HTTP status line and the start
//	                                of the body; exit 0 if any HTTP response
//	                                arrived (whatever the status), else 1
//	probe flood METHOD URL N SIZE   N requests with SIZE-byte bodies on one
//	                                connection; prints the count per status,
//	                                requests/s and p50/p99 latency
//	probe read FILE                 print the file; exit 0 if it could be
//	                                read, else 1 (what may this uid open?)
//	probe write FILE TEXT           create or truncate FILE with TEXT; exit 0
//	                                if it could be written, else 1
//	probe raw                       exit 0 if a raw ICMP socket can be
//	                                opened (needs CAP_NET_RAW), else 1
//	probe bind tcp ADDR             listen on ADDR and close; exit 0 if the
//	                                port could be bound, else 1
//	probe serve                     serve HTTP (also the default with no
//	                                arguments): /healthz -> 200 "ok",
//	                                everything else -> 200 "probe"
//
// Exit status 2 means the command line was invalid.
//
// Configuration (environment):
//
//	LISTEN         listen address for serve (default ":8080")
//	PROBE_TIMEOUT  timeout for dial and http, as a Go duration (default 2s)
//	PROBE_HEADER   "Name: value", a header added to http and flood requests
//
// Outbound checks connect directly: HTTP(S)_PROXY variables are ignored and
// redirects are not followed, so the result always describes the target.
package main

import (
	"context"
	"fmt"
	"github.com/moat-platform/moat/examples/images/internal/serve"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	defaultTimeout = 2 * time.Second
	// maxPrintedBody caps how much of an HTTP response body is printed.
	maxPrintedBody = 4 << 10
)

const usage = `usage:
  probe dial tcp HOST:PORT
  probe http GET|POST URL [BODY]
  probe flood METHOD URL COUNT SIZE
  probe read FILE
  probe write FILE TEXT
  probe bind tcp ADDR
  probe raw
  probe [serve]
`

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// timeout returns PROBE_TIMEOUT or the default.
func timeout(getenv func(string) string) (time.Duration, error) {
	v := getenv("PROBE_TIMEOUT")
	if v == "" {
		return defaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid PROBE_TIMEOUT %q", v)
	}
	return d, nil
}

// dial implements `probe dial NETWORK ADDR`.
func dial(network, addr string, d time.Duration, stdout io.Writer) int {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		fmt.Fprintf(stdout, "FAIL dial %s %s: unsupported network (use tcp)\n", network, addr)
		return exitUsage
	}
	conn, err := net.DialTimeout(network, addr, d)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL dial %s %s: %v\n", network, addr, err)
		return exitFail
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "OK dial %s %s: connected %s -> %s\n", network, addr, conn.LocalAddr(), conn.RemoteAddr())
	return exitOK
}

// httpProbe implements `probe http METHOD URL [BODY]`.
func httpProbe(method, url, body string, d time.Duration, stdout io.Writer) int {
	method = strings.ToUpper(method)
	if method != http.MethodGet && method != http.MethodPost {
		fmt.Fprintf(stdout, "FAIL http: method must be GET or POST, not %q\n", method)
		return exitUsage
	}
	var rd io.Reader
	if method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL http %s %s: %v\n", method, url, err)
		return exitUsage
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if k, v, ok := strings.Cut(os.Getenv("PROBE_HEADER"), ":"); ok {
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	client := &http.Client{
		Transport: tr,
		Timeout:   d,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL http %s %s: %v\n", method, url, err)
		return exitFail
	}
	defer resp.Body.Close()
	fmt.Fprintf(stdout, "HTTP %s %s: %s\n", method, url, resp.Status)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxPrintedBody))
	if len(b) > 0 {
		fmt.Fprintf(stdout, "%s\n", strings.TrimRight(string(b), "\n"))
	}
	return exitOK // any HTTP response counts as reachable
}

// run dispatches the command line (without the program name). The serve
// mode is handled by main because it blocks until a signal arrives.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	d, err := timeout(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	switch {
	case len(args) == 3 && args[0] == "dial":
		return dial(args[1], args[2], d, stdout)
	case (len(args) == 3 || len(args) == 4) && args[0] == "http":
		body := ""
		if len(args) == 4 {
			body = args[3]
		}
		return httpProbe(args[1], args[2], body, d, stdout)
	case len(args) == 5 && args[0] == "flood":
		return flood(args[1], args[2], args[3], args[4], getenv("PROBE_HEADER"), d, stdout)
	case len(args) == 2 && args[0] == "read":
		return readFile(args[1], stdout)
	case len(args) == 3 && args[0] == "write":
		return writeFile(args[1], args[2], stdout)
	case len(args) == 3 && args[0] == "bind":
		return bind(args[1], args[2], stdout)
	case len(args) == 1 && args[0] == "raw":
		return rawSocket(stdout)
	default:
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
}

// newHandler is the HTTP handler of the serve mode.
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "probe")
	})
	return mux
}

func runServer() int {
	log.SetFlags(log.LstdFlags | log.LUTC)
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("probe serving on %s", addr)
	if err := serve.Run(ctx, srv); err != nil {
		log.Printf("probe: %v", err)
		return exitFail
	}
	log.Printf("probe stopped")
	return exitOK
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || (len(args) == 1 && args[0] == "serve") {
		os.Exit(runServer())
	}
	os.Exit(run(args, os.Getenv, os.Stdout, os.Stderr))
}

// flood implements `probe flood METHOD URL COUNT SIZE`: COUNT requests one
// after the other (one keep-alive connection), each with a SIZE-byte body,
// and a summary line of the status codes ("flood 1000: 204=800 429=200").
// Exit 0 if every request got an HTTP response, else 1.
func flood(method, url, count, size, header string, d time.Duration, stdout io.Writer) int {
	n, err1 := strconv.Atoi(count)
	sz, err2 := strconv.Atoi(size)
	if err1 != nil || err2 != nil || n < 1 || sz < 0 {
		fmt.Fprintf(stdout, "FAIL flood: COUNT and SIZE must be numbers\n")
		return exitUsage
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	client := &http.Client{Transport: tr, Timeout: d}
	body := strings.Repeat("x", sz)
	codes := map[int]int{}
	failed := 0
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		req, err := http.NewRequest(strings.ToUpper(method), url, strings.NewReader(body))
		if err != nil {
			fmt.Fprintf(stdout, "FAIL flood: %v\n", err)
			return exitUsage
		}
		if k, v, ok := strings.Cut(header, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	fmt.Fprintf(stdout, "flood %d:", n)
	for _, k := range keys {
		fmt.Fprintf(stdout, " %d=%d", k, codes[k])
	}
	fmt.Fprintf(stdout, " errors=%d", failed)
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Fprintf(stdout, " req/s=%.0f p50=%dus p99=%dus", float64(n)/elapsed.Seconds(),
			lat[len(lat)/2].Microseconds(), lat[len(lat)*99/100].Microseconds())
	}
	fmt.Fprintln(stdout)
	if failed > 0 {
		return exitFail
	}
	return exitOK
}
