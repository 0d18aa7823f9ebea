package message

import (
	"strings"
	"testing"
)

func TestThreadRoot(t *testing.T) {
	long := "<" + strings.Repeat("a", MaxThreadRootBytes) + "@x>"
	tests := []struct {
		name, header, want string
	}{
		{"references first id", "References: <root@x> <mid@x>\r\nIn-Reply-To: <mid@x>\r\nMessage-ID: <me@x>\r\n", "<root@x>"},
		{"references folded", "References:\r\n <root@\r\n x>\r\n <mid@x>\r\nMessage-ID: <me@x>\r\n", "<root@x>"},
		{"in-reply-to without references", "In-Reply-To: \"a\" <parent@x>\r\nMessage-ID: <me@x>\r\n", "<parent@x>"},
		{"own message-id", "Message-ID: <me@x>\r\nSubject: hi\r\n", "<me@x>"},
		{"lower-case names", "message-id: <me@x>\r\nreferences: <root@x>\r\n", "<root@x>"},
		{"first field of a name counts", "Message-ID: <me@x>\r\nMessage-ID: <other@x>\r\n", "<me@x>"},
		{"references without an id", "References: junk\r\nMessage-ID: <me@x>\r\n", "<me@x>"},
		{"empty brackets", "References: <>\r\nMessage-ID: <me@x>\r\n", "<me@x>"},
		{"too long an id", "References: " + long + "\r\nMessage-ID: <me@x>\r\n", "<me@x>"},
		{"none", "Subject: hi\r\n", ""},
		{"in the body only", "Subject: hi\r\n\r\nMessage-ID: <body@x>\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse([]byte(tt.header + "\r\nbody\r\n"))
			st := m.Structure()
			if st.ThreadRoot != tt.want {
				t.Fatalf("ThreadRoot %q, want %q", st.ThreadRoot, tt.want)
			}
			back, err := UnmarshalStructure(st.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if back.ThreadRoot != tt.want {
				t.Fatalf("after a round trip: %q, want %q", back.ThreadRoot, tt.want)
			}
		})
	}
}

// A cached structure from before the thread root (version 3) is not
// read: the caller parses the message again and learns the root.
func TestThreadRootNeedsNewVersion(t *testing.T) {
	if StructureVersion < 4 {
		t.Fatalf("StructureVersion %d: the thread root came with 4", StructureVersion)
	}
	data := Parse([]byte("Message-ID: <me@x>\r\n\r\nbody\r\n")).Structure().Marshal()
	data[0] = 3
	if _, err := UnmarshalStructure(data); err == nil {
		t.Fatal("a version 3 structure was accepted")
	}
}
