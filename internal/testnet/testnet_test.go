package testnet

import (
	"net"
	"testing"
	"time"
)

// A client connecting to a listener on the address is seen by the
// server with a non-loopback remote address.
func TestNonLoopback(t *testing.T) {
	ip, inside := NonLoopback(t)
	if !inside {
		return
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		t.Fatalf("NonLoopback = %v", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	remote, ok := (<-accepted).(*net.TCPAddr)
	if !ok || remote.IP.IsLoopback() {
		t.Fatalf("the server saw the client at %v, want a non-loopback address", remote)
	}
}
