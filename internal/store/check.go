package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Check verifies every invariant of the state, and of the state against
// dovecot-uidlist as it is on disk now. It returns every violation found,
// joined; nil means all hold. The invariants:
//
//  1. UIDs are non-zero, strictly ascending, and below the next UID.
//  2. The base-name and file-name indexes hold exactly the messages, one
//     each.
//  3. Each message's file name has its base name, its flags are the
//     file name's, and it lives in new/ or cur/.
//  4. The suspect count is the number of messages marked suspect.
//  5. A mailbox with messages has a UIDVALIDITY.
//  6. dovecot-uidlist has the same UIDVALIDITY, strictly ascending UIDs,
//     no base name twice, a next UID above every UID of the state, and
//     gives every base name that it shares with the state the same UID.
//
// Other processes may change the files at any time, so Check says nothing
// of which files exist: CheckFiles does, for a mailbox known to be quiet.
//
// Takes: mu.
func (m *Mailbox) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("store: %s: "+format, append([]any{m.dir}, args...)...))
	}

	byBase := m.byBase
	if byBase == nil {
		// A warm start's state, not indexed yet (bases): every base name
		// must still be one message's.
		byBase = make(map[string]*entry, len(m.msgs))
		for _, e := range m.msgs {
			if _, dup := byBase[e.base()]; !dup {
				byBase[e.base()] = e
			}
		}
	}
	suspects := 0
	var prev uint32
	for i, e := range m.msgs {
		if e.uid == 0 || (i > 0 && e.uid <= prev) {
			bad("UID %d at position %d after %d: not strictly ascending", e.uid, i, prev)
		}
		prev = e.uid
		if e.uid >= m.nextUID {
			bad("UID %d is not below the next UID %d", e.uid, m.nextUID)
		}
		if byBase[e.base()] != e {
			bad("base name %q of UID %d is not indexed to it", e.base(), e.uid)
		}
		if e.sub != maildir.New && e.sub != maildir.Cur {
			bad("UID %d lives in %q", e.uid, e.sub)
		}
		n, err := maildir.ParseName(e.filename)
		switch {
		case err != nil:
			bad("UID %d: %v", e.uid, err)
		case n.Base != e.base():
			bad("UID %d: file %q has not the base name %q", e.uid, e.filename, e.base())
		case n.Flags != e.flags:
			bad("UID %d: flags %q, file name says %q", e.uid, e.flags, n.Flags)
		}
		if e.suspect {
			suspects++
		}
	}
	if len(byBase) != len(m.msgs) {
		bad("%d base names indexed for %d messages", len(byBase), len(m.msgs))
	}
	if suspects != m.suspects {
		bad("%d suspects marked, %d counted", suspects, m.suspects)
	}
	if len(m.msgs) > 0 && m.uidvalidity == 0 {
		bad("messages without a UIDVALIDITY")
	}

	path := filepath.Join(m.dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if len(m.msgs) > 0 {
			bad("%d messages have UIDs but there is no %s", len(m.msgs), uidlist.FileName)
		}
	case err != nil:
		bad("%v", err)
	default:
		f, _, err := uidlist.Parse(path, data)
		if err != nil {
			bad("%v", err)
			break
		}
		if m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
			bad("UIDVALIDITY %d, %s says %d", m.uidvalidity, uidlist.FileName, f.Header.UIDValidity)
		}
		next := f.Header.NextUID
		seen := make(map[string]uint32, len(f.Records))
		var prev uint32
		for _, r := range f.Records {
			if r.UID <= prev {
				bad("%s: UID %d after %d", uidlist.FileName, r.UID, prev)
			}
			prev = r.UID
			next = max(next, r.UID+1)
			b := r.Base()
			if u, dup := seen[b]; dup {
				bad("%s: base name %q has UIDs %d and %d", uidlist.FileName, b, u, r.UID)
			}
			seen[b] = r.UID
			if e, ok := byBase[b]; ok && e.uid != r.UID && f.Header.UIDValidity == m.uidvalidity {
				bad("base name %q: UID %d in the state, %d in %s", b, e.uid, r.UID, uidlist.FileName)
			}
		}
		if len(m.msgs) > 0 && next <= m.msgs[len(m.msgs)-1].uid {
			bad("%s: next UID %d is not above UID %d", uidlist.FileName, next, m.msgs[len(m.msgs)-1].uid)
		}
	}
	return errors.Join(errs...)
}

// CheckFiles verifies that the state is the Maildir: every message that
// is not a suspect has its file, and every message file has a message. It
// is only meaningful when nothing changes the Maildir meanwhile.
//
// Takes: mu.
func (m *Mailbox) CheckFiles() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	files := make(map[string]string) // base -> sub/name
	for _, sub := range []string{maildir.New, maildir.Cur} {
		names, err := readNames(filepath.Join(m.dir, sub))
		if err != nil {
			return err
		}
		for _, name := range names {
			if name == "" || name[0] == '.' {
				continue
			}
			b := maildir.BaseName(name)
			if other, dup := files[b]; dup {
				errs = append(errs, fmt.Errorf("store: %s: base name %q is both %s and %s/%s", m.dir, b, other, sub, name))
			}
			files[b] = sub + "/" + name
		}
	}
	for _, e := range m.msgs {
		f, ok := files[e.base()]
		switch {
		case !ok && !e.suspect:
			errs = append(errs, fmt.Errorf("store: %s: UID %d (%s) has no file", m.dir, e.uid, e.base()))
		case ok && f != e.sub+"/"+e.filename:
			errs = append(errs, fmt.Errorf("store: %s: UID %d is %s/%s, the file is %s", m.dir, e.uid, e.sub, e.filename, f))
		}
		delete(files, e.base())
	}
	for b, f := range files {
		errs = append(errs, fmt.Errorf("store: %s: file %s (base %q) has no UID", m.dir, f, b))
	}
	return errors.Join(errs...)
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
