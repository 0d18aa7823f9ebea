package store

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// testHookPublished, set by tests, runs when APPEND or COPY has put its
// files into cur/ and is about to record their UIDs.
var testHookPublished func()

// testHookSyncPlaced, set by tests, stands in for the fsync of cur/ after
// APPEND or COPY recorded their files: its failure is one a test cannot
// cause on a real file system.
var testHookSyncPlaced func() error

// Append delivers a message into the mailbox with the given flags and
// internal date (zero: now) and returns it with its UID. The message is
// durable before Append returns (DESIGN.md §4). On error nothing is left
// in the mailbox (adoptStaged); an error wrapping ErrLocked says the
// mailbox lock could not be had within the lock timeout.
//
// Takes: turn, dotlock, wmu, mu (adoptStaged); mu is let go while the
// renamed files are taken back.
func (m *Mailbox) Append(ctx context.Context, r io.Reader, flags maildir.Flags, date time.Time, from *Subscription) (Message, error) {
	s, err := maildir.Stage(m.dir, r, maildir.DeliverOptions{Cur: true, Flags: flags, Time: date})
	if err != nil {
		return Message{}, err
	}
	msgs, err := m.adoptStaged(ctx, []*maildir.Staged{s}, from)
	if err != nil {
		return Message{}, err
	}
	return msgs[0], nil
}

// adoptStaged delivers the messages staged in this mailbox's tmp/
// (maildir.Stage, StageLink) into cur/ and gives them UIDs, all or none,
// and returns them in the order given. The steps, and what each failure
// leaves:
//
//  1. Take the change's turn and the mailbox lock (lockChange), so that
//     no other process numbers a file whose command may yet fail. Not to
//     be had within the lock timeout: ErrLocked; the staged files are
//     removed from tmp/.
//  2. Read the uidlist under the lock; replaced by one with another
//     UIDVALIDITY: sync first, under the same lock, so that the new
//     files are numbered after the new UIDs, in the order given. A
//     COPY's file that would keep its base name while the state or the
//     uidlist holds it gets a fresh one (claimBases).
//  3. Rename the files into cur/ (maildir.Place), without wmu: syncs
//     meanwhile see them and leave them to this change. Failure: the
//     files renamed so far are unlinked again; the rest removed from
//     tmp/. A file of the base name a COPY's file kept that another
//     program puts into new/ or cur/ meanwhile (link(2) and rename(2)
//     refuse only the same whole name) is a duplicate the next sync
//     sorts out, keeping the copy, which the state names
//     (liveDistinct).
//  4. Append their records to the uidlist in one write and fsync it
//     (assignOwn), check that the mailbox's path still leads to its
//     directory (a program that ignores the lock may have renamed it
//     away, sending the renames or the records elsewhere), then fsync
//     cur/ from the directory the Mailbox holds open
//     (maildir.SyncPlacedAt; on ext4 the uidlist's fsync has already
//     carried the renames to the journal, so the lock is held for one
//     journal commit, not two). Failure of any (EACCES, EPERM, ENOSPC,
//     EIO, ErrMailboxGone): the files are unlinked from cur/ of that
//     open directory while the lock is still held (maildir.UnpublishAt),
//     the state is as it was (records already written stay, naming no
//     file, and their UIDs are never given again), and the error is
//     returned. A file a lockless program renamed meanwhile cannot be
//     taken back; that is logged.
//  5. Publish the new messages to the subscribers; let go of the lock.
//
// A crash after step 3 and before step 4 ends leaves files in cur/
// without a UID that no client was told of: the next sync numbers them
// (a message whose APPEND got no answer).
//
// Held: none; takes turn and dotlock (lockChange), then wmu and mu.
func (m *Mailbox) adoptStaged(ctx context.Context, staged []*maildir.Staged, from *Subscription) ([]Message, error) {
	defer func() {
		for _, s := range staged {
			s.Discard() // what is not in cur/ now is not to be
		}
	}()
	if len(staged) == 0 {
		return nil, nil
	}
	lock, unlock, err := m.lockChange(ctx, m.lockTimeout())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.syncIfReplaced(ctx, lock); err != nil {
		return nil, err
	}
	if err := m.claimBases(lock, staged); err != nil {
		return nil, err
	}
	if err := maildir.Place(staged); err != nil {
		return nil, err
	}
	if testHookPublished != nil {
		testHookPublished()
	}

	m.enterChange(lock)
	defer m.leaveChange()
	defer m.adoptWaitingLocked(ctx)
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	var f *uidlist.File
	m.unlocked(func() { f, err = m.refreshUIDList() })
	names := make([]string, len(staged))
	for i, s := range staged {
		names[i] = s.Filename()
	}
	if err == nil && f != nil && m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
		// Replaced since step 2, under our lock: only a program that
		// ignores the lock does that.
		err = fmt.Errorf("store: %s was replaced under the lock", filepath.Join(m.dir, uidlist.FileName))
	}
	if err == nil {
		err = m.assignOwn(f, names, ch)
		if err == nil {
			// The files were placed and the uidlist written by path: a
			// program that renamed the directory meanwhile, without the
			// lock, may have sent either elsewhere. Past this check, the
			// rest goes through the directory the Mailbox holds open.
			if err = m.checkDir(); err != nil {
				m.dropNewLocked(ch.New)
			}
		}
	}
	if err == nil {
		// mu stays held: no reader may see the messages before they are
		// durable, as they may yet be taken back.
		if testHookSyncPlaced != nil {
			err = testHookSyncPlaced()
		} else {
			err = maildir.SyncPlacedAt(m.dirf, staged)
		}
		if err != nil {
			m.dropNewLocked(ch.New)
		}
	}
	if err != nil {
		var uerr error
		m.unlocked(func() { uerr = maildir.UnpublishAt(m.dirf, staged) })
		if uerr != nil {
			m.writerLog().Error("a refused message could not be taken back: a later sync shows it",
				"err", uerr, "cause", err)
		}
		return nil, err
	}
	out := make([]Message, 0, len(names))
	for _, n := range names {
		if e, ok := m.bases()[maildir.BaseName(n)]; ok {
			msg := e.message()
			msg.UIDValidity = m.uidvalidity
			out = append(out, msg)
		}
	}
	if len(out) != len(names) {
		return nil, fmt.Errorf("store: %d of %d messages put into %s got no UID", len(names)-len(out), len(names), m.dir)
	}
	sortByUID(ch.New)
	m.publish(ch, from)
	return out, nil
}

// dropNewLocked takes messages that were just adopted, and published to
// no one, back out of the state; their UIDs stay used.
//
// Held: wmu, mu.
func (m *Mailbox) dropNewLocked(msgs []Message) {
	gone := make(map[*entry]bool, len(msgs))
	for _, msg := range msgs {
		if e, ok := m.bases()[msg.Base]; ok && e.uid == msg.UID {
			gone[e] = true
			delete(m.byBase, e.base())
		}
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
	m.msgsChanged()
}

// syncIfReplaced syncs, under the change's lock, when dovecot-uidlist now
// has another UIDVALIDITY than the state: what follows then numbers files
// after the new file's UIDs. It takes wmu and mu, and lets go of them.
//
// Held: turn, dotlock; takes wmu and mu, and lets go of them.
func (m *Mailbox) syncIfReplaced(ctx context.Context, lock *uidlist.Lock) error {
	m.enterChange(lock)
	defer m.leaveChange()
	var f *uidlist.File
	var err error
	m.unlocked(func() { f, err = m.refreshUIDList() })
	if err != nil || f == nil || m.uidvalidity == 0 || f.Header.UIDValidity == m.uidvalidity {
		return err
	}
	_, err = m.syncPublishLocked(ctx)
	return err
}
