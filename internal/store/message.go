package store

import (
	"context"
	"errors"
	"os"

	"github.com/cistern-mail/cistern/maildir"
)

// lookupFresh syncs and returns the message with uid where it is now.
//
// Held: none; takes wmu and mu (a sync).
func (m *Mailbox) lookupFresh(ctx context.Context, uid uint32) (Message, bool) {
	m.lockWriter()
	defer m.unlockWriter()
	if _, err := m.syncPublishLocked(ctx); err != nil {
		return Message{}, false
	}
	e := m.byUID(uid)
	if e == nil {
		return Message{}, false
	}
	return e.message(), true
}

// OpenMessage opens the file of the message with uid for reading. A file
// renamed by someone else (a flag change) is looked up again by a sync
// before the answer is that the message is gone (DESIGN.md §3: a FETCH
// retries before it answers).
//
// Takes: mu for a moment; wmu and mu for a sync (openFresh) when the file
// moved.
func (m *Mailbox) OpenMessage(ctx context.Context, uid uint32) (*os.File, Message, error) {
	m.mu.Lock()
	e := m.byUID(uid)
	if e == nil {
		m.mu.Unlock()
		return nil, Message{}, ErrNoSuchMessage
	}
	msg := e.message()
	m.mu.Unlock()
	f, err := maildir.OpenMessageAt(m.dirf, msg.Sub, msg.Filename)
	if err == nil {
		return f, msg, nil
	}
	if !errors.Is(err, os.ErrNotExist) && !notMessageFile(err) {
		return nil, msg, err
	}
	// Renamed, or replaced by a link (which the sync leaves out).
	f, msg, err = m.openFresh(ctx, uid)
	if errors.Is(err, os.ErrNotExist) || notMessageFile(err) {
		if notMessageFile(err) {
			m.log.Warn("a message file is not a regular file (a symbolic link?): not read", "file", m.Path(msg), "err", err)
		}
		return nil, msg, ErrNoSuchMessage
	}
	return f, msg, err
}

// openFresh syncs and opens the file of the message with uid where the
// sync found it. wmu is held from the sync to the open, so that no
// change of this process (a STORE, which renames without mu) renames
// the file in between; only a program that ignores the lock still can.
// A message the sync did not find, or a sync that failed, is
// ErrNoSuchMessage.
//
// Held: none; takes wmu and mu (a sync), and lets go of mu for the open.
func (m *Mailbox) openFresh(ctx context.Context, uid uint32) (*os.File, Message, error) {
	m.lockWriter()
	defer m.unlockWriter()
	if _, err := m.syncPublishLocked(ctx); err != nil {
		return nil, Message{}, ErrNoSuchMessage
	}
	e := m.byUID(uid)
	if e == nil {
		return nil, Message{}, ErrNoSuchMessage
	}
	msg := e.message()
	var f *os.File
	var err error
	m.unlocked(func() { f, err = maildir.OpenMessageAt(m.dirf, msg.Sub, msg.Filename) })
	return f, msg, err
}

// notMessageFile reports whether err says that a message's path leads
// to no regular file below the mailbox: a symbolic link (never
// followed), a directory or a device.
func notMessageFile(err error) bool {
	return errors.Is(err, maildir.ErrNotRegular) || errors.Is(err, maildir.ErrSymlink)
}
