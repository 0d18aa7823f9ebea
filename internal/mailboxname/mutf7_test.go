package mailboxname

import "testing"

func TestMUTF7(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 §5.1.3
		{"&", "&-"},
		{"A&B", "A&-B"},
		{"☺!", "&Jjo-!"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"},
		{"😀", "&2D3eAA-"}, // surrogate pair
		{"a\x00b", "a&AAA-b"},
		{"tab\there", "tab&AAk-here"},
		{"\x7f", "&AH8-"},
	}
	for _, tt := range tests {
		if got := EncodeMUTF7(tt.utf8); got != tt.mutf7 {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tt.utf8, got, tt.mutf7)
		}
		if got, err := DecodeMUTF7(tt.mutf7); err != nil || got != tt.utf8 {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", tt.mutf7, got, err, tt.utf8)
		}
	}
	if got := EncodeMUTF7("a\xffb"); got != "a&,,0-b" {
		t.Errorf("invalid UTF-8 encodes as %q, want U+FFFD", got)
	}
}

func TestDecodeMUTF7Invalid(t *testing.T) {
	for _, s := range []string{
		"&",                  // no "-"
		"&U,BTFw",            // no "-"
		"a&b",                // no "-"
		"&AGE-",              // encodes printable "a"
		"&ACY-",              // encodes "&"
		"&U,BTFw-&ZeVnLIqe-", // adjacent runs
		"&U,BTFx-",           // nonzero padding bits
		"&U,BTFwA-",          // an extra sextet
		"&2D0-",              // lone high surrogate
		"&3gA-",              // lone low surrogate
		"&2D3YPQ-",           // high surrogate followed by high surrogate
		"&U/BTFw-",           // "/" is not modified BASE64
		"&U=BTFw-",           // padding
		"Grüße",              // 8-bit
		"a\tb",               // control character
		"a\x7fb",
	} {
		if got, err := DecodeMUTF7(s); err == nil {
			t.Errorf("DecodeMUTF7(%q) = %q, want error", s, got)
		}
	}
}
