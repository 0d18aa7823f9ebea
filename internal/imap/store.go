package imap

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// STORE and UID STORE — RFC 9051 §6.4.6. State: selected. The changed
// messages are reported with FETCH (FLAGS, and UID for UID STORE and
// always, as mbsync and offlineimap need it) unless .SILENT; no EXPUNGE
// during a STORE by sequence number.
//
// A message that someone else expunged, the session not told yet, is
// left alone; a STORE by sequence number without .SILENT that named one
// answers NO [EXPUNGEISSUED] after the FETCHes of the others (RFC 2180
// §4.2.2, §4.2.3), so that the client asks for the EXPUNGE (NOOP). With
// .SILENT it answers OK (§4.2.1), and so does UID STORE, whose
// nonexistent UIDs are ignored (RFC 9051 §6.4.9) and whose answer
// carries the EXPUNGE.
//
// RFC 7162 §3.1.3: STORE (UNCHANGEDSINCE n) changes only the messages
// whose MODSEQ is at most n, tested and changed in one step
// (StoreUnchangedSince); the others are named in the tagged OK's
// [MODIFIED set] (sequence numbers, or UIDs for UID STORE) and get no
// FETCH. n = 0 fails every message. A message expunged meanwhile was
// modified since n too: it is named in MODIFIED, and the STORE answers
// OK (the client learns more from MODIFIED than from EXPUNGEISSUED).
// With CONDSTORE enabled every FETCH carries MODSEQ, and .SILENT still
// sends "FETCH (UID u MODSEQ (m))" for each message whose MODSEQ the
// STORE raised (§3.1.3: the client must learn its new MODSEQ); one
// whose flags did not change keeps its MODSEQ and is not told.
func cmdStore(c *conn, tag string, uid bool) error {
	uids, err := c.setArg(uid)
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	since, err := c.storeModifiers()
	if err != nil {
		return err
	}
	act, err := c.dec.StoreAction()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	if since != nil {
		c.enableCondstore()
	}
	if s.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	before := s.mb.HighestModSeq()
	var msgs []MessageInfo
	var modified []uint32
	switch {
	case since == nil:
		msgs, err = s.mb.Store(c.ctx, uids, act.Mode, act.Flags)
	case *since == 0:
		// Every message has a MODSEQ above 0: all fail (§3.1.3).
		modified = uids
	default:
		msgs, modified, err = s.mb.StoreUnchangedSince(c.ctx, uids, act.Mode, act.Flags, *since)
	}
	if err != nil {
		return err
	}
	for _, m := range msgs {
		seq := s.view.Seq(m.UID)
		switch {
		case seq == 0:
		case !act.Silent:
			c.flagsFetch(seq, m)
		case c.condstore && m.ModSeq > before:
			fmt.Fprintf(c.bw, "* %d FETCH (UID %d ", seq, m.UID)
			c.modseq(m.ModSeq)
			c.bw.WriteString(")\r\n")
		}
	}
	if since != nil && *since != 0 && len(msgs)+len(modified) < len(uids) {
		// Expunged meanwhile: modified since, too.
		done := append(slices.Clone(msgs), infosOf(modified)...)
		slices.SortFunc(done, func(a, b MessageInfo) int { return cmp.Compare(a.UID, b.UID) })
		modified = append(modified, unreported(uids, done)...)
		slices.Sort(modified)
	}
	code := ""
	if len(modified) > 0 {
		code = "MODIFIED " + c.modifiedSet(modified, uid)
	}
	if err := c.updates(uid); err != nil {
		return err
	}
	if since == nil && !uid && !act.Silent && len(msgs) < len(uids) && c.anyGone(unreported(uids, msgs)) {
		return no("EXPUNGEISSUED", "Some of the messages no longer exist")
	}
	if code != "" {
		return c.ok(tag, code, "Conditional STORE failed")
	}
	return c.ok(tag, "", "STORE completed")
}

// storeModifiers reads "(" store-modifier *(SP store-modifier) ")" SP if
// there: UNCHANGEDSINCE mod-sequence-valzer (RFC 7162 §3.1.3, §7).
func (c *conn) storeModifiers() (*uint64, error) {
	if b, err := c.dec.Peek(); err != nil || b != '(' {
		return nil, err
	}
	var since *uint64
	err := c.dec.List(func() error {
		name, err := c.dec.Atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(name, "UNCHANGEDSINCE") {
			return &wire.Error{Msg: "unknown STORE modifier " + name}
		}
		if since != nil {
			return &wire.Error{Msg: "UNCHANGEDSINCE given twice"}
		}
		if err := c.dec.SP(); err != nil {
			return err
		}
		n, err := c.modSeqValue()
		since = &n
		return err
	})
	if err != nil {
		return nil, err
	}
	return since, c.dec.SP()
}

// modifiedSet is the MODIFIED set of uids (ascending): UIDs for UID
// STORE, the sequence numbers the view gives them otherwise.
func (c *conn) modifiedSet(uids []uint32, uid bool) string {
	if uid {
		return uidSet(uids)
	}
	seqs := make([]uint32, 0, len(uids))
	for _, u := range uids {
		if seq := c.sel.view.Seq(u); seq != 0 {
			seqs = append(seqs, seq)
		}
	}
	return uidSet(seqs)
}

// infosOf are MessageInfos with the given UIDs only.
func infosOf(uids []uint32) []MessageInfo {
	out := make([]MessageInfo, len(uids))
	for i, u := range uids {
		out[i].UID = u
	}
	return out
}

// unreported are the UIDs of uids (ascending) that msgs (in UID order)
// lacks.
func unreported(uids []uint32, msgs []MessageInfo) []uint32 {
	var out []uint32
	i := 0
	for _, u := range uids {
		for i < len(msgs) && msgs[i].UID < u {
			i++
		}
		if i == len(msgs) || msgs[i].UID != u {
			out = append(out, u)
		}
	}
	return out
}

func init() { register("STORE", selected_, true, cmdStore) }
