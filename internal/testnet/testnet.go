// Package testnet gives tests a real network address of this machine
// that is not a loopback address, so that a server listening on it sees
// its clients (on the same machine) come from a non-loopback address, as
// it sees clients of other machines: the case where plain-text passwords
// are refused.
//
// NonLoopback takes a global unicast address of an interface that is up.
// A machine with none (a container with only lo) gets one when the test
// runs as root: an address of 198.18.0.0/15 (RFC 2544's benchmarking
// block, never routed) is added to lo for the test and removed after
// it. Without either the test fails, saying so: it never passes by
// testing nothing.
package testnet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NonLoopback returns an IP address of this machine, not a loopback
// one, on which a TCP listener can be opened.
func NonLoopback(t testing.TB) net.IP {
	t.Helper()
	if ip := interfaceAddr(); ip != nil {
		return ip
	}
	if os.Geteuid() != 0 {
		t.Fatal("testnet: this machine has no non-loopback address, and only root may add one (ip addr add 198.18.0.1/32 dev lo)")
	}
	// One address per process: test binaries of several packages run at
	// once, and each removes its own.
	pid := os.Getpid()
	ip := net.IPv4(198, 18+byte(pid>>16&1), byte(pid>>8), byte(pid)|1)
	cidr := ip.String() + "/32"
	if out, err := exec.Command("ip", "addr", "add", cidr, "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("testnet: ip addr add %s dev lo: %v: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "addr", "del", cidr, "dev", "lo").CombinedOutput(); err != nil {
			t.Errorf("testnet: ip addr del %s dev lo: %v: %s", cidr, err, strings.TrimSpace(string(out)))
		}
	})
	if err := canListen(ip); err != nil {
		t.Fatalf("testnet: %s added to lo, but: %v", ip, err)
	}
	return ip
}

// interfaceAddr returns a global unicast address of an interface that is
// up (IPv4 first) that a listener can use, or nil.
func interfaceAddr() net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var v6 net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			// Link-local addresses need a zone, and global unicast
			// excludes loopback, multicast and unspecified ones.
			if !ok || !n.IP.IsGlobalUnicast() || canListen(n.IP) != nil {
				continue
			}
			if n.IP.To4() != nil {
				return n.IP
			}
			if v6 == nil {
				v6 = n.IP
			}
		}
	}
	return v6
}

func canListen(ip net.IP) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	return ln.Close()
}
