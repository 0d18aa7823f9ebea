package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
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

// FuzzLoad checks that Load never panics, that what it accepts
// validates, and that every error names the file and either the line or
// key the toml package stopped at (TOML syntax and types) or the keys at
// fault: unknown keys as written, bad values by a key of the example
// file, which shows every key.
func FuzzLoad(f *testing.F) {
	data, err := os.ReadFile("testdata/cistern.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{}
	var example map[string]any
	if _, err := toml.Decode(string(data), &example); err != nil {
		f.Fatal(err)
	}
	for k, v := range example {
		known[k] = true
		if table, ok := v.(map[string]any); ok {
			for sub := range table {
				known[k+"."+sub] = true
			}
		}
	}
	f.Add(string(data))
	for _, s := range []string{
		"[imap]\nidle_timeout = 3600\nfoo = 1",
		"[imap]\nidle_timeout = \"1s\"\nmax_literal = -1\n[lmtp]\nrecipient_delimiter = \"\"\nsocket_mode = \"999\"",
		"[quota]\nstorage = \"10Q\"\nmessages = \"x\"",
		"mail_location = \"relative/%u\"\n[log]\nlevel = \"loud\"\nformat = \"xml\"",
		"[tls]\ncert = \"/c.pem\"",
		"[throttle]\ndelay = 5\nexempt_networks = [\"10.0.0.0/33\", \"::1\"]",
		"a.b.c = 1\n[a]",
		"[imap]\nlisten = 5",
		"x = ",
		"\"quoted key\" = 1\n[\"imap\"]\n'max_line' = 0",
		"[imap]\nlisten = [\"127.0.0.1:143\"]\n[imap]\nlisten = []",
	} {
		f.Add(s)
	}
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
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, path) {
			t.Fatalf("error does not name the file: %v", err)
		}
		var errs Errors
		if !errors.As(err, &errs) {
			if !lineRE.MatchString(msg) {
				t.Fatalf("error names neither a line nor a key: %v", err)
			}
			return
		}
		if len(errs) == 0 {
			t.Fatalf("empty Errors: %v", err)
		}
		for _, ke := range errs {
			if ke.Key == "" || ke.Problem == "" {
				t.Fatalf("error without a key or a problem: %#v in %v", ke, err)
			}
			unknown := strings.HasPrefix(ke.Problem, "unknown key")
			if !unknown && !known[ke.Key] {
				t.Fatalf("%q is not a key of the example file: %v", ke.Key, err)
			}
			if unknown && known[ke.Key] {
				t.Fatalf("known key %q reported unknown: %v", ke.Key, err)
			}
		}
	})
}

// lineRE matches where the toml package's errors say what is wrong:
// the line, or the last key read. toml v1.6.0 says "line 0" for a
// string that ends inside an escape at the end of the file (`"\`), and
// names no line for a table given to a key that takes a value.
var lineRE = regexp.MustCompile(`\bline [0-9]+\b|\(last key "[^"]+"\)`)
