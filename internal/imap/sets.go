package imap

import (
	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// uids resolves a sequence set (or, with uid, a UID set) in the
// session's view, "$" (RFC 5182) included, to the UIDs it names, in
// ascending order.
func (c *conn) uids(set wire.SeqSet, uid bool) ([]uint32, error) {
	s := c.sel
	if set.IsSaved() {
		return c.savedUIDs(), nil
	}
	if uid {
		return s.view.UIDsIn(ranges(set)), nil
	}
	uids, err := s.view.SeqsToUIDs(ranges(set))
	if err != nil {
		return nil, &wire.Error{Msg: err.Error()}
	}
	return uids, nil
}

// searchUIDs resolves a sequence set (or, with uid, a UID set) of a
// SEARCH key, "$" included: as uids, except that sequence numbers past
// the end are no error but match nothing (View.SeqsIn), as Dovecot's
// SEARCH; "SEARCH 1000" with 6 messages is OK and empty.
func (c *conn) searchUIDs(set wire.SeqSet, uid bool) []uint32 {
	switch {
	case set.IsSaved():
		return c.savedUIDs()
	case uid:
		return c.sel.view.UIDsIn(ranges(set))
	}
	return c.sel.view.SeqsIn(ranges(set))
}

// savedUIDs is the saved search result ("$", RFC 5182) that the view
// still holds.
func (c *conn) savedUIDs() []uint32 {
	s := c.sel
	var out []uint32
	for _, u := range s.searchRes {
		if s.view.Seq(u) != 0 {
			out = append(out, u)
		}
	}
	return out
}

func ranges(set wire.SeqSet) []Range {
	rs := make([]Range, len(set))
	for i, r := range set {
		rs[i] = Range{r.Start, r.Stop}
	}
	return rs
}

// setArg reads " sequence-set" and resolves it.
func (c *conn) setArg(uid bool) ([]uint32, error) {
	if err := c.dec.SP(); err != nil {
		return nil, err
	}
	set, err := c.dec.SeqSet()
	if err != nil {
		return nil, err
	}
	return c.uids(set, uid)
}

// uidSet writes UIDs as a compact set for COPYUID and APPENDUID.
func uidSet(uids []uint32) string { return uidSeqSet(uids).String() }

// uidSeqSet is the set of the UIDs given, ascending.
func uidSeqSet(uids []uint32) wire.SeqSet {
	var set wire.SeqSet
	for _, u := range uids {
		if n := len(set); n > 0 && set[n-1].Stop+1 == u {
			set[n-1].Stop = u
			continue
		}
		set = append(set, wire.SeqRange{Start: u, Stop: u})
	}
	return set
}
