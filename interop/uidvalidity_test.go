//go:build interop

package interop

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
)

// Dovecot and Cistern make, delete and rename mailboxes in one tree,
// within seconds, and both take UIDVALIDITY from the account's
// dovecot-uidvalidity: no value is handed out twice, whoever makes the
// mailbox, and a name made again never gets a value it had.
func TestUIDValidityShared(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	d.Start()
	c := d.Client()

	reg := store.NewRegistry(store.Options{}, nil)
	defer reg.Close()
	acct, err := store.OpenAccount(dir, reg)
	if err != nil {
		t.Fatal(err)
	}
	// Cistern works as root here; what it makes is handed to Dovecot's
	// user after each step, as if one user ran both servers.
	handOver := func() {
		t.Helper()
		if err := d.owner.ChownTree(dir); err != nil {
			t.Fatal(err)
		}
	}
	type taken struct{ who, name string }
	seen := map[uint32]taken{}
	var order []uint32
	record := func(who, name string, v uint32) {
		t.Helper()
		if v == 0 {
			t.Fatalf("%s %s: UIDVALIDITY 0", who, name)
		}
		if prev, ok := seen[v]; ok {
			t.Errorf("UIDVALIDITY %d handed out twice: %s %s, then %s %s", v, prev.who, prev.name, who, name)
		}
		seen[v] = taken{who, name}
		order = append(order, v)
		t.Logf("%-7s %-3s UIDVALIDITY %d", who, name, v)
	}
	dovecotMake := func(name string) {
		t.Helper()
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("Dovecot CREATE %s: %v", name, err)
		}
		record("Dovecot", name, SelectMailbox(t, c, name).UIDValidity)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	dovecotDelete := func(name string) {
		t.Helper()
		if err := c.Delete(name).Wait(); err != nil {
			t.Fatalf("Dovecot DELETE %s: %v", name, err)
		}
	}
	cisternValidity := func(name string) uint32 {
		t.Helper()
		mb, release, err := acct.OpenMailbox([]string{name})
		if err != nil {
			t.Fatalf("Cistern opening %s: %v", name, err)
		}
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := mb.Sync(ctx); err != nil {
			t.Fatalf("Cistern syncing %s: %v", name, err)
		}
		return mb.UIDValidity()
	}
	cisternMake := func(name string) {
		t.Helper()
		if err := acct.CreateFolder([]string{name}, ""); err != nil {
			t.Fatalf("Cistern CREATE %s: %v", name, err)
		}
		record("Cistern", name, cisternValidity(name))
		handOver()
	}
	cisternDelete := func(name string) {
		t.Helper()
		if err := acct.DeleteFolder([]string{name}); err != nil {
			t.Fatalf("Cistern DELETE %s: %v", name, err)
		}
	}

	record("Dovecot", "INBOX", SelectInbox(t, c).UIDValidity)
	for round := 0; round < 3; round++ {
		dovecotMake("x")
		cisternDelete("x")
		cisternMake("x")
		dovecotDelete("x")
		dovecotMake("x")
		if err := c.Delete("x").Wait(); err != nil {
			t.Fatal(err)
		}
		cisternMake("y")
		if err := c.Rename("y", "z", nil).Wait(); err != nil {
			t.Fatalf("Dovecot RENAME y z: %v", err)
		}
		cisternMake("y")
		// Dovecot sees the y Cistern made, with Cistern's UIDVALIDITY.
		if got := SelectMailbox(t, c, "y").UIDValidity; got != order[len(order)-1] {
			t.Errorf("Dovecot SELECT y: UIDVALIDITY %d, Cistern gave %d", got, order[len(order)-1])
		}
		// z keeps the UIDVALIDITY y had.
		if got := SelectMailbox(t, c, "z").UIDValidity; got != order[len(order)-2] {
			t.Errorf("Dovecot SELECT z: UIDVALIDITY %d, y had %d", got, order[len(order)-2])
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"y", "z"} {
			if err := c.Delete(n).Wait(); err != nil {
				t.Fatalf("Dovecot DELETE %s: %v", n, err)
			}
		}
	}
	// One counter: every value after the first is above the one before.
	for i := 2; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Errorf("UIDVALIDITY %d came after %d", order[i], order[i-1])
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, uidlist.UIDValidityFileName))
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.ParseUint(strings.TrimSpace(string(data)), 16, 32)
	if err != nil || uint32(last) != order[len(order)-1] {
		t.Errorf("dovecot-uidvalidity holds %q, the last value was %d", data, order[len(order)-1])
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}
