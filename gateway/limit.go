package gateway

import (
	"net"
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, at most burst stored.
// (golang.org/x/time/rate would do, but it is not among the allowed
// dependencies, and this is twenty lines.)
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	if now == nil {
		now = time.Now
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// allow takes one token if there is one.
func (b *bucket) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if el := t.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
	}
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limitListener admits at most max connections at once. Unlike
// x/net/netutil's LimitListener it does not stop accepting at the limit
// (that would leave the extra clients hanging in the kernel's backlog with
// no answer): an extra connection is handed to reject, which answers it
// (503 for http, a plain close for tcp) and closes it.
type limitListener struct {
	net.Listener
	sem    chan struct{}
	reject func(net.Conn)
}

func newLimitListener(l net.Listener, max int, reject func(net.Conn)) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, max), reject: reject}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			go l.reject(c)
		}
	}
}

// limitConn gives its slot back exactly once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
