package store

import (
	"context"
	"fmt"

	"github.com/cistern-mail/cistern/internal/uidlist"
)

// GUID returns the mailbox's GUID: the G field of dovecot-uidlist's
// header, 32 lowercase hex digits, Dovecot's mailbox GUID. It lives in
// the mailbox directory, so it follows the directory through a RENAME
// (of the mailbox or a parent) and a new directory gets a new one: the
// identity of one life of a mailbox (RFC 8474 MAILBOXID).
//
// A uidlist without one (Dovecot's version 1, a Courier import, another
// program's) is given one here, once: under the mailbox lock the file is
// read again and, still without a GUID, rewritten with a new one
// (uidlist.Rewrite, durably). A GUID in the file is never changed. A
// mailbox without a uidlist yet is synced first (its first sync writes
// one with a GUID).
//
// Takes: mu; wmu and mu when the last sync saw no GUID, and for the
// rewrite what a change takes (beginChange).
func (m *Mailbox) GUID(ctx context.Context) (string, error) {
	m.mu.Lock()
	if f := m.lastFile; f != nil && f.Header.GUID != "" {
		m.mu.Unlock()
		return f.Header.GUID, nil
	}
	if m.warmGUID != "" {
		m.mu.Unlock()
		return m.warmGUID, nil
	}
	m.mu.Unlock()
	if g := m.warmHeaderGUID(); g != "" {
		return g, nil
	}
	f, err := m.readUIDList()
	if err != nil {
		return "", err
	}
	if f == nil {
		if _, err := m.Sync(ctx); err != nil {
			return "", err
		}
		if f, err = m.readUIDList(); err != nil {
			return "", err
		}
		if f == nil {
			return "", fmt.Errorf("store: %s: no dovecot-uidlist after a sync", m.dir)
		}
	}
	if f.Header.GUID != "" {
		return f.Header.GUID, nil
	}
	return m.giveGUID(ctx)
}

// warmHeaderGUID returns the GUID in the header of the uidlist a warm
// start was served with, while no sync has read the uidlist, and keeps
// it (warmGUID): a warm-started mailbox answers SELECT without parsing
// the whole file. "" when there is none to read, or it has no GUID.
//
// Held: none; takes wmu and mu.
func (m *Mailbox) warmHeaderGUID() string {
	m.lockWriter()
	defer m.unlockWriter()
	if m.lastFile != nil || m.warmUID == nil {
		return ""
	}
	var h uidlist.Header
	var err error
	m.unlocked(func() { h, err = uidlist.ReadHeader(m.warmUID.f) })
	if err != nil || h.GUID == "" {
		return ""
	}
	m.warmGUID = h.GUID
	return h.GUID
}

// readUIDList reads dovecot-uidlist as a writer would (refreshUIDList):
// nil when there is none.
//
// Held: none; takes wmu and mu.
func (m *Mailbox) readUIDList() (*uidlist.File, error) {
	m.lockWriter()
	defer m.unlockWriter()
	var f *uidlist.File
	var err error
	m.unlocked(func() { f, err = m.refreshUIDList() })
	return f, err
}

// giveGUID writes a new GUID into a uidlist that has none, under the
// mailbox lock, and returns the GUID the file holds afterwards (another
// process's, if one gave it meanwhile).
//
// Held: none; takes turn, dotlock, wmu and mu (beginChange).
func (m *Mailbox) giveGUID(ctx context.Context) (string, error) {
	end, err := m.beginChange(ctx, m.lockTimeout())
	if err != nil {
		return "", err
	}
	defer end()
	lock := m.held
	var guid string
	m.unlocked(func() {
		var f *uidlist.File
		if err = m.checkDir(); err != nil {
			return // never write this file into another directory
		}
		// Every record: the file is written again from f.
		if f, err = m.readWholeUIDList(); err != nil {
			return
		}
		if f == nil {
			err = fmt.Errorf("store: %s: dovecot-uidlist vanished or unreadable", m.dir)
			return
		}
		if f.Header.GUID != "" {
			guid = f.Header.GUID
			return
		}
		nf := *f
		nf.Header.GUID = uidlist.NewGUID()
		if err = m.replaceUIDList(lock, &nf); err != nil {
			return
		}
		m.writerLog().Info("dovecot-uidlist had no mailbox GUID; gave it one", "guid", nf.Header.GUID)
		guid = nf.Header.GUID
	})
	return guid, err
}

// keptGUID is the GUID for a uidlist this Mailbox writes anew (rebuilt
// after it vanished, or made again): the one the last sync saw, so that
// the mailbox keeps its identity, else a new one.
//
// Held: wmu; mu or not.
func (m *Mailbox) keptGUID() string {
	if f := m.lastFile; f != nil && f.Header.GUID != "" {
		return f.Header.GUID
	}
	if m.warmGUID != "" {
		return m.warmGUID
	}
	return uidlist.NewGUID()
}
