package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestModes: each mode passes exactly its methods; a denied request never
// reaches the service, and is answered 403 and logged.
func TestModes(t *testing.T) {
	methods := []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"}
	pass := map[string]map[string]bool{
		ReadOnly:  {"GET": true, "HEAD": true, "OPTIONS": true},
		WriteOnly: {"POST": true, "PUT": true},
		ReadWrite: {"GET": true, "HEAD": true, "OPTIONS": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "TRACE": true},
	}
	for _, mode := range []string{ReadOnly, WriteOnly, ReadWrite} {
		t.Run(mode, func(t *testing.T) {
			up := newUpstream(t)
			gw, g, logs := startGateway(t, mode, ProtoHTTP, up.addr(), nil)
			denied := 0
			for _, m := range methods {
				n := len(up.requests())
				resp := do(t, m, "http://"+gw+"/logs", "x", nil)
				reached := len(up.requests()) > n
				if pass[mode][m] {
					if resp.StatusCode != http.StatusCreated || !reached {
						t.Errorf("%s %s: status %d, reached service %v; want 201 and reached", mode, m, resp.StatusCode, reached)
					}
					continue
				}
				denied++
				if resp.StatusCode != http.StatusForbidden || reached {
					t.Errorf("%s %s: status %d, reached service %v; want 403 and not reached", mode, m, resp.StatusCode, reached)
				}
				if !strings.Contains(logs.String(), `"method":"`+m+`"`) {
					t.Errorf("%s %s: denial not logged: %s", mode, m, logs.String())
				}
			}
			if want := fmt.Sprintf(`moat_gateway_denials_total{reason="method",service="logging",tenant="acme"} %d`, denied); !strings.Contains(scrape(t, g), want) {
				t.Errorf("metrics lack %q:\n%s", want, scrape(t, g))
			}
		})
	}
}

// TestWriteOnlyReturnsStatusOnly: the service's body and headers never
// reach a write-only tenant; a read-write one gets them (control).
func TestWriteOnlyReturnsStatusOnly(t *testing.T) {
	up := newUpstream(t)
	wo, _, _ := startGateway(t, WriteOnly, ProtoHTTP, up.addr(), nil)
	rw, _, _ := startGateway(t, ReadWrite, ProtoHTTP, up.addr(), nil)
	for _, m := range []string{"POST", "PUT"} {
		resp := do(t, m, "http://"+wo+"/logs", "line", nil)
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("write-only %s: status %d, want the service's 201", m, resp.StatusCode)
		}
		if b := body(t, resp); b != "" {
			t.Errorf("write-only %s: body %q reached the tenant", m, b)
		}
		for _, h := range []string{"X-Secret", "Location"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("write-only %s: header %s=%q reached the tenant", m, h, v)
			}
		}
	}
	resp := do(t, "POST", "http://"+rw+"/logs", "line", nil)
	if b := body(t, resp); !strings.Contains(b, "SECRET") || resp.Header.Get("X-Secret") == "" {
		t.Errorf("read-write control: body %q header %q; want the service's", b, resp.Header.Get("X-Secret"))
	}
}

// TestIdentityHeader: the service sees exactly one X-Moat-Tenant, the
// gateway's, whatever the client sent: any case, underscores, or a
// Connection header naming it (which would make a proxy that strips
// hop-by-hop headers after setting its own drop the real one).
func TestIdentityHeader(t *testing.T) {
	up := newUpstream(t)
	gw, _, _ := startGateway(t, ReadWrite, ProtoHTTP, up.addr(), nil)
	forged := []map[string]string{
		nil, // control: no forgery at all
		{"X-Moat-Tenant": "globex"},
		{"x-moat-tenant": "globex"},
		{"X_Moat_Tenant": "globex"},
		{"x_MOAT_tenant": "globex"},
		{"X-Moat-Tenant": "globex", "Connection": "X-Moat-Tenant"},
		{"Connection": "x-moat-tenant, keep-alive"},
		{"X-Moat-Anything": "globex"},
	}
	for i, h := range forged {
		n := len(up.requests())
		do(t, "POST", "http://"+gw+"/logs", "x", h)
		got := up.requests()
		if len(got) != n+1 {
			t.Fatalf("case %d %v: request did not reach the service", i, h)
		}
		r := got[n]
		if v := r.Header.Values(TenantHeader); len(v) != 1 || v[0] != "acme" {
			t.Errorf("case %d %v: service saw X-Moat-Tenant %q, want exactly [acme]", i, h, v)
		}
		for k := range r.Header {
			if strings.HasPrefix(headerKey(k), "x-moat-") && k != TenantHeader {
				t.Errorf("case %d %v: service saw forged header %s", i, h, k)
			}
		}
	}
	// The same with raw bytes: duplicate headers and odd spacing.
	n := len(up.requests())
	resps := raw(t, gw, "POST /logs HTTP/1.1\r\nHost: logging\r\nX-Moat-Tenant: globex\r\nX-Moat-Tenant: initech\r\nX_Moat_Tenant:globex\r\nContent-Length: 1\r\n\r\nx")
	if len(resps) != 1 {
		t.Fatalf("raw: %d responses", len(resps))
	}
	r := up.requests()[n]
	if v := r.Header.Values(TenantHeader); len(v) != 1 || v[0] != "acme" || r.Header.Get("X_Moat_Tenant") != "" {
		t.Errorf("raw: service saw %v", r.Header)
	}
}

// TestMethodOverride: a POST that asks the service to treat it as a GET
// (or a GET as a DELETE) is refused in a restricted mode; read-write is
// the control.
func TestMethodOverride(t *testing.T) {
	up := newUpstream(t)
	wo, _, _ := startGateway(t, WriteOnly, ProtoHTTP, up.addr(), nil)
	ro, _, _ := startGateway(t, ReadOnly, ProtoHTTP, up.addr(), nil)
	rw, _, _ := startGateway(t, ReadWrite, ProtoHTTP, up.addr(), nil)
	cases := []struct {
		gw, method, path string
		hdr              map[string]string
	}{
		{wo, "POST", "/logs", map[string]string{"X-HTTP-Method-Override": "GET"}},
		{wo, "POST", "/logs", map[string]string{"x-http-method": "GET"}},
		{wo, "POST", "/logs", map[string]string{"X_Method_Override": "GET"}},
		{wo, "POST", "/logs?_method=GET", nil},
		{ro, "GET", "/logs?_method=DELETE", nil},
		{ro, "GET", "/logs", map[string]string{"X-HTTP-Method-Override": "DELETE"}},
	}
	for _, c := range cases {
		n := len(up.requests())
		if resp := do(t, c.method, "http://"+c.gw+c.path, "x", c.hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s %v: status %d, want 403", c.method, c.path, c.hdr, resp.StatusCode)
		}
		if len(up.requests()) != n {
			t.Errorf("%s %s %v: reached the service", c.method, c.path, c.hdr)
		}
	}
	if resp := do(t, "POST", "http://"+rw+"/logs", "x", map[string]string{"X-HTTP-Method-Override": "GET"}); resp.StatusCode != http.StatusCreated {
		t.Errorf("read-write control: status %d", resp.StatusCode)
	}
	if resp := do(t, "POST", "http://"+wo+"/logs", "x", nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("write-only control: status %d", resp.StatusCode)
	}
}

// TestHostileFraming sends raw requests that desynchronise naive proxies.
// Whatever the gateway makes of them, the service must never see a method
// the mode forbids, nor a host other than the service.
func TestHostileFraming(t *testing.T) {
	up := newUpstream(t)
	wo, _, _ := startGateway(t, WriteOnly, ProtoHTTP, up.addr(), nil)
	ro, _, _ := startGateway(t, ReadOnly, ProtoHTTP, up.addr(), nil)
	smuggled := "GET /logs HTTP/1.1\r\nHost: logging\r\n\r\n"
	cases := []struct {
		name, gw, req string
		wantCodes     []int // responses the tenant gets, in order
	}{
		{"pipelined write then read", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nContent-Length: 2\r\n\r\nhi" + smuggled, []int{201, 403}},
		{"CL.TE: chunked wins, GET hidden in the body", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled), []int{201}},
		{"TE.CL: zero chunk then a GET", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled, []int{201, 403}},
		{"obfuscated Transfer-Encoding", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nContent-Length: 3\r\nTransfer-Encoding: xchunked\r\n\r\nabc" + smuggled, nil},
		{"two different Content-Lengths", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc" + smuggled, []int{400}},
		{"absolute-form URI to another host, write-only", wo,
			"GET http://evil.example/logs HTTP/1.1\r\nHost: evil.example\r\n\r\n", []int{403}},
		{"absolute-form URI to another host, read-only passes to the service only", ro,
			"GET http://evil.example/logs HTTP/1.1\r\nHost: evil.example\r\n\r\n", []int{201}},
		{"HTTP/1.0 read on write-only", wo, "GET /logs HTTP/1.0\r\n\r\n", []int{403}},
		{"HTTP/1.0 write on write-only", wo, "POST /logs HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", []int{201}},
		{"CONNECT", ro, "CONNECT logging:8080 HTTP/1.1\r\nHost: logging:8080\r\n\r\n", []int{403}},
		{"websocket upgrade on read-only", ro,
			"GET /logs HTTP/1.1\r\nHost: logging\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", []int{403}},
		{"h2c upgrade on write-only", wo,
			"POST /logs HTTP/1.1\r\nHost: logging\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 1\r\n\r\nx", []int{403}},
		{"lower-case method", wo, "get /logs HTTP/1.1\r\nHost: logging\r\n\r\n", []int{403}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(up.requests())
			resps := raw(t, c.gw, c.req)
			var codes []int
			for _, r := range resps {
				codes = append(codes, r.StatusCode)
			}
			if c.wantCodes != nil && fmt.Sprint(codes) != fmt.Sprint(c.wantCodes) {
				t.Errorf("tenant got %v, want %v", codes, c.wantCodes)
			}
			for _, r := range up.requests()[n:] {
				if c.gw == wo && r.Method != "POST" && r.Method != "PUT" {
					t.Errorf("service saw %s %s through a write-only gateway", r.Method, r.URI)
				}
				if r.Host != "logging" || strings.Contains(r.URI, "evil") {
					t.Errorf("service saw host %q uri %q", r.Host, r.URI)
				}
				if strings.Contains(r.Body, "GET /logs") && c.gw == wo && len(r.Body) != len(smuggled) && !strings.HasPrefix(r.Body, "GET") {
					t.Errorf("unexpected body %q", r.Body)
				}
			}
		})
	}
}

// TestBodyLimit: 413 at one byte over the limit, declared or chunked; the
// limit itself passes.
func TestBodyLimit(t *testing.T) {
	up := newUpstream(t)
	gw, g, _ := startGateway(t, WriteOnly, ProtoHTTP, up.addr(), func(c *Config) { c.MaxBody = 1024 })
	if resp := do(t, "POST", "http://"+gw+"/logs", strings.Repeat("a", 1024), nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("1024 bytes: status %d, want 201", resp.StatusCode)
	}
	n := len(up.requests())
	if resp := do(t, "POST", "http://"+gw+"/logs", strings.Repeat("a", 1025), nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1025 bytes: status %d, want 413", resp.StatusCode)
	}
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 1000, strings.Repeat("b", 1000))
	resps := raw(t, gw, "POST /logs HTTP/1.1\r\nHost: logging\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk+chunk+"0\r\n\r\n")
	if len(resps) == 0 || resps[0].StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 2000 bytes: %v, want 413", resps)
	}
	if len(up.requests()) != n {
		t.Errorf("an oversized body reached the service")
	}
	if !strings.Contains(scrape(t, g), `moat_gateway_throttled_total{reason="body-size",service="logging",tenant="acme"} 2`) {
		t.Errorf("metrics:\n%s", scrape(t, g))
	}
}

// TestRateLimit: beyond the burst, 429 with Retry-After; denied requests
// spend tokens too.
func TestRateLimit(t *testing.T) {
	up := newUpstream(t)
	gw, g, _ := startGateway(t, WriteOnly, ProtoHTTP, up.addr(), func(c *Config) { c.RPS, c.Burst = 0.001, 3 })
	var codes []int
	for i := 0; i < 5; i++ {
		m := "POST"
		if i == 1 {
			m = "GET"
		}
		codes = append(codes, do(t, m, "http://"+gw+"/logs", "x", nil).StatusCode)
	}
	if fmt.Sprint(codes) != "[201 403 201 429 429]" {
		t.Errorf("codes %v, want [201 403 201 429 429]", codes)
	}
	resp := do(t, "POST", "http://"+gw+"/logs", "x", nil)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if !strings.Contains(scrape(t, g), `moat_gateway_throttled_total{reason="rate",service="logging",tenant="acme"} 3`) {
		t.Errorf("metrics:\n%s", scrape(t, g))
	}
}

// TestBucketRefills with a fake clock.
func TestBucketRefills(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(2, 2, func() time.Time { return now })
	if !b.allow() || !b.allow() || b.allow() {
		t.Fatal("burst of 2 not honoured")
	}
	now = now.Add(500 * time.Millisecond)
	if !b.allow() || b.allow() {
		t.Fatal("0.5 s at 2/s should give exactly one token")
	}
	now = now.Add(time.Hour)
	if !b.allow() || !b.allow() || b.allow() {
		t.Fatal("tokens must not accumulate beyond the burst")
	}
}

// TestConnectionLimit: with the limit held by idle connections, a new one
// is answered 503 at once (not left hanging); when one closes, a new
// request passes again.
func TestConnectionLimit(t *testing.T) {
	up := newUpstream(t)
	gw, g, _ := startGateway(t, ReadWrite, ProtoHTTP, up.addr(), func(c *Config) { c.MaxConns = 2 })
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", gw)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the gateway accept them
	resps := raw(t, gw, "GET /logs HTTP/1.1\r\nHost: logging\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over the limit: %v, want one 503", resps)
	}
	held[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resps = raw(t, gw, "GET /logs HTTP/1.1\r\nHost: logging\r\nConnection: close\r\n\r\n")
		if len(resps) == 1 && resps[0].StatusCode == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a slot freed: %v, want 201", resps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	held[1].Close()
	if !strings.Contains(scrape(t, g), `moat_gateway_throttled_total{reason="connections",service="logging",tenant="acme"}`) {
		t.Errorf("metrics:\n%s", scrape(t, g))
	}
}

// TestMetricsPerTenant: requests, bytes and latency carry tenant and
// service.
func TestMetricsPerTenant(t *testing.T) {
	up := newUpstream(t)
	gw, g, _ := startGateway(t, ReadWrite, ProtoHTTP, up.addr(), nil)
	do(t, "POST", "http://"+gw+"/logs", "12345", nil)
	m := scrape(t, g)
	for _, want := range []string{
		`moat_gateway_requests_total{code="201",method="POST",service="logging",tenant="acme"} 1`,
		`moat_gateway_bytes_total{direction="in",service="logging",tenant="acme"} 5`,
		`moat_gateway_bytes_total{direction="out",service="logging",tenant="acme"} 30`,
		`moat_gateway_request_duration_seconds_count{service="logging",tenant="acme"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestUpstreamDown: 502, not a hang.
func TestUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	gw, _, _ := startGateway(t, ReadWrite, ProtoHTTP, addr, nil)
	if resp := do(t, "GET", "http://"+gw+"/", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
}
