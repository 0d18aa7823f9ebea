package imaptorture

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// followingServer is an IMAP server just good enough for the symbolic
// link actor's probes, that follows links as a careless server does:
// LIST shows every folder directory of root, links included, SELECT
// opens one and FETCH serves the files of its cur/ and new/, reading
// through links.
func followingServer(t *testing.T, root string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFollowing(c, root)
		}
	}()
	return ln.Addr().String()
}

func serveFollowing(c net.Conn, root string) {
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "* OK [CAPABILITY IMAP4rev1] following links\r\n")
	var files []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		switch cmd {
		case "LIST":
			es, _ := os.ReadDir(root)
			for _, e := range es {
				if strings.HasPrefix(e.Name(), ".") && len(e.Name()) > 1 {
					fmt.Fprintf(c, "* LIST () \".\" %q\r\n", e.Name()[1:])
				}
			}
		case "SELECT":
			files = nil
			dir := filepath.Join(root, "."+strings.Trim(f[2], `"`))
			for _, sub := range []string{maildir.New, maildir.Cur} {
				es, _ := os.ReadDir(filepath.Join(dir, sub))
				for _, e := range es {
					files = append(files, filepath.Join(dir, sub, e.Name()))
				}
			}
			fmt.Fprintf(c, "* %d EXISTS\r\n", len(files))
		case "FETCH":
			for i, p := range files {
				data, _ := os.ReadFile(p)
				fmt.Fprintf(c, "* %d FETCH (BODY[] {%d}\r\n%s)\r\n", i+1, len(data), data)
			}
		case "LOGOUT":
			fmt.Fprintf(c, "* BYE\r\n%s OK done\r\n", tag)
			return
		}
		fmt.Fprintf(c, "%s OK done\r\n", tag)
	}
}

// TestForeignLinksCatchFollowingServer: against a server that follows
// symbolic links, the link actor reports FollowedSymlink (the decoy's
// marker in a response, a link folder in LIST), and at the end it has
// removed every link it planted, decoys included.
func TestForeignLinksCatchFollowingServer(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	cfg := Config{IMAP: followingServer(t, root), User: "u", Password: "p", Mailbox: "INBOX", Aux: DefaultAux,
		Maildir: root, ForeignLinks: 100, Timeout: 5 * time.Second}
	rec := newRecorder(time.Now())
	r := &run{cfg: cfg, ctx: t.Context(), rec: rec, led: newLedger(rec, "test"), rng: rand.New(rand.NewPCG(seed, 2)), conns: map[*imapConn]bool{}}
	l, err := newForeignLinks(r, root, r.rng.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	r.links = l
	done := make(chan error)
	go func() { done <- l.run(cfg.ForeignLinks) }()
	time.Sleep(500 * time.Millisecond)
	r.stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.finish()
	if rec.counts[FollowedSymlink] == 0 {
		t.Errorf("no %s violation against a server that follows links", FollowedSymlink)
	}
	for _, sub := range []string{"", maildir.New, maildir.Cur} {
		es, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Type()&os.ModeSymlink != 0 {
				t.Errorf("link %s left behind", filepath.Join(sub, e.Name()))
			}
		}
	}
	if _, err := os.Stat(l.decoy); !os.IsNotExist(err) {
		t.Errorf("decoy %s left behind: %v", l.decoy, err)
	}
}
