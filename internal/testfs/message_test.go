package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMessageID(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // "" for an error
	}{
		{"present", "From: a@b\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n", "<1@x>"},
		{"any case, LF", "message-id: <2@x>\nSubject: s\n\nbody\n", "<2@x>"},
		{"only in the body", "Subject: s\r\n\r\nMessage-ID: <3@x>\r\n", ""},
		{"no header", "", ""},
		{"malformed header", "no colon here\r\n\r\n", ""},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := MessageID(path)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("MessageID = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("MessageID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := MessageID(filepath.Join(dir, "missing")); err == nil {
		t.Error("MessageID of a missing file: no error")
	}
}
