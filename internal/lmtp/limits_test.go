package lmtp

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// greeting dials ts and returns the first line the server says, and the
// connection.
func greeting(t *testing.T, ts *testServer) (string, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioTimeout))
	r := bufio.NewReader(nc)
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n"), nc, r
}

// TestConnectionLimits: past MaxConnectionsPerIP, then past
// MaxConnections, a connection gets 421 4.7.0 and is closed; a slot
// given back is taken again.
func TestConnectionLimits(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Server)
	}{
		{"per address", func(s *Server) { s.MaxConnectionsPerIP = 2 }},
		{"in all", func(s *Server) { s.MaxConnections = 2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.change)
			first := ts.client(t)
			ts.client(t)
			l, nc, r := greeting(t, ts)
			if want := "421 4.7.0 lmtp.test Too many connections, try again later"; l != want {
				t.Fatalf("third connection: %q, want %q", l, want)
			}
			if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
				t.Errorf("after the 421: %q, %v; want the end", rest, err)
			}
			nc.Close()
			if n := ts.srv.RefusedConnections.Load(); n != 1 {
				t.Errorf("RefusedConnections = %d, want 1", n)
			}
			if err := first.Quit(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(ioTimeout)
			for {
				l, nc, _ := greeting(t, ts)
				nc.Close()
				if strings.HasPrefix(l, "220 ") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after a QUIT: still %q", l)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
