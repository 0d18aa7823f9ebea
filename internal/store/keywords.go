package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Keywords returns the mailbox's keyword names by flag letter (a–z). It
// answers from memory; the file is read again when a sync saw it change
// (or this process changed it), so a FETCH of 100,000 messages reads it
// once.
//
// Takes: kwMu.
func (m *Mailbox) Keywords() (*uidlist.Keywords, error) {
	m.kwMu.Lock()
	defer m.kwMu.Unlock()
	if m.kw != nil {
		return m.kw, nil
	}
	return m.loadKeywords()
}

// loadKeywords reads dovecot-keywords into the cache.
//
// Held: kwMu.
func (m *Mailbox) loadKeywords() (*uidlist.Keywords, error) {
	k, problems, err := uidlist.ReadKeywords(m.dir)
	for _, p := range problems {
		m.log.Warn("dovecot-keywords damage", "problem", p.String())
	}
	if err != nil {
		return nil, err
	}
	m.kw, m.kwStamp = k, keywordsStamp(m.dir)
	return k, nil
}

// keywordsStamp identifies the version of dovecot-keywords: it is
// replaced by rename, and its mtime grows by whole seconds (uidlist).
func keywordsStamp(dir string) fileID {
	fi, err := os.Stat(filepath.Join(dir, uidlist.KeywordsFileName))
	if err != nil {
		return fileID{}
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return fileID{}
	}
	return fileID{ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: st.Ctim.Nano()}
}

// fileID is a file's version: its inode, size, mtime and ctime (which
// no program can set back, as one may an mtime).
type fileID struct {
	ino                uint64
	size, mtime, ctime int64
}

// refreshKeywords drops the cached names when the file changed; called
// by every sync.
//
// Held: any but kwMu; takes kwMu.
func (m *Mailbox) refreshKeywords() {
	m.kwMu.Lock()
	defer m.kwMu.Unlock()
	if m.kw != nil && keywordsStamp(m.dir) != m.kwStamp {
		m.kw = nil
	}
}

// KeywordFlags maps keyword names to flag letters, adding names not yet
// in dovecot-keywords when create is set (under the mailbox lock, waited
// for as a change waits: ErrLocked). Names that cannot be had (26 in
// use, or !create) are returned in missing; then no name was added
// (all or nothing: the STORE or APPEND that asked is refused, and a
// refusal changes nothing, not even the mailbox's keyword letters).
//
// Takes: kwMu, and the dotlock when create adds names.
func (m *Mailbox) KeywordFlags(ctx context.Context, names []string, create bool) (f maildir.Flags, missing []string, err error) {
	f, absent, err := m.knownKeywordFlags(names)
	if err != nil || len(absent) == 0 || !create {
		return f, absent, err
	}
	lock, err := uidlist.AcquireLock(ctx, m.dir, m.opts.Lock)
	if err != nil {
		return 0, nil, lockError(m.dir, err)
	}
	defer lock.Release()
	if missing, err := m.keywordRoomHeld(names); err != nil || len(missing) > 0 {
		return 0, missing, err
	}
	return m.keywordFlagsHeld(lock, names)
}

// keywordRoomHeld returns the names that dovecot-keywords, read again,
// has no letter for and no room to add beside the others: all of them
// can be added when it returns none. The mailbox lock is held, so that
// no writer changes the file before keywordFlagsHeld adds them.
//
// Held: dotlock; takes kwMu.
func (m *Mailbox) keywordRoomHeld(names []string) (missing []string, err error) {
	m.kwMu.Lock()
	defer m.kwMu.Unlock()
	k, err := m.loadKeywords()
	if err != nil {
		return nil, lockError(m.dir, err)
	}
	trial := *k
	for _, n := range names {
		if _, err := trial.Add(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// knownKeywordFlags maps the names that the cached dovecot-keywords
// holds, and returns the others in absent.
//
// Held: any but kwMu; takes kwMu.
func (m *Mailbox) knownKeywordFlags(names []string) (f maildir.Flags, absent []string, err error) {
	k, err := m.Keywords()
	if err != nil {
		return 0, nil, err
	}
	for _, n := range names {
		if c, ok := k.Letter(n); ok {
			f = f.With(c)
		} else {
			absent = append(absent, n)
		}
	}
	return f, absent, nil
}

// keywordFlagsHeld is KeywordFlags with create, under lock, the held
// mailbox lock of m: dovecot-keywords is read again, and the names it
// lacks are added.
//
// Held: dotlock; takes kwMu.
func (m *Mailbox) keywordFlagsHeld(lock *uidlist.Lock, names []string) (f maildir.Flags, missing []string, err error) {
	m.kwMu.Lock()
	defer m.kwMu.Unlock()
	cached, err := m.loadKeywords() // reread under the lock
	if err != nil {
		return 0, nil, lockError(m.dir, err)
	}
	// Names are added to a copy: the cache holds what the file holds,
	// and readers may hold the cached value.
	k := new(uidlist.Keywords)
	*k = *cached
	added := false
	for _, n := range names {
		c, ok := k.Letter(n)
		if !ok {
			if c, err = k.Add(n); err != nil {
				missing = append(missing, n)
				continue
			}
			added = true
		}
		f = f.With(c)
	}
	if added {
		if err := uidlist.WriteKeywords(lock, m.dir, k); err != nil {
			m.kw = nil
			return 0, nil, err
		}
		m.kw, m.kwStamp = k, keywordsStamp(m.dir)
	}
	return f, missing, nil
}
