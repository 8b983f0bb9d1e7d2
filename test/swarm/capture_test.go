package swarm

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// capture counts the IPv4 packets between the two nodes on one interface
// of a network namespace (both directions): ESP, clear VXLAN, and any
// packet whose bytes contain a marker. It needs no tcpdump: an AF_PACKET
// socket opened inside the namespace stays bound to it.
type capture struct {
	fd     int
	marker []byte
	wg     sync.WaitGroup
	mu     sync.Mutex
	st     captureStats
	done   bool
}

type captureStats struct {
	between, esp, vxlan, marker int
	err                         error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture opens the socket in the namespace at nsPath (a thread of
// its own enters it and is then thrown away: it never runs Go code in the
// host's namespace again) and reads until stop.
func startCapture(t *testing.T, nsPath, ifname, marker string) *capture {
	t.Helper()
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		ns, err := os.Open(nsPath)
		if err != nil {
			ch <- res{-1, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{-1, fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			ch <- res{-1, fmt.Errorf("interface %s in %s: %w", ifname, nsPath, err)}
			return
		}
		// SOCK_DGRAM: the link header is stripped, a packet starts at IP.
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_ALL)))
		if err != nil {
			ch <- res{-1, fmt.Errorf("packet socket: %w", err)}
			return
		}
		if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			syscall.Close(fd)
			ch <- res{-1, fmt.Errorf("bind to %s: %w", ifname, err)}
			return
		}
		tv := syscall.Timeval{Usec: 200000}
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
		ch <- res{fd, nil}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("capture: %v", r.err)
	}
	c := &capture{fd: r.fd, marker: []byte(marker)}
	a, b := net.ParseIP(managerAddr).To4(), net.ParseIP(node2Addr).To4()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 65536)
		for {
			c.mu.Lock()
			done := c.done
			c.mu.Unlock()
			if done {
				return
			}
			n, _, err := syscall.Recvfrom(c.fd, buf, 0)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				continue
			}
			if err != nil {
				c.mu.Lock()
				c.st.err = err
				c.mu.Unlock()
				return
			}
			c.count(buf[:n], a, b)
		}
	}()
	return c
}

func (c *capture) count(p []byte, a, b net.IP) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	src, dst := net.IP(p[12:16]), net.IP(p[16:20])
	if !(src.Equal(a) && dst.Equal(b) || src.Equal(b) && dst.Equal(a)) {
		return
	}
	ihl := int(p[0]&0x0f) * 4
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.between++
	switch {
	case p[9] == syscall.IPPROTO_ESP:
		c.st.esp++
	case p[9] == syscall.IPPROTO_UDP && len(p) >= ihl+4 && (int(p[ihl+2])<<8|int(p[ihl+3])) == 4789:
		c.st.vxlan++
	}
	if bytes.Contains(p, c.marker) {
		c.st.marker++
	}
}

// stop ends the capture (once) and returns the counts.
func (c *capture) stop() captureStats {
	c.mu.Lock()
	first := !c.done
	c.done = true
	c.mu.Unlock()
	if first {
		c.wg.Wait()
		syscall.Close(c.fd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}
