package imap_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
)

// benchBodySize is the message BenchmarkFetchBody fetches: near the
// largest a client may APPEND.
const benchBodySize = 50 << 20

// BenchmarkFetchBody is one FETCH BODY[] of a 50 MB message with
// bare-LF line endings (as Dovecot and procmail store mail), served by
// the engine on the real store over a loopback connection; the client
// side reads the literal into a reused buffer. The message is \Seen
// already, so that BODY[] changes no flag. With an index ("indexed")
// the message's entry is filled by one untimed FETCH, so what is
// measured is the read; without ("unindexed") every FETCH finds the
// size anew. Allocations count the whole process: server and client.
func BenchmarkFetchBody(b *testing.B) {
	b.Run("indexed", func(b *testing.B) { benchmarkFetchBody(b, true) })
	b.Run("unindexed", func(b *testing.B) { benchmarkFetchBody(b, false) })
}

func benchmarkFetchBody(b *testing.B, indexed bool) {
	root := b.TempDir()
	var opts store.Options
	if indexed {
		ix, err := store.OpenIndex(filepath.Join(b.TempDir(), "index.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ix.Close() })
		opts.Index = ix
	}
	ts := startServerWith(b, root, opts, func(s *imap.Server) { s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bc := &benchClient{b: b, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	bc.line() // greeting
	bc.ok("LOGIN alice secret")

	var msg bytes.Buffer
	msg.WriteString("From: alice@example.org\nTo: bob@example.com\nSubject: big\nDate: Mon, 2 Jan 2006 15:04:05 -0700\n\n")
	line := strings.Repeat("0123456789", 7) + "abcde\n"
	for msg.Len()+len(line) <= benchBodySize {
		msg.WriteString(line)
	}
	name := filepath.Join(root, "alice", "Maildir", "cur", "1700000000.M1P1.bench:2,S")
	if err := os.WriteFile(name, msg.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	want := int64(msg.Len() + strings.Count(msg.String(), "\n"))
	msg = bytes.Buffer{}
	bc.ok("SELECT INBOX")
	bc.fetchBody(want) // fills the index, if there is one

	b.SetBytes(want)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bc.fetchBody(want)
	}
}

// benchClient is a raw client that allocates little per command, so
// that the benchmark's allocations are the server's.
type benchClient struct {
	b   *testing.B
	c   net.Conn
	r   *bufio.Reader
	n   int
	buf []byte
}

func (bc *benchClient) line() []byte {
	bc.c.SetReadDeadline(time.Now().Add(time.Minute))
	l, err := bc.r.ReadSlice('\n')
	if err != nil {
		bc.b.Fatalf("reading: %v (got %q)", err, l)
	}
	return l
}

func (bc *benchClient) send(cmd string) string {
	bc.n++
	tag := "b" + strconv.Itoa(bc.n)
	if _, err := io.WriteString(bc.c, tag+" "+cmd+"\r\n"); err != nil {
		bc.b.Fatal(err)
	}
	return tag
}

func (bc *benchClient) ok(cmd string) {
	tag := bc.send(cmd)
	for {
		l := bc.line()
		if bytes.HasPrefix(l, []byte(tag+" ")) {
			if !bytes.HasPrefix(l, []byte(tag+" OK")) {
				bc.b.Fatalf("%s: %q", cmd, l)
			}
			return
		}
	}
}

var reBenchLiteral = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// fetchBody fetches message 1's BODY[] and checks the literal's
// length.
func (bc *benchClient) fetchBody(want int64) {
	tag := bc.send("FETCH 1 BODY[]")
	l := bc.line()
	m := reBenchLiteral.FindSubmatch(l)
	if m == nil {
		bc.b.Fatalf("FETCH: %q", l)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if n != want {
		bc.b.Fatalf("literal of %d octets, want %d", n, want)
	}
	if bc.buf == nil {
		bc.buf = make([]byte, 64<<10)
	}
	for n > 0 {
		k, err := bc.r.Read(bc.buf[:min(n, int64(len(bc.buf)))])
		if err != nil {
			bc.b.Fatal(err)
		}
		n -= int64(k)
	}
	// BODY[] tells the flags and the UID after the body.
	if l := bc.line(); !bytes.HasSuffix(l, []byte(")\r\n")) {
		bc.b.Fatalf("after the literal: %q", l)
	}
	if l := bc.line(); !bytes.HasPrefix(l, []byte(tag+" OK")) {
		bc.b.Fatalf("FETCH: %s", fmt.Sprintf("%q", l))
	}
}
