package imap

import (
	"fmt"
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
func cmdStore(c *conn, tag string, uid bool) error {
	uids, err := c.setArg(uid)
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
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
	if s.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	msgs, err := s.mb.Store(c.ctx, uids, act.Mode, act.Flags)
	if err != nil {
		return err
	}
	if !act.Silent {
		for _, m := range msgs {
			if seq := s.view.Seq(m.UID); seq != 0 {
				c.announce(m.Flags)
				fmt.Fprintf(c.bw, "* %d FETCH (FLAGS ", seq)
				c.flags(m.UID, m.Flags)
				fmt.Fprintf(c.bw, " UID %d)\r\n", m.UID)
			}
		}
	}
	if err := c.updates(uid); err != nil {
		return err
	}
	if !uid && !act.Silent && len(msgs) < len(uids) && c.anyGone(unreported(uids, msgs)) {
		return no("EXPUNGEISSUED", "Some of the messages no longer exist")
	}
	return c.ok(tag, "", "STORE completed")
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
