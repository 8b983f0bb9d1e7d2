package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// maxReadBytes caps what `probe read` prints: enough for /proc/self/status.
const maxReadBytes = 16 << 10

// readFile implements `probe read FILE`: print the file (bounded). The
// isolation tests use it to show what a tenant's uid can open: a secret,
// another tenant's secret, /proc/sys/net/ipv4/ip_forward, /proc/self/status.
func readFile(path string, stdout io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL read %s: %v\n", path, err)
		return exitFail
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReadBytes))
	if err != nil {
		fmt.Fprintf(stdout, "FAIL read %s: %v\n", path, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "OK read %s\n%s\n", path, strings.TrimRight(string(b), "\n"))
	return exitOK
}

// writeFile implements `probe write FILE TEXT`: create or truncate the file
// (mode 0600) and write TEXT, to show whether this uid may write there.
func writeFile(path, text string, stdout io.Writer) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL write %s: %v\n", path, err)
		return exitFail
	}
	_, err = io.WriteString(f, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL write %s: %v\n", path, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "OK write %s: %d bytes\n", path, len(text))
	return exitOK
}

// bind implements `probe bind tcp ADDR`: listen on ADDR and close at once,
// to show whether this process may bind a port (below 1024, say).
func bind(network, addr string, stdout io.Writer) int {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		fmt.Fprintf(stdout, "FAIL bind %s %s: unsupported network (use tcp)\n", network, addr)
		return exitUsage
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL bind %s %s: %v\n", network, addr, err)
		return exitFail
	}
	l.Close()
	fmt.Fprintf(stdout, "OK bind %s %s\n", network, addr)
	return exitOK
}

// rawSocket implements `probe raw`: what ping and packet forgers need
// (CAP_NET_RAW, which moat drops).
func rawSocket(stdout io.Writer) int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL raw socket: %v\n", err)
		return exitFail
	}
	syscall.Close(fd)
	fmt.Fprintln(stdout, "OK raw socket opened")
	return exitOK
}
