package imap

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// CONDSTORE and QRESYNC — RFC 7162. Every message has a MODSEQ and the
// mailbox a HIGHESTMODSEQ (the backend's; the store keeps them going up
// across restarts). SELECT and EXAMINE always send HIGHESTMODSEQ (RFC
// 7162 §3.1.2.1). Once CONDSTORE is enabled — by ENABLE, or by the first
// command that uses it (§3.1: SELECT/EXAMINE (CONDSTORE), STATUS
// (HIGHESTMODSEQ), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE,
// SEARCH MODSEQ) — every untagged FETCH that carries FLAGS carries
// MODSEQ too. ENABLE QRESYNC enables CONDSTORE as well, turns every
// EXPUNGE into VANISHED (§3.2.10) and allows SELECT (QRESYNC) and
// UID FETCH (VANISHED).
//
// What the session tells must never let a client skip an expunge it
// was not told of (RFC 7162 §3.2.10 and erratum 1810 of RFC 5162): a
// FETCH may show a MODSEQ above an expunge the session holds back (no
// EXPUNGE during FETCH, STORE and SEARCH by sequence number), and a
// client that took that MODSEQ as its HIGHESTMODSEQ would resynchronise
// past the expunge. So each time updates are taken (settleModSeq) the
// session either knows that it told everything up to the mailbox's
// HIGHESTMODSEQ (nothing held), and remembers that value as fullModSeq,
// or, holding expunges after telling a higher MODSEQ, tells the client
// HIGHESTMODSEQ fullModSeq, which is below every expunge it holds. As
// Dovecot does, with QRESYNC enabled it also tells a HIGHESTMODSEQ that
// went up without a MODSEQ to show it (after VANISHED, EXISTS), in the
// tagged OK when that has no code (EXPUNGE's, RFC 7162 §3.2.10's
// example) or in an untagged OK.
//
// Modseq values parse as number64 (0 to 2^63-1, RFC 7162 §7
// mod-sequence-value and -valzer); larger ones are BAD. CHANGEDSINCE
// and the modseq of QRESYNC take 0 too, as Dovecot does (the grammar
// says 1 at least): it asks for every change, and no answer is wrong.

// enableCondstore enables CONDSTORE for the rest of the session. Enabled
// while a mailbox is selected, it tells HIGHESTMODSEQ, as Dovecot does:
// the session's fullModSeq, up to which the client was told every change
// (the mailbox's may be higher, with changes the session has not told
// yet, and a client that took it would resynchronise past them).
func (c *conn) enableCondstore() {
	if c.condstore {
		return
	}
	c.condstore = true
	if s := c.sel; s != nil {
		fmt.Fprintf(c.bw, "* OK [HIGHESTMODSEQ %d] Highest\r\n", s.fullModSeq)
	}
}

// modseqIfEnabled writes " MODSEQ (m)" inside a FETCH response when
// CONDSTORE is enabled.
func (c *conn) modseqIfEnabled(m uint64) {
	if c.condstore {
		c.bw.WriteByte(' ')
		c.modseq(m)
	}
}

// modseq writes "MODSEQ (m)" (RFC 7162 §3.1.4.1) and notes that m was
// told.
func (c *conn) modseq(m uint64) {
	fmt.Fprintf(c.bw, "MODSEQ (%d)", m)
	if c.sel != nil {
		c.sel.fetchedModSeq = max(c.sel.fetchedModSeq, m)
	}
}

// settleModSeq runs after updates were taken, with the mailbox's
// HIGHESTMODSEQ as the update knew it; see the comment at the top.
func (c *conn) settleModSeq(highest uint64) {
	s := c.sel
	due := uint64(0)
	if len(s.held) > 0 {
		if s.fetchedModSeq > s.fullModSeq {
			due = s.fullModSeq
		}
	} else {
		if highest > s.fullModSeq && highest > s.fetchedModSeq {
			due = highest
		}
		s.fullModSeq = max(s.fullModSeq, highest)
	}
	s.fetchedModSeq = 0
	if c.qresync && due != 0 {
		s.highestDue = due
	}
}

// sayHighest tells a HIGHESTMODSEQ due in an untagged OK.
func (c *conn) sayHighest() {
	if c.sel != nil && c.sel.highestDue != 0 {
		fmt.Fprintf(c.bw, "* OK [HIGHESTMODSEQ %d] Highest\r\n", c.sel.highestDue)
		c.sel.highestDue = 0
	}
}

// vanished tells the expunges of uids the view has, as VANISHED (RFC
// 7162 §3.2.10), and takes them out of the view.
func (c *conn) vanished(uids []uint32) {
	s := c.sel
	var gone []uint32
	for _, u := range uids {
		if s.view.Seq(u) != 0 {
			gone = append(gone, u)
		}
	}
	if len(gone) == 0 {
		return
	}
	slices.Sort(gone)
	gone = slices.Compact(gone)
	s.view.Expunge(gone)
	c.bw.WriteString("* VANISHED " + uidSet(gone) + "\r\n")
}

// vanishedEarlier writes "* VANISHED (EARLIER) set" (RFC 7162 §3.2.10)
// for the ranges, unless they are empty.
func (c *conn) vanishedEarlier(rs []UIDRange) {
	if len(rs) == 0 {
		return
	}
	c.bw.WriteString("* VANISHED (EARLIER) " + rangeSet(rs) + "\r\n")
}

// rangeSet formats ascending ranges as a sequence-set.
func rangeSet(rs []UIDRange) string {
	set := make(wire.SeqSet, len(rs))
	for i, r := range rs {
		set[i] = wire.SeqRange{Start: r.Lo, Stop: r.Hi}
	}
	return set.String()
}

// clipRanges keeps of rs (ascending, disjoint) the UIDs that set names,
// where "*" is maxUID, and that the view lacks (an expunge the session
// holds is told as VANISHED when the moment allows, never as EARLIER).
func clipRanges(rs []UIDRange, set wire.SeqSet, maxUID uint32, v *View) []UIDRange {
	var in []UIDRange
	for _, r := range set {
		a, b := star(r.Start, maxUID), star(r.Stop, maxUID)
		if a > b {
			a, b = b, a
		}
		if a == 0 {
			a = 1
		}
		if b == 0 {
			continue
		}
		in = append(in, UIDRange{a, b})
	}
	in = mergeRanges(in)
	var out []UIDRange
	for _, r := range rs {
		for _, w := range in {
			lo, hi := max(r.Lo, w.Lo), min(r.Hi, w.Hi)
			if lo <= hi {
				out = append(out, withoutView(UIDRange{lo, hi}, v)...)
			}
		}
	}
	return mergeRanges(out)
}

// withoutView splits r around the UIDs the view has.
func withoutView(r UIDRange, v *View) []UIDRange {
	uids := v.UIDs()
	i, _ := slices.BinarySearch(uids, r.Lo)
	var out []UIDRange
	lo := r.Lo
	for ; i < len(uids) && uids[i] <= r.Hi; i++ {
		if uids[i] > lo {
			out = append(out, UIDRange{lo, uids[i] - 1})
		}
		lo = uids[i] + 1
		if lo == 0 { // uids[i] was the largest UID
			return out
		}
	}
	if lo <= r.Hi {
		out = append(out, UIDRange{lo, r.Hi})
	}
	return out
}

// mergeRanges sorts ranges and joins those that overlap or touch.
func mergeRanges(rs []UIDRange) []UIDRange {
	slices.SortFunc(rs, func(a, b UIDRange) int { return int(int64(a.Lo) - int64(b.Lo)) })
	var out []UIDRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r.Lo) <= uint64(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// modSeqValue reads a mod-sequence value (number64: RFC 7162 §7).
func (c *conn) modSeqValue() (uint64, error) {
	n, err := c.dec.Number64()
	if err != nil {
		return 0, &wire.Error{Msg: "invalid mod-sequence value"}
	}
	return n, nil
}

// qresyncParams are the parameters of SELECT (QRESYNC (...)) (RFC 7162
// §3.2.5).
type qresyncParams struct {
	validity uint32
	modseq   uint64
	known    wire.SeqSet // nil: every UID
	// seqs and uids are the seq-match-data, as many of each.
	seqs, uids []uint32
}

// selectParams reads " (select-param *(SP select-param))" after a
// mailbox name, if there: CONDSTORE, QRESYNC (RFC 7162 §3.1.8, §3.2.5).
func (c *conn) selectParams() (condstore bool, q *qresyncParams, err error) {
	if b, err := c.dec.Peek(); err != nil || b != ' ' {
		return false, nil, err
	}
	if err := c.dec.SP(); err != nil {
		return false, nil, err
	}
	err = c.dec.List(func() error {
		name, err := c.dec.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			condstore = true
			return nil
		case "QRESYNC":
			if !c.qresync {
				// RFC 7162 §3.2.5: BAD without ENABLE QRESYNC first.
				return &wire.Error{Msg: "QRESYNC is not enabled"}
			}
			if q != nil {
				return &wire.Error{Msg: "QRESYNC given twice"}
			}
			if err := c.dec.SP(); err != nil {
				return err
			}
			q, err = c.qresyncParam()
			return err
		}
		return &wire.Error{Msg: "unknown SELECT parameter " + name}
	})
	return condstore, q, err
}

// qresyncParam reads "(" uidvalidity SP mod-sequence-value [SP
// known-uids] [SP seq-match-data] ")" (RFC 7162 §7).
func (c *conn) qresyncParam() (*qresyncParams, error) {
	q := &qresyncParams{}
	i := 0
	err := c.dec.List(func() error {
		defer func() { i++ }()
		switch i {
		case 0:
			v, err := c.dec.Number()
			if err != nil || v == 0 {
				return &wire.Error{Msg: "invalid QRESYNC UIDVALIDITY"}
			}
			q.validity = v
			return nil
		case 1:
			m, err := c.modSeqValue()
			q.modseq = m
			return err
		}
		b, err := c.dec.Peek()
		if err != nil {
			return err
		}
		if b == '(' && q.seqs == nil {
			return c.seqMatch(q)
		}
		if i != 2 {
			return &wire.Error{Msg: "invalid QRESYNC parameters"}
		}
		set, err := c.nostarSet("known-uids")
		q.known = set
		return err
	})
	if err == nil && i < 2 {
		err = &wire.Error{Msg: "QRESYNC needs UIDVALIDITY and a mod-sequence"}
	}
	return q, err
}

// seqMatch reads seq-match-data = "(" known-sequence-set SP
// known-uid-set ")": as many numbers in each (RFC 7162 §3.2.5.2).
func (c *conn) seqMatch(q *qresyncParams) error {
	var seqs, uids wire.SeqSet
	i := 0
	err := c.dec.List(func() error {
		defer func() { i++ }()
		var err error
		switch i {
		case 0:
			seqs, err = c.nostarSet("known-sequence-set")
		case 1:
			uids, err = c.nostarSet("known-uid-set")
		default:
			err = &wire.Error{Msg: "invalid QRESYNC seq-match-data"}
		}
		return err
	})
	if err != nil {
		return err
	}
	q.seqs, q.uids = expandSet(seqs), expandSet(uids)
	if i != 2 || len(q.seqs) != len(q.uids) || len(q.seqs) == 0 {
		return &wire.Error{Msg: "QRESYNC seq-match-data sets differ in size"}
	}
	return nil
}

// maxSeqMatch bounds the numbers of seq-match-data: a sample, which a
// client keeps short (RFC 7162 §3.2.5.2 suggests a logarithmic one).
const maxSeqMatch = 1 << 16

// expandSet lists the numbers of a set without "*", in the client's
// order, up to maxSeqMatch+1 (past that the sizes are checked against
// each other only).
func expandSet(set wire.SeqSet) []uint32 {
	out := []uint32{}
	for _, r := range set {
		for n := uint64(r.Start); n <= uint64(r.Stop) && len(out) <= maxSeqMatch; n++ {
			out = append(out, uint32(n))
		}
	}
	return out
}

// nostarSet reads a sequence-set without "*" and "$" (RFC 7162 §7
// known-uids: sequence-set that MUST NOT contain "*").
func (c *conn) nostarSet(what string) (wire.SeqSet, error) {
	set, err := c.dec.SeqSet()
	if err != nil {
		return nil, err
	}
	if set.IsSaved() || set.HasStar() {
		return nil, &wire.Error{Msg: "invalid QRESYNC " + what}
	}
	return set, nil
}

// qresyncSelect answers SELECT (QRESYNC) with a matching UIDVALIDITY
// (RFC 7162 §3.2.5): VANISHED (EARLIER) for the known UIDs expunged
// since the client's modseq, then FETCH (UID FLAGS MODSEQ) for the
// known messages changed since, in sequence order (Dovecot's order).
func (c *conn) qresyncSelect(q *qresyncParams) {
	s := c.sel
	known := q.known
	if known == nil {
		known = wire.SeqSet{{Start: 1, Stop: wire.Star}}
	}
	maxUID := max(s.mb.UIDNext(), 2) - 1
	gone := clipRanges(s.mb.ExpungedSince(q.modseq), known, maxUID, s.view)
	gone = c.seqMatchTrim(gone, q)
	c.vanishedEarlier(gone)
	for _, m := range s.mb.ChangedSince(q.modseq) {
		seq := s.view.Seq(m.UID)
		if seq == 0 || !known.Contains(m.UID, maxUID) {
			continue
		}
		c.announce(m.Flags)
		fmt.Fprintf(c.bw, "* %d FETCH (UID %d FLAGS ", seq, m.UID)
		c.flags(m.UID, m.Flags)
		c.bw.WriteByte(' ')
		c.modseq(m.ModSeq)
		c.bw.WriteString(")\r\n")
	}
}

// seqMatchTrim uses the seq-match-data (RFC 7162 §3.2.5.2): the highest
// pair whose UID still has the client's sequence number shows that no
// message the client knew below it was expunged (new messages all come
// above the UIDs it knew), so the expunged UIDs up to it are dropped.
func (c *conn) seqMatchTrim(gone []UIDRange, q *qresyncParams) []UIDRange {
	var upTo uint32
	for i, u := range q.uids {
		if u > upTo && c.sel.view.Seq(u) == q.seqs[i] {
			upTo = u
		}
	}
	if upTo == 0 {
		return gone
	}
	var out []UIDRange
	for _, r := range gone {
		if r.Hi <= upTo {
			continue
		}
		out = append(out, UIDRange{max(r.Lo, upTo+1), r.Hi})
	}
	return out
}

// searchHasModSeq reports whether a search program uses MODSEQ.
func searchHasModSeq(k *wire.SearchKey) bool {
	if k.Op == "MODSEQ" {
		return true
	}
	return slices.ContainsFunc(k.Children, searchHasModSeq)
}
