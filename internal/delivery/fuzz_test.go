package delivery

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cistern-mail/cistern/maildir"
)

// FuzzFolderPath checks that no address detail names a directory other
// than a Maildir++ folder directly under the root.
func FuzzFolderPath(f *testing.F) {
	for _, s := range []string{"Lists", "a.b", "../x", "a/../../b", ".", "..", "INBOX", "&", "a\x00b", "Caf\xc3\xa9", "\xff"} {
		f.Add(s)
	}
	const root = "/var/mail/bob/Maildir"
	f.Fuzz(func(t *testing.T, name string) {
		p, err := FolderPath(name)
		if err != nil {
			if !errors.Is(err, maildir.ErrBadFolderName) {
				t.Fatalf("FolderPath(%q): %v, want ErrBadFolderName", name, err)
			}
			return
		}
		dir, err := maildir.FolderDir(root, p)
		if err != nil {
			t.Fatalf("FolderPath(%q) = %q, which FolderDir refuses: %v", name, p, err)
		}
		if dir == root {
			if len(p) != 0 {
				t.Fatalf("FolderPath(%q) = %q is the root", name, p)
			}
			return
		}
		if filepath.Dir(dir) != root || !strings.HasPrefix(filepath.Base(dir), ".") || filepath.Base(dir) == ".." {
			t.Fatalf("FolderPath(%q) = %q: directory %s is not a folder of %s", name, p, dir, root)
		}
	})
}

// FuzzNormalizer checks the CRLF conversion against a plain rewrite, for
// any input and any read sizes.
func FuzzNormalizer(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\rd\n"), false)
	f.Add([]byte("\r"), true)
	f.Add([]byte("x\x00y"), false)
	f.Fuzz(func(t *testing.T, in []byte, oneByte bool) {
		var r io.Reader = bytes.NewReader(in)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		got, err := io.ReadAll(newNormalizer(r, 0))
		switch {
		case len(in) == 0:
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("empty input: %v", err)
			}
		case bytes.IndexByte(in, 0) >= 0:
			if !errors.Is(err, ErrNUL) {
				t.Fatalf("input with NUL: %v", err)
			}
		default:
			want := bytes.ReplaceAll(bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("normalize(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
}
