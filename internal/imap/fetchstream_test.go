package imap_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/message"
	"github.com/cistern-mail/cistern/internal/store"
)

// streamMessage has a base64 part with a NUL, a quoted-printable part, a
// message/rfc822 part and a NUL in a text part, written with "\n"; the
// tests make the other line endings of it.
const streamMessage = "From: a@example.org\nSubject: parts\nContent-Type: multipart/mixed; boundary=b\n\npreamble\n" +
	"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\nAwQF\nBg==\n" +
	"--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nx=3D1 =\n  \ny\t \nz\n" +
	"--b\nContent-Type: message/rfc822\n\nFrom: c@example.org\nSubject: inner\n\ninner\rtext\n" +
	"--b\nContent-Type: text/plain\n\nnul\x00here\n--b--\nepilogue\n"

// streamItems are the FETCH items TestFetchStreamed asks, each with how
// its data is made from the converted message in memory (the code FETCH
// used before it streamed): the section, a partial, BINARY.
var streamItems = []streamItem{
	{item: "BODY.PEEK[]"},
	{item: "BODY.PEEK[]<0.1>", partial: [2]int{0, 1}},
	{item: "BODY.PEEK[]<35.2>", partial: [2]int{35, 2}}, // the CR LF ending Subject
	{item: "BODY.PEEK[]<36.3>", partial: [2]int{36, 3}}, // from the LF of a pair the conversion made
	{item: "BODY.PEEK[]<100000.5>", partial: [2]int{100000, 5}},
	{item: "BODY.PEEK[HEADER]", sec: message.Section{Specifier: "HEADER"}},
	{item: "BODY.PEEK[TEXT]", sec: message.Section{Specifier: "TEXT"}},
	{item: "BODY.PEEK[TEXT]<3.7>", sec: message.Section{Specifier: "TEXT"}, partial: [2]int{3, 7}},
	{item: "BODY.PEEK[HEADER.FIELDS (Subject)]", sec: message.Section{Specifier: "HEADER.FIELDS", Fields: []string{"Subject"}}},
	{item: "BODY.PEEK[HEADER.FIELDS.NOT (Subject)]", sec: message.Section{Specifier: "HEADER.FIELDS.NOT", Fields: []string{"Subject"}}},
	{item: "BODY.PEEK[1]", sec: message.Section{Path: []int{1}}},
	{item: "BODY.PEEK[1.MIME]", sec: message.Section{Path: []int{1}, Specifier: "MIME"}},
	{item: "BODY.PEEK[2]", sec: message.Section{Path: []int{2}}},
	{item: "BODY.PEEK[3.HEADER]", sec: message.Section{Path: []int{3}, Specifier: "HEADER"}},
	{item: "BODY.PEEK[3.TEXT]", sec: message.Section{Path: []int{3}, Specifier: "TEXT"}},
	{item: "BODY.PEEK[3.1]", sec: message.Section{Path: []int{3, 1}}},
	{item: "BODY.PEEK[4]", sec: message.Section{Path: []int{4}}},
	{item: "BODY.PEEK[9]", sec: message.Section{Path: []int{9}}},
	{item: "RFC822.HEADER", sec: message.Section{Specifier: "HEADER"}},
	{item: "BINARY.PEEK[]", binary: true},
	{item: "BINARY.PEEK[1]", sec: message.Section{Path: []int{1}}, binary: true},
	{item: "BINARY.PEEK[1]<2.3>", sec: message.Section{Path: []int{1}}, partial: [2]int{2, 3}, binary: true},
	{item: "BINARY.PEEK[2]", sec: message.Section{Path: []int{2}}, binary: true},
	{item: "BINARY.PEEK[4]", sec: message.Section{Path: []int{4}}, binary: true},
}

// want is the literal (with its "{n}\r\n" or "~{n}\r\n") and the ")"
// that ends a one-item response, made in memory as FETCH did before.
func (s streamItem) want(file []byte) string {
	m := message.Parse(message.ToCRLF(file))
	var data []byte
	lit8 := false
	if s.binary {
		data, _ = m.Binary(s.sec.Path)
		lit8 = bytes.IndexByte(data, 0) >= 0
	} else {
		data, _ = m.Section(s.sec)
	}
	if s.partial[1] > 0 {
		off := min(s.partial[0], len(data))
		data = data[off:min(off+s.partial[1], len(data))]
	}
	if !lit8 {
		data = bytes.ReplaceAll(data, []byte{0}, []byte{0x80})
		return fmt.Sprintf("{%d}%s)", len(data), data)
	}
	return fmt.Sprintf("~{%d}%s)", len(data), data)
}

type streamItem struct {
	item    string
	sec     message.Section
	partial [2]int // origin, count; count 0: none
	binary  bool
}

// TestFetchStreamed fetches every kind of section of the message in
// every line-ending variant, from a server without an index and from
// one with (first and second FETCH: the second reads the index), and
// compares each with the in-memory result, byte for byte.
func TestFetchStreamed(t *testing.T) {
	lf := []byte(streamMessage)
	files := map[string][]byte{
		"bare LF": lf,
		"CRLF":    bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")),
		"mixed":   bytes.ReplaceAll(lf, []byte("\n--b"), []byte("\r\n--b")),
		"lone CR": bytes.ReplaceAll(lf, []byte(" "), []byte("\r ")),
	}
	names := []string{"bare LF", "CRLF", "mixed", "lone CR"}
	for _, withIndex := range []bool{false, true} {
		t.Run(fmt.Sprintf("index %v", withIndex), func(t *testing.T) {
			root := t.TempDir()
			var so store.Options
			if withIndex {
				ix, err := store.OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ix.Close() })
				so.Index = ix
			}
			ts := startServerWith(t, root, so)
			rc := loginRaw(t, ts, "alice")
			for i, name := range names {
				p := filepath.Join(root, "alice", "Maildir", "cur", fmt.Sprintf("17000000%02d.M1P1.streamtest:2,S", i))
				if err := os.WriteFile(p, files[name], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rc.ok("SELECT INBOX")
			for pass := 0; pass < 2; pass++ {
				for i, name := range names {
					for _, it := range streamItems {
						lines := rc.ok("FETCH %d %s", i+1, it.item)
						want := it.want(files[name])
						if len(lines) != 1 || !strings.HasSuffix(lines[0], want) {
							t.Fatalf("pass %d, %s, %s: got %q, want it to end in %q", pass, name, it.item, lines, want)
						}
					}
				}
			}
		})
	}
}

// A message file rewritten in place by another program after its
// index entry was made (another size) is counted and parsed again: the
// literal has the new file's size and bytes, never the recorded ones.
func TestFetchFileChangedUnderneath(t *testing.T) {
	root := t.TempDir()
	ix, err := store.OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	ts := startServerWith(t, root, store.Options{Index: ix})
	rc := loginRaw(t, ts, "alice")
	p := filepath.Join(root, "alice", "Maildir", "cur", "1700000000.M1P1.changed:2,S")
	if err := os.WriteFile(p, []byte("Subject: one\n\nfirst body\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc.ok("SELECT INBOX")
	for _, item := range []string{"BODY.PEEK[]", "BODY.PEEK[TEXT]"} {
		rc.ok("FETCH 1 %s", item) // fills the index
	}
	now := []byte("Subject: one\n\nthe second body, longer\n")
	if err := os.WriteFile(p, now, 0o600); err != nil {
		t.Fatal(err)
	}
	crlf := string(message.ToCRLF(now))
	for item, want := range map[string]string{
		"BODY.PEEK[]":     fmt.Sprintf("{%d}%s)", len(crlf), crlf),
		"BODY.PEEK[TEXT]": "{25}the second body, longer\r\n)",
		"RFC822.SIZE":     fmt.Sprintf("RFC822.SIZE %d)", len(crlf)),
	} {
		lines := rc.ok("FETCH 1 %s", item)
		if len(lines) != 1 || !strings.HasSuffix(lines[0], want) {
			t.Errorf("FETCH %s after the change: %q, want it to end in %q", item, lines, want)
		}
	}
}
