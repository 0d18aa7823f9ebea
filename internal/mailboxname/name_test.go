package mailboxname

import (
	"errors"
	"slices"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

func TestFolder(t *testing.T) {
	tests := []struct {
		name string
		want []string
		err  error
	}{
		{"INBOX", nil, nil},
		{"inbox", nil, nil},
		{"Lists", []string{"Lists"}, nil},
		{"a.b.c", []string{"a", "b", "c"}, nil},
		{"&", []string{"&-"}, nil},
		{"Café.Été", []string{"Caf&AOk-", "&AMk-t&AOk-"}, nil},
		{"a..b", nil, maildir.ErrBadFolderName},
		{".a", nil, maildir.ErrBadFolderName},
		{"a/b", nil, maildir.ErrBadFolderName},
		{"..", nil, maildir.ErrBadFolderName},
		{"", nil, maildir.ErrBadFolderName},
		{"a\x00b", nil, ErrControl},
		{"a\r\nb", nil, ErrControl},
		{"x\u0085", nil, ErrControl},
		{"x\u007f", nil, ErrControl},
	}
	for _, tt := range tests {
		got, err := Folder(tt.name)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Folder(%q) = %q, %v; want %v", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Folder(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if len(got) > 0 {
			if back := Name(got); back != tt.name {
				t.Errorf("Name(Folder(%q)) = %q", tt.name, back)
			}
		}
	}
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		p    []string
		want string
	}{
		{nil, "INBOX"},
		{[]string{"Caf&AOk-"}, "Café"},
		{[]string{"a", "&-"}, "a.&"},
		// Not modified UTF-7 (another program's name): shown as it is.
		{[]string{"&Jjo", "b"}, "&Jjo.b"},
	} {
		if got := Name(tt.p); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
