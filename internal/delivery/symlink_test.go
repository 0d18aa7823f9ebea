package delivery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// TestDeliverIntoLinkFolder: a folder that is a symbolic link to another
// user's Maildir is no folder: a delivery to it goes to INBOX, as for a
// folder that does not exist, with or without the option to create the
// folder, and is logged; the other user's Maildir gets nothing.
func TestDeliverIntoLinkFolder(t *testing.T) {
	f := newFixture(t, "alice", "bob")
	for _, u := range []string{"alice", "bob"} {
		if _, err := store.OpenAccount(f.root(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(f.root("bob"), filepath.Join(f.root("alice"), ".evil")); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		r := f.resolve(t, "alice")[0]
		r.Folder, r.CreateFolder = []string{"evil"}, create
		res := f.d.Deliver(Envelope{}, []*Recipient{r}, strings.NewReader("x\n"))
		if res[0].Err != nil || res[0].Folder != "INBOX" {
			t.Errorf("create=%t: result %+v, want INBOX", create, res[0])
		}
		if err := os.Remove(only(t, f.root("alice"))); err != nil {
			t.Fatal(err)
		}
		empty(t, f.root("bob"))
	}
	if !strings.Contains(f.log.String(), "symbolic link") {
		t.Errorf("the link folder was not logged: %s", f.log)
	}
	if !maildir.IsLink(filepath.Join(f.root("alice"), ".evil")) {
		t.Error("the link was replaced")
	}
}
