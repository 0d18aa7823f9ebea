package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzMailDir checks that no user name or home leads outside the tree
// the template names.
func FuzzMailDir(f *testing.F) {
	f.Add("alice@example.org", "/home/alice")
	f.Add("../x", "/home/../etc")
	f.Add("a@..", "/")
	f.Fuzz(func(t *testing.T, name, home string) {
		for _, tt := range []struct{ tmpl, under string }{
			{"/var/mail/%u/Maildir", "/var/mail/"},
			{"/var/vmail/%d/%n", "/var/vmail/"},
			{"%h/Maildir", "/"},
		} {
			c := &Config{MailLocation: tt.tmpl}
			dir, err := c.MailDir(name, home)
			if err != nil {
				continue
			}
			if dir != filepath.Clean(dir) || !strings.HasPrefix(dir, tt.under) || strings.Contains(dir, "/../") {
				t.Fatalf("MailDir(%q, %q) with %s = %q", name, home, tt.tmpl, dir)
			}
			if tt.under != "/" && strings.Count(dir, "/") != strings.Count(tt.tmpl, "/") {
				t.Fatalf("MailDir(%q) with %s = %q: the name made a directory level", name, tt.tmpl, dir)
			}
		}
	})
}

// FuzzLoad checks that Load never panics and that what it accepts
// validates.
func FuzzLoad(f *testing.F) {
	data, err := os.ReadFile("testdata/cistern.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("[imap]\nidle_timeout = 3600\nfoo = 1")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Load accepted what Validate refuses: %v", verr)
			}
		}
	})
}
