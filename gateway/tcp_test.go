package gateway

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpService greets every connection with "HELLO secret\n", echoes what
// it receives, and records it.
type tcpService struct {
	ln  net.Listener
	mu  sync.Mutex
	got strings.Builder
}

func newTCPService(t *testing.T) *tcpService {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpService{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "HELLO secret\n")
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						s.mu.Lock()
						s.got.Write(buf[:n])
						s.mu.Unlock()
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *tcpService) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// exchange sends msg, half-closes, and returns all the client reads.
func exchange(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, msg)
	time.Sleep(100 * time.Millisecond)
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

func waitFor(t *testing.T, cond func() bool) bool {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// TestTCPDirections: write-only carries client bytes to the service and
// nothing back; read-only the reverse; read-write both (control).
func TestTCPDirections(t *testing.T) {
	cases := []struct {
		mode                    string
		serviceGets, clientGets bool
	}{
		{WriteOnly, true, false},
		{ReadOnly, false, true},
		{ReadWrite, true, true},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			svc := newTCPService(t)
			gw, g, _ := startGateway(t, c.mode, ProtoTCP, svc.ln.Addr().String(), nil)
			got := exchange(t, gw, "log line from acme\n")
			if gotAny := strings.Contains(got, "HELLO") || strings.Contains(got, "log line"); gotAny != c.clientGets {
				t.Errorf("client read %q; want bytes from the service: %v", got, c.clientGets)
			}
			if c.serviceGets {
				if !waitFor(t, func() bool { return svc.received() == "log line from acme\n" }) {
					t.Errorf("service received %q", svc.received())
				}
			} else {
				time.Sleep(200 * time.Millisecond)
				if r := svc.received(); r != "" {
					t.Errorf("service received %q on a read-only connection", r)
				}
				if !strings.Contains(scrape(t, g), `moat_gateway_denials_total{reason="direction",service="logging",tenant="acme"} 1`) {
					t.Errorf("no direction denial metered:\n%s", scrape(t, g))
				}
			}
		})
	}
}

// TestTCPConnectionLimit: the extra connection is closed at once.
func TestTCPConnectionLimit(t *testing.T) {
	svc := newTCPService(t)
	gw, _, _ := startGateway(t, ReadWrite, ProtoTCP, svc.ln.Addr().String(), func(c *Config) { c.MaxConns = 1 })
	held, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(held, buf); err != nil || string(buf) != "HELLO " {
		t.Fatalf("first connection: %q %v", buf, err)
	}
	extra, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(2 * time.Second))
	if n, err := extra.Read(buf); err == nil || n > 0 {
		t.Errorf("second connection over the limit read %q, %v; want closed", buf[:n], err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Defaults
	good.Tenant, good.Service, good.Listen, good.Upstream = "acme", "logging", ":8080", "demo.shared.logging:8080"
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Tenant = "" },
		func(c *Config) { c.Mode = "write" },
		func(c *Config) { c.Protocol = "udp" },
		func(c *Config) { c.Listen = "8080" },
		func(c *Config) { c.Upstream = ":8080" },
		func(c *Config) { c.Upstream = "svc:0" },
		func(c *Config) { c.MaxBody = 0 },
		func(c *Config) { c.RPS = 0 },
		func(c *Config) { c.Burst = 0 },
		func(c *Config) { c.MaxConns = 0 },
		func(c *Config) { c.IdleTimeout = 0 },
	}
	for i, f := range bad {
		c := good
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d accepted: %+v", i, c)
		}
	}
}
