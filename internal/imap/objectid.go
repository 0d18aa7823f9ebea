package imap

import (
	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// ObjectIDs are a mailbox's object identifiers (RFC 8474): every one
// an objectid (wire.IsObjectID), chosen by the backend.
type ObjectIDs interface {
	// MailboxID is the mailbox's MAILBOXID (§4): the same across
	// RENAME, another for every new mailbox of a name.
	MailboxID() string
	// EmailID is a message's EMAILID (§5.1): the same for a message
	// and its COPY and MOVE copies, another for another message.
	// ErrNoSuchMessageErr when the mailbox no longer has uid.
	EmailID(uid uint32) (string, error)
	// ThreadID is the THREADID (§5.2) of the message uid whose
	// structure is st (Mailbox.Structure).
	ThreadID(uid uint32, st *message.Structure) (string, error)
}

// writeObjectID writes "NAME (id)", an id of RFC 8474 §7's syntax. An
// id the backend made wrong is a broken invariant of the engine's
// contract with it.
func (c *conn) writeObjectID(name, id string) {
	if !wire.IsObjectID(id) {
		panic("imap: the backend gave " + name + " " + id + ", which is no objectid")
	}
	c.bw.WriteString(name + " (" + id + ")")
}

// objectIDs returns the EMAILID and THREADID of message uid that items
// ask for, by item name (nil when they ask for none), before its FETCH
// response begins: a message expunged meanwhile is then left out whole
// (ErrNoSuchMessageErr). st is its structure, which THREADID needs.
func (c *conn) objectIDs(items []wire.FetchItem, uid uint32, st *message.Structure) (map[string]string, error) {
	var ids map[string]string
	for _, it := range items {
		var id string
		var err error
		switch it.Name {
		case "EMAILID":
			id, err = c.sel.mb.EmailID(uid)
		case "THREADID":
			id, err = c.sel.mb.ThreadID(uid, st)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if ids == nil {
			ids = make(map[string]string, 2)
		}
		ids[it.Name] = id
	}
	return ids, nil
}

// objectID reports whether the current message's EMAILID or THREADID
// (op) is id, compared case-sensitively (RFC 8474 §7: ids are opaque).
// THREADID reads the structure, from the index when it is there, its
// parse taken from the response memory budget as FETCH takes it (or
// from the message another key read).
func (ev *evaluator) objectID(op, id string) (bool, error) {
	mb := ev.c.sel.mb
	if op == "EMAILID" {
		got, err := mb.EmailID(ev.uid)
		return got == id, err
	}
	if ev.msg != nil {
		// Read for another key, its bytes held from the budget: no
		// second share, which could wait for this session itself.
		got, err := mb.ThreadID(ev.uid, ev.msg.Structure())
		return got == id, err
	}
	n, err := ev.c.readCost(ev.uid, true)
	if err != nil {
		return false, err
	}
	release, err := ev.c.reserve(n)
	if err != nil {
		return false, err
	}
	defer release()
	st, _, err := mb.Structure(ev.c.ctx, ev.uid)
	if err != nil {
		return false, err
	}
	got, err := mb.ThreadID(ev.uid, st)
	return got == id, err
}
