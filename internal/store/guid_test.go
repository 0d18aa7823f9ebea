package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func guidOf(t *testing.T, mb *Mailbox) string {
	t.Helper()
	g, err := mb.GUID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !guidRE.MatchString(g) {
		t.Fatalf("GUID %q is not 32 lowercase hex digits", g)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	return g
}

func headerGUID(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := uidlist.Parse("x", data)
	if err != nil {
		t.Fatal(err)
	}
	return f.Header.GUID
}

// A uidlist that has a GUID (Dovecot's) keeps it: GUID returns it and
// the file is not touched.
func TestGUIDFromDovecotUIDList(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	list := fmt.Sprintf("3 V1234567 N40 G0123456789abcdef0123456789abcdef\n7 :%s:2,S\n", a)
	path := filepath.Join(f.dir, uidlist.FileName)
	if err := os.WriteFile(path, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	defer mb.Close()
	if g := guidOf(t, mb); g != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("GUID %s, want the uidlist's", g)
	}
	sync1(t, mb)
	if g := guidOf(t, mb); g != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("after a sync: GUID %s, want the uidlist's", g)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), list) {
		t.Fatalf("uidlist rewritten:\n%s", data)
	}
}

// A uidlist without a GUID (Dovecot v1, a Courier import) is given one
// once, durably: the file holds it, every later call and every other
// Mailbox on the directory return it, and the records stay.
func TestGUIDGivenOnce(t *testing.T) {
	f := newFixture(t)
	a, b := f.put(maildir.Cur, "S"), f.put(maildir.New, "")
	list := fmt.Sprintf("1 1234567 40\n7 %s:2,S\n9 %s\n", a, b)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	defer mb.Close()
	if headerGUID(t, f.dir) != "" {
		t.Fatal("fixture has a GUID")
	}
	g := guidOf(t, mb)
	if on := headerGUID(t, f.dir); on != g {
		t.Fatalf("uidlist holds GUID %q, GUID returned %q", on, g)
	}
	if again := guidOf(t, mb); again != g {
		t.Fatalf("second call: %s, first %s", again, g)
	}
	sync1(t, mb)
	if again := guidOf(t, mb); again != g {
		t.Fatalf("after a sync: %s, first %s", again, g)
	}
	other := f.open(Options{})
	defer other.Close()
	if og := guidOf(t, other); og != g {
		t.Fatalf("another Mailbox: %s, first %s", og, g)
	}
	ch := sync1(t, other)
	got := map[string]uint32{}
	for _, m := range ch.New {
		got[m.Base] = m.UID
	}
	if got[a] != 7 || got[b] != 9 || other.UIDValidity() != 1234567 {
		t.Fatalf("records lost: %v, UIDVALIDITY %d", got, other.UIDValidity())
	}
}

// A new mailbox gets its GUID with its first uidlist; two mailboxes
// have two.
func TestGUIDOfNewMailbox(t *testing.T) {
	f1, f2 := newFixture(t), newFixture(t)
	mb1, mb2 := f1.open(Options{}), f2.open(Options{})
	defer mb1.Close()
	defer mb2.Close()
	g1, g2 := guidOf(t, mb1), guidOf(t, mb2)
	if g1 == g2 {
		t.Fatalf("two mailboxes share GUID %s", g1)
	}
	if on := headerGUID(t, f1.dir); on != g1 {
		t.Fatalf("uidlist holds %q, GUID returned %q", on, g1)
	}
}

// A uidlist that vanishes is rebuilt from the state with the GUID it
// had: the mailbox is the same one.
func TestGUIDKeptWhenUIDListVanishes(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	g := guidOf(t, mb)
	if err := os.Remove(filepath.Join(f.dir, uidlist.FileName)); err != nil {
		t.Fatal(err)
	}
	f.put(maildir.New, "")
	sync1(t, mb)
	if on := headerGUID(t, f.dir); on != g {
		t.Fatalf("rebuilt uidlist has GUID %q, want %q", on, g)
	}
	if again := guidOf(t, mb); again != g {
		t.Fatalf("GUID %s after the rebuild, want %s", again, g)
	}
}
