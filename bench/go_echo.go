// go_echo.go: an echo server as a Go programmer would write it, the peer
// users would pick instead of sockserv's event mode.
//
// Usage: go_echo tcp PORT | udp PORT | unix PATH | unixdgram PATH
//
// Same shape as epoll_echo.c: binds 127.0.0.1 (PORT 0 = any) or PATH and
// prints the port or path on stdout once it is ready; runs until killed.
// Stream kinds: one goroutine per connection, reading into its own 32 KiB
// buffer (io.Copy's size) and writing back what it read; the runtime's
// netpoller (one epoll set) parks the goroutines.  Datagram kinds:
// GOMAXPROCS goroutines (one on the benchmark's single pinned CPU) each
// in a ReadFrom/WriteTo loop on the one socket.  Standard library only.
package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"time"
)

const bufSize = 32 * 1024

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "go_echo: %s: %v\n", what, err)
	os.Exit(1)
}

func serveConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func serveStream(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			// EMFILE and the like: keep serving those already open,
			// and try again a little later (as net/http does)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serveConn(c)
	}
}

func serveUDP(pc *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, addr, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		pc.WriteToUDPAddrPort(buf[:n], addr)
	}
}

func serveUnixgram(pc *net.UnixConn) {
	buf := make([]byte, 65536)
	for {
		n, addr, err := pc.ReadFromUnix(buf)
		if err != nil || addr == nil {
			continue
		}
		pc.WriteToUnix(buf[:n], addr)
	}
}

// datagram readers: as many as the runtime runs goroutines at once
func readers(f func()) {
	k := runtime.GOMAXPROCS(0)
	for i := 1; i < k; i++ {
		go f()
	}
	f()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_echo tcp|udp PORT | unix|unixdgram PATH")
		os.Exit(2)
	}
	kind, arg := os.Args[1], os.Args[2]
	switch kind {
	case "tcp", "udp":
		port, err := strconv.Atoi(arg)
		if err != nil || port < 0 || port > 65535 {
			fmt.Fprintf(os.Stderr, "go_echo: bad port %s\n", arg)
			os.Exit(2)
		}
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}),
			uint16(port))
		if kind == "tcp" {
			ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ap))
			if err != nil {
				die("listen", err)
			}
			fmt.Println(ln.Addr().(*net.TCPAddr).Port)
			serveStream(ln)
		}
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			die("listen", err)
		}
		fmt.Println(pc.LocalAddr().(*net.UDPAddr).Port)
		readers(func() { serveUDP(pc) })
	case "unix":
		os.Remove(arg)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: arg, Net: "unix"})
		if err != nil {
			die("listen", err)
		}
		fmt.Println(arg)
		serveStream(ln)
	case "unixdgram":
		os.Remove(arg)
		pc, err := net.ListenUnixgram("unixgram",
			&net.UnixAddr{Name: arg, Net: "unixgram"})
		if err != nil {
			die("listen", err)
		}
		fmt.Println(arg)
		readers(func() { serveUnixgram(pc) })
	}
	fmt.Fprintf(os.Stderr, "go_echo: unknown kind %s\n", kind)
	os.Exit(2)
}
