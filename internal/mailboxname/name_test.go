package mailboxname

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
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

func TestList(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{".Sent", ".Entw&APw-rfe", ".Archive.2024", ".bad..name", "notafolder"} {
		for _, sub := range []string{"tmp", "new", "cur"} {
			if err := os.MkdirAll(filepath.Join(root, d, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	var skipped []string
	mbs, err := List(root, func(name string, why error) { skipped = append(skipped, name) })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for i, mb := range mbs {
		if i == 0 && (mb.Name != "INBOX" || mb.Dir != root || mb.Folder != nil) {
			t.Errorf("first mailbox %+v, want INBOX at the root", mb)
		}
		got[mb.Name] = mb.Dir
		if name, ok := OfDir(root, mb.Dir); !ok || name != mb.Name {
			t.Errorf("OfDir(%s) = %q, %v; want %q", mb.Dir, name, ok, mb.Name)
		}
	}
	want := map[string]string{
		"INBOX":        root,
		"Sent":         filepath.Join(root, ".Sent"),
		"Entwürfe":     filepath.Join(root, ".Entw&APw-rfe"),
		"Archive.2024": filepath.Join(root, ".Archive.2024"),
	}
	if !maps.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if !slices.Equal(skipped, []string{".bad..name"}) {
		t.Errorf("skipped %v, want the bad folder name", skipped)
	}
	for _, dir := range []string{filepath.Join(root, "notafolder"), filepath.Join(root, ".Sent", "cur"), "/elsewhere/.Sent"} {
		if name, ok := OfDir(root, dir); ok {
			t.Errorf("OfDir(%s) = %q, want none", dir, name)
		}
	}
}
