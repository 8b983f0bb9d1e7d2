package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkOverhead compares the same requests sent straight to a service
// and through a gateway, in one run: requests per second and p50/p99
// latency (reported as custom metrics). The service is a bare handler that
// answers a 100-byte POST with 204 after work (0 or 1 ms), so the
// "work=0" case shows the gateway's whole cost against a service that does
// nothing, and "work=1ms" the cost against a service that does something.
// conc is the number of clients sending at once, each on its own
// keep-alive connection.
//
//	go test -run='^$' -bench=Overhead -benchtime=3000x ./gateway
func BenchmarkOverhead(b *testing.B) {
	for _, work := range []time.Duration{0, time.Millisecond} {
		svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if work > 0 {
				time.Sleep(work)
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		cfg := Defaults
		cfg.Tenant, cfg.Service, cfg.Mode, cfg.Protocol = "acme", "logging", WriteOnly, ProtoHTTP
		cfg.Listen, cfg.Upstream, cfg.MetricsListen = "127.0.0.1:0", strings.TrimPrefix(svc.URL, "http://"), ""
		cfg.RPS, cfg.Burst, cfg.MaxConns = 1e9, 1e9, 1024
		g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx, cancel := context.WithCancel(context.Background())
		go g.Serve(ctx, ln, time.Second)
		targets := []struct{ name, url string }{
			{"direct", svc.URL + "/logs"},
			{"gateway", "http://" + ln.Addr().String() + "/logs"},
		}
		for _, conc := range []int{1, 16} {
			for _, tg := range targets {
				b.Run("work="+work.String()+"/conc="+itoa(conc)+"/"+tg.name, func(b *testing.B) {
					load(b, tg.url, conc)
				})
			}
		}
		cancel()
		svc.Close()
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// load sends b.N POSTs from conc clients and reports rps, p50 and p99.
func load(b *testing.B, url string, conc int) {
	body := strings.Repeat("x", 100)
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	send := func() time.Duration {
		t0 := time.Now()
		resp, err := client.Post(url, "text/plain", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(t0)
	}
	for i := 0; i < 50; i++ { // warm the connections up
		send()
	}
	lat := make([]time.Duration, b.N)
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(b.N) {
					return
				}
				lat[i] = send()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
