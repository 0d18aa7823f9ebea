package delivery

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// FuzzResolve checks Resolve on any RCPT TO address against the package
// doc's table: a malformed address is BadAddress, an address no
// candidate matches is UnknownUser, and a resolved one names the first
// user among the candidates, with that candidate's detail, the folder
// FolderPath gives for it, and header lines that stay two lines.
func FuzzResolve(f *testing.F) {
	for _, a := range []string{"bob", "bob@example.org", "bob+Lists@example.org", "bob+Lists.Go@example.org", "bob+R&D",
		"bob+Café", "bob+inbox", "bob+a/b", "bob+..", "bob+", "+bob", "carol+Box@example.org", "carol@elsewhere.example",
		"dave+x@example.org", "dave+x+y@example.org", "ünï@example.org", "bob@", "@example.org", "a@b@example.org",
		"bob\r\nX-Evil: 1@example.org", "bob\x00", "Bob@example.org", ""} {
		f.Add(a, byte(0))
	}
	f.Add("bob-x@example.org", byte(2))
	f.Add("bob.x.y", byte(3))
	delimiters := []string{"", "+", "-+", ".", "@"}
	users := &fakeUsers{users: map[string]User{}}
	for _, n := range []string{"bob", "carol@example.org", "carol", "dave+x", "ünï", "bob-x"} {
		users.users[n] = User{Name: n, Root: "/var/mail/" + n + "/Maildir"}
	}
	f.Fuzz(func(t *testing.T, addr string, delimiter byte) {
		d := &Deliverer{Users: users, Delimiter: delimiters[int(delimiter)%len(delimiters)], Logger: slog.New(slog.DiscardHandler), SaveToDetailMailbox: true}
		r, err := d.Resolve("fuzz", addr)
		bad := addr == "" || ValidAddress(addr) != nil
		if err != nil {
			switch k := KindOf(err); {
			case k == BadAddress && bad:
			case k == UnknownUser && !bad:
				for _, c := range docCandidates(addr, d.Delimiter) {
					if _, known := users.users[c.name]; known {
						t.Fatalf("Resolve(%q): %v, but candidate %q is a user", addr, err, c.name)
					}
				}
			default:
				t.Fatalf("Resolve(%q): %v (kind %v)", addr, err, k)
			}
			return
		}
		if bad {
			t.Fatalf("Resolve(%q) accepted a malformed address", addr)
		}
		var want candidate
		for _, c := range docCandidates(addr, d.Delimiter) {
			if _, known := users.users[c.name]; known {
				want = c
				break
			}
		}
		if r.Address != addr || r.User.Name != want.name || r.Detail != want.detail {
			t.Fatalf("Resolve(%q) = address %q user %q detail %q; want user %q detail %q",
				addr, r.Address, r.User.Name, r.Detail, want.name, want.detail)
		}
		var folder []string
		if r.Detail != "" {
			folder, _ = FolderPath(r.Detail)
		}
		if !slices.Equal(r.Folder, folder) || (r.Folder == nil) != (folder == nil) {
			t.Fatalf("Resolve(%q): folder %q, want %q", addr, r.Folder, folder)
		}
		h := header(addr, []*Recipient{r})
		if bytes.Count(h, []byte("\n")) != 2 || bytes.Count(h, []byte("\r")) != 2 || !bytes.HasSuffix(h, []byte("\r\n")) {
			t.Fatalf("header lines for %q: %q", addr, h)
		}
	})
}

// docCandidates lists the names the package doc says an address is tried
// as, in order, with the detail that goes with each.
func docCandidates(addr, delim string) []candidate {
	if delim == "" {
		delim = DefaultDelimiter
	}
	local, domain, hasDomain := addr, "", false
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		local, domain, hasDomain = addr[:i], addr[i+1:], true
	}
	out := []candidate{{addr, ""}}
	i := strings.IndexAny(local, delim)
	if i > 0 && hasDomain {
		out = append(out, candidate{local[:i] + "@" + domain, local[i+1:]})
	}
	if hasDomain {
		out = append(out, candidate{local, ""})
	}
	if i > 0 {
		out = append(out, candidate{local[:i], local[i+1:]})
	}
	return out
}
