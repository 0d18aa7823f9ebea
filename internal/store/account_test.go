package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

func folderNames(fs []Folder) []string {
	var out []string
	for _, f := range fs {
		n := "INBOX"
		if len(f.Path) > 0 {
			n = filepath.Join(f.Path...)
		}
		if !f.Selectable {
			n += "(noselect)"
		}
		if f.SpecialUse != "" {
			n += f.SpecialUse
		}
		out = append(out, n)
	}
	return out
}

func TestAccountDefaultsAndFolders(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	a, err := OpenAccount(root, NewRegistry(Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := a.Folders()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"INBOX", `Archive\Archive`, `Drafts\Drafts`, `Junk\Junk`, `Sent\Sent`, `Trash\Trash`}
	if got := folderNames(fs); !slices.Equal(got, want) {
		t.Fatalf("folders %v, want %v", got, want)
	}
	subs, _ := a.Subscriptions()
	if len(subs) != 6 || subs[0] != "INBOX" {
		t.Fatalf("subscriptions %v", subs)
	}
	// Reopening changes nothing.
	if _, err := OpenAccount(root, nil); err != nil {
		t.Fatal(err)
	}

	if err := a.CreateFolder([]string{"Work", "2024"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"Lists"}, `\Flagged`); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"Lists"}, ""); !errors.Is(err, maildir.ErrFolderExists) {
		t.Fatalf("second create: %v", err)
	}
	fs, _ = a.Folders()
	got := folderNames(fs)
	for _, w := range []string{`Lists\Flagged`, "Work(noselect)", "Work/2024"} {
		if !slices.Contains(got, w) {
			t.Fatalf("folders %v lack %s", got, w)
		}
	}
	for _, f := range fs {
		if slices.Equal(f.Path, []string{"Work"}) && !f.HasChildren {
			t.Fatal("Work has children")
		}
	}
	if err := a.RenameFolder([]string{"Lists"}, []string{"Mailing"}); err != nil {
		t.Fatal(err)
	}
	fs, _ = a.Folders()
	if got := folderNames(fs); !slices.Contains(got, `Mailing\Flagged`) || slices.Contains(got, `Lists\Flagged`) {
		t.Fatalf("after rename %v", got)
	}
	if err := a.DeleteFolder([]string{"Mailing"}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteFolder(nil); err == nil {
		t.Fatal("INBOX deleted")
	}
	if err := a.SetSubscribed("Work.2024", true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSubscribed("Sent", false); err != nil {
		t.Fatal(err)
	}
	subs, _ = a.Subscriptions()
	if !slices.Contains(subs, "Work.2024") || slices.Contains(subs, "Sent") {
		t.Fatalf("subscriptions %v", subs)
	}
}

func TestAccountRenameInbox(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	a, err := OpenAccount(root, NewRegistry(Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "cur", "1.M1P1.h:2,S"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(root, "new", "1.M2P1.h"), []byte("y"), 0o600)
	if err := a.RenameFolder(nil, []string{"Old"}); err != nil {
		t.Fatal(err)
	}
	inbox, rel, err := a.OpenMailbox(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	old, rel2, err := a.OpenMailbox([]string{"Old"})
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	sync1(t, inbox)
	sync1(t, old)
	if len(inbox.Messages()) != 0 || len(old.Messages()) != 2 {
		t.Fatalf("INBOX %d, Old %d messages", len(inbox.Messages()), len(old.Messages()))
	}
	if _, _, err := a.OpenMailbox([]string{"Nope"}); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("missing folder: %v", err)
	}
}

func TestKeywordFlags(t *testing.T) {
	f := newFixture(t)
	mb := f.open(Options{})
	fl, missing, err := mb.KeywordFlags(ctx, []string{"$Forwarded", "Work"}, false)
	if err != nil || fl != 0 || len(missing) != 2 {
		t.Fatalf("without create: %v %v %v", fl, missing, err)
	}
	fl, missing, err = mb.KeywordFlags(ctx, []string{"$Forwarded", "Work"}, true)
	if err != nil || fl.String() != "ab" || len(missing) != 0 {
		t.Fatalf("with create: %q %v %v", fl, missing, err)
	}
	fl, _, _ = mb.KeywordFlags(ctx, []string{"work"}, false) // case-insensitive, as Dovecot
	if fl.String() != "b" {
		t.Fatalf("lookup: %q", fl)
	}
	k, err := mb.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := k.Name('a'); n != "$Forwarded" {
		t.Fatalf("letter a is %q", n)
	}
	var many []string
	for i := 0; i < 30; i++ {
		many = append(many, "k"+string(rune('A'+i)))
	}
	_, missing, err = mb.KeywordFlags(ctx, many, true)
	if err != nil || len(missing) != 6 {
		t.Fatalf("over 26: missing %d, %v", len(missing), err)
	}
}

// A new account appears whole: whoever sees its root as a Maildir also
// sees its default folders, even while several openers race to make it.
func TestOpenAccountAppearsWhole(t *testing.T) {
	for round := range 20 {
		root := filepath.Join(t.TempDir(), "home", "Maildir")
		stop := make(chan struct{})
		var partial atomic.Int64
		var watch sync.WaitGroup
		watch.Add(1)
		go func() {
			defer watch.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if maildir.IsMaildir(root) {
					if _, err := os.Stat(filepath.Join(root, SpecialUseFile)); err != nil {
						partial.Add(1)
					}
				}
			}
		}()
		var openers sync.WaitGroup
		for range 4 {
			openers.Add(1)
			go func() {
				defer openers.Done()
				if _, err := OpenAccount(root, nil); err != nil {
					t.Error(err)
				}
			}()
		}
		openers.Wait()
		close(stop)
		watch.Wait()
		if n := partial.Load(); n > 0 {
			t.Fatalf("round %d: the root was seen %d times without its folders", round, n)
		}
		ents, err := os.ReadDir(filepath.Dir(root))
		if err != nil || len(ents) != 1 || ents[0].Name() != "Maildir" {
			t.Fatalf("round %d: beside the root: %v %v", round, ents, err)
		}
		for _, f := range DefaultFolders {
			if !maildir.IsMaildir(filepath.Join(root, "."+f.Name)) {
				t.Fatalf("round %d: no %s", round, f.Name)
			}
		}
	}
}
