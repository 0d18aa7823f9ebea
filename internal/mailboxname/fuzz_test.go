package mailboxname

import (
	"testing"
	"unicode/utf8"
)

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "~peter/mail/台北/日本語", "&", "A&B", "😀x", "\x00", "\xff",
		"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "&-", "&AGE-", "&2D3eAA-", "&U,BTFw-&ZeVnLIqe-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeMUTF7(s)
		for i := 0; i < len(enc); i++ {
			if !printable(rune(enc[i])) {
				t.Fatalf("EncodeMUTF7(%q) = %q: not printable ASCII", s, enc)
			}
		}
		if utf8.ValidString(s) {
			if dec, err := DecodeMUTF7(enc); err != nil || dec != s {
				t.Fatalf("DecodeMUTF7(EncodeMUTF7(%q)) = %q, %v (via %q)", s, dec, err, enc)
			}
		}
		// Only canonical encodings decode.
		if dec, err := DecodeMUTF7(s); err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("DecodeMUTF7(%q) = invalid UTF-8 %q", s, dec)
			}
			if re := EncodeMUTF7(dec); re != s {
				t.Fatalf("DecodeMUTF7(%q) = %q, which encodes as %q", s, dec, re)
			}
		}
	})
}
