//go:build interop

package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Cistern's MAILBOXID (RFC 8474) is Dovecot's mailbox GUID, in the form
// Dovecot prints it (STATUS X-GUID: 32 lowercase hex digits), so that a
// client keeps its cached ids when the tree moves from Dovecot to
// Cistern.
func TestMailboxIDIsDovecotGUID(t *testing.T) {
	dir := newMaildir(t)
	deliver(t, dir, messageID("g", 0), false, 0)
	d := NewDovecot(t, dir)
	d.Start()
	c, err := net.DialTimeout("tcp", d.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	var status string
	send := func(tag, cmd string) {
		t.Helper()
		fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(l, "* STATUS ") {
				status = l
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %s", cmd, l)
				}
				return
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil { // the greeting
		t.Fatal(err)
	}
	send("a1", "LOGIN "+DovecotUser+" "+DovecotPassword)
	send("a2", "STATUS INBOX (X-GUID)")
	send("a3", "LOGOUT")
	d.Stop()
	m := regexp.MustCompile(`X-GUID ([0-9a-f]{32})\)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("Dovecot's STATUS: %q", status)
	}
	mb := openStore(t, dir)
	defer mb.Close()
	guid, err := mb.GUID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if guid != m[1] {
		t.Fatalf("Cistern's MAILBOXID %s, Dovecot's GUID %s", guid, m[1])
	}
}
