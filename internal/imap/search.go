package imap

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// SEARCH and UID SEARCH — RFC 9051 §6.4.4 and RFC 3501 §6.4.4, with
// RETURN options (ESEARCH, RFC 4731) and SAVE (SEARCHRES, RFC 5182).
// State: selected. Text keys match case-insensitively on decoded
// headers and text (message.HeaderContains, BodyContains). Charsets:
// UTF-8 and US-ASCII. No EXPUNGE during a SEARCH by sequence number.
//
// Without RETURN the answer is "* SEARCH"; with it, "* ESEARCH" (none
// for RETURN (SAVE) alone, RFC 5182 §2.2). The saved result is kept as
// UIDs, so that "$" still names the same messages after expunges.
//
// MODSEQ n (RFC 7162 §3.1.5) matches the messages whose MODSEQ is n or
// more; with an entry name ("/flags/\\Seen" all n) the message's MODSEQ
// stands in for the flag's, which is not kept (as Dovecot does). A
// SEARCH that uses MODSEQ enables CONDSTORE, and its answer carries the
// highest MODSEQ of the messages it returns: "(MODSEQ m)" after SEARCH's
// numbers, "MODSEQ m" in ESEARCH (of the MIN and MAX messages when only
// those are asked for, RFC 4731 §3.2); none when nothing matched.
func cmdSearch(c *conn, tag string, uid bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	cmd, err := c.dec.Search(c.utf8)
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	res := c.sel
	withModSeq := searchHasModSeq(cmd.Key)
	if withModSeq {
		c.enableCondstore()
	}
	hits, mods, err := c.searchHits(cmd, uid)
	if err != nil {
		var we *wire.Error
		if slices.Contains(cmd.Return, "SAVE") && !errors.As(err, &we) {
			// RFC 5182 §2.1: a SEARCH with SAVE answered NO empties the
			// saved result; one answered BAD leaves it alone.
			res.searchRes = nil
		}
		return err
	}
	if !cmd.ReturnGiven && c.rev2 {
		// IMAP4rev2 has no SEARCH response: a plain SEARCH is RETURN
		// (ALL) (RFC 9051 §6.4.4).
		c.esearch(tag, uid, searchReturn([]string{"ALL"}), hits, modseqOf(withModSeq, mods))
	} else if !cmd.ReturnGiven {
		c.bw.WriteString("* SEARCH")
		for _, h := range hits {
			c.bw.WriteString(" " + strconv.FormatUint(uint64(h), 10))
		}
		if withModSeq && len(hits) > 0 {
			fmt.Fprintf(c.bw, " (MODSEQ %d)", slices.Max(mods))
		}
		c.bw.WriteString("\r\n")
	} else {
		opts := searchReturn(cmd.Return)
		if opts.save {
			res.searchRes = savedResult(opts, hits, uid, res.view)
		}
		if opts.min || opts.max || opts.all || opts.count {
			c.esearch(tag, uid, opts, hits, modseqOf(withModSeq, mods))
		}
	}
	if err := c.updates(uid); err != nil {
		return err
	}
	return c.ok(tag, "", "SEARCH completed")
}

// searchHits evaluates the search program over the view and returns the
// matching sequence numbers, or UIDs with uid, ascending, and the MODSEQ
// of each.
func (c *conn) searchHits(cmd *wire.SearchCommand, uid bool) ([]uint32, []uint64, error) {
	if cs := strings.ToUpper(cmd.Charset); cs != "" && cs != "UTF-8" && cs != "US-ASCII" {
		return nil, nil, no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset")
	}
	s := c.sel
	ev := &evaluator{c: c, flags: currentFlags(s.mb)}
	defer ev.done()
	var hits []uint32
	var mods []uint64
	for i, u := range s.view.UIDs() {
		ev.reset(uint32(i+1), u)
		ok, err := ev.match(cmd.Key)
		if errors.Is(err, ErrNoSuchMessageErr) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if ok {
			m, _ := ev.flags.get(u)
			mods = append(mods, m.ModSeq)
			if uid {
				hits = append(hits, u)
			} else {
				hits = append(hits, uint32(i+1))
			}
		}
	}
	return hits, mods, nil
}

// modseqOf is what ESEARCH's MODSEQ is taken from: the MODSEQs of the
// hits when the search used MODSEQ, nil otherwise.
func modseqOf(withModSeq bool, mods []uint64) []uint64 {
	if !withModSeq {
		return nil
	}
	return mods
}

// returnOpts are the RETURN options of a SEARCH (RFC 4731 §3.1, RFC
// 5182 §2.2).
type returnOpts struct{ min, max, all, count, save bool }

// searchReturn reads RETURN options; "RETURN ()" means ALL (RFC 4731
// §3.1), and so does "RETURN (SAVE)" for what is saved.
func searchReturn(opts []string) returnOpts {
	var r returnOpts
	for _, o := range opts {
		switch o {
		case "MIN":
			r.min = true
		case "MAX":
			r.max = true
		case "ALL":
			r.all = true
		case "COUNT":
			r.count = true
		case "SAVE":
			r.save = true
		}
	}
	if len(opts) == 0 {
		r.all = true
	}
	return r
}

// savedResult is what SAVE keeps, as UIDs: RFC 5182 §2.4 keeps only the
// minimum and/or maximum when MIN and/or MAX come without ALL or COUNT,
// and the whole result otherwise.
func savedResult(o returnOpts, hits []uint32, uid bool, v *View) []uint32 {
	keep := hits
	if (o.min || o.max) && !o.all && !o.count && len(hits) > 0 {
		keep = nil
		if o.min {
			keep = append(keep, hits[0])
		}
		if o.max && (!o.min || len(hits) > 1) {
			keep = append(keep, hits[len(hits)-1])
		}
	}
	out := make([]uint32, 0, len(keep))
	for _, h := range keep {
		if !uid {
			h = v.UID(h)
		}
		out = append(out, h)
	}
	return out
}

// esearch writes the ESEARCH response (RFC 4731 §3.1): MIN, MAX and ALL
// are left out when nothing matched; COUNT is always there when asked.
// mods, when not nil, are the hits' MODSEQs: MODSEQ is the highest of
// those returned (RFC 7162 §3.1.5, RFC 4731 §3.2).
func (c *conn) esearch(tag string, uid bool, o returnOpts, hits []uint32, mods []uint64) {
	c.bw.WriteString("* ESEARCH (TAG ")
	c.enc.String(tag)
	c.bw.WriteString(")")
	if uid {
		c.bw.WriteString(" UID")
	}
	if len(hits) > 0 {
		if o.min {
			fmt.Fprintf(c.bw, " MIN %d", hits[0])
		}
		if o.max {
			fmt.Fprintf(c.bw, " MAX %d", hits[len(hits)-1])
		}
		if o.all {
			c.bw.WriteString(" ALL " + uidSet(hits))
		}
	}
	if o.count {
		fmt.Fprintf(c.bw, " COUNT %d", len(hits))
	}
	if mods != nil && len(hits) > 0 {
		var m uint64
		switch {
		case o.all || o.count:
			m = slices.Max(mods)
		default:
			if o.min {
				m = mods[0]
			}
			if o.max {
				m = max(m, mods[len(mods)-1])
			}
		}
		fmt.Fprintf(c.bw, " MODSEQ %d", m)
	}
	c.bw.WriteString("\r\n")
}

// evaluator matches one message at a time, reading only what the keys
// need: flags from the view's snapshot, size and date from Stat, the
// message itself for header and text keys.
type evaluator struct {
	c     *conn
	flags flagSnapshot

	seq, uid uint32
	info     *MessageInfo
	msg      *message.Message
	release  func() // gives msg's bytes back to the budget; nil without msg

	sets map[*wire.SearchKey][]uint32 // the UIDs of each set key, resolved once
}

// setUIDs is the UIDs a sequence-set or UID key names in the view,
// resolved on first use: the view does not change during a SEARCH.
func (ev *evaluator) setUIDs(k *wire.SearchKey) []uint32 {
	if uids, ok := ev.sets[k]; ok {
		return uids
	}
	if ev.sets == nil {
		ev.sets = make(map[*wire.SearchKey][]uint32)
	}
	uids := ev.c.searchUIDs(k.Seq, k.Op == "UID")
	ev.sets[k] = uids
	return uids
}

func (ev *evaluator) reset(seq, uid uint32) {
	ev.done()
	ev.seq, ev.uid, ev.info, ev.msg = seq, uid, nil, nil
}

// done drops the message read for the current one and gives its bytes
// back to the response memory budget.
func (ev *evaluator) done() {
	ev.msg = nil
	if ev.release != nil {
		ev.release()
		ev.release = nil
	}
}

func (ev *evaluator) stat() (*MessageInfo, error) {
	if ev.info == nil {
		info, err := ev.c.sel.mb.Stat(ev.c.ctx, ev.uid)
		if err != nil {
			return nil, err
		}
		ev.info = &info
	}
	return ev.info, nil
}

func (ev *evaluator) message() (*message.Message, error) {
	if ev.msg == nil {
		n, err := ev.c.readCost(ev.uid, false)
		if err != nil {
			return nil, err
		}
		release, err := ev.c.reserve(n)
		if err != nil {
			return nil, err
		}
		raw, _, err := ev.c.sel.mb.Open(ev.c.ctx, ev.uid)
		if err != nil {
			release()
			return nil, err
		}
		ev.release = release
		ev.msg = message.Parse(raw)
	}
	return ev.msg, nil
}

// recent reports whether the message is recent in this session.
func (ev *evaluator) recent() bool { return ev.c.sel.isRecent(ev.uid) }

func (ev *evaluator) has(flag string) bool {
	m, _ := ev.flags.get(ev.uid)
	return hasFlag(m.Flags, flag)
}

// noSentDate is the sent date SENT* give a message without a readable
// Date: field.
var noSentDate = time.Unix(0, 0).UTC()

// day is the calendar day of t in its own zone (RFC 9051: dates
// disregard time and timezone).
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (ev *evaluator) match(k *wire.SearchKey) (bool, error) {
	switch k.Op {
	case "AND":
		for _, ch := range k.Children {
			ok, err := ev.match(ch)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "OR":
		ok, err := ev.match(k.Children[0])
		if err != nil || ok {
			return ok, err
		}
		return ev.match(k.Children[1])
	case "NOT":
		ok, err := ev.match(k.Children[0])
		return !ok, err
	case "ALL":
		return true, nil
	case "SEQSET", "UID":
		return containsUID(ev.setUIDs(k), ev.uid), nil
	case "ANSWERED":
		return ev.has(`\Answered`), nil
	case "DELETED":
		return ev.has(`\Deleted`), nil
	case "DRAFT":
		return ev.has(`\Draft`), nil
	case "FLAGGED":
		return ev.has(`\Flagged`), nil
	case "SEEN":
		return ev.has(`\Seen`), nil
	case "UNANSWERED":
		return !ev.has(`\Answered`), nil
	case "UNDELETED":
		return !ev.has(`\Deleted`), nil
	case "UNDRAFT":
		return !ev.has(`\Draft`), nil
	case "UNFLAGGED":
		return !ev.has(`\Flagged`), nil
	case "UNSEEN":
		return !ev.has(`\Seen`), nil
	case "RECENT":
		return ev.recent(), nil
	case "NEW": // RFC 3501 §6.4.4: RECENT UNSEEN
		return ev.recent() && !ev.has(`\Seen`), nil
	case "OLD":
		return !ev.recent(), nil
	case "KEYWORD":
		return ev.has(k.Str), nil
	case "MODSEQ":
		m, ok := ev.flags.get(ev.uid)
		return ok && m.ModSeq >= k.Num, nil
	case "UNKEYWORD":
		return !ev.has(k.Str), nil
	case "LARGER", "SMALLER":
		info, err := ev.stat()
		if err != nil {
			return false, err
		}
		if k.Op == "LARGER" {
			return uint64(info.Size) > k.Num, nil
		}
		return uint64(info.Size) < k.Num, nil
	case "BEFORE", "ON", "SINCE":
		info, err := ev.stat()
		if err != nil {
			return false, err
		}
		return compareDay(k.Op, day(info.InternalDate), k.Date), nil
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		m, err := ev.message()
		if err != nil {
			return false, err
		}
		d, ok := m.Date()
		if !ok {
			// No Date: field, or one that cannot be read (31 Feb
			// included): Dovecot's index-search takes the sent date
			// as 0, 1-Jan-1970 UTC; so do we, so that SENTBEFORE
			// finds such a message in both.
			d = noSentDate
		}
		return compareDay(strings.TrimPrefix(k.Op, "SENT"), day(d), k.Date), nil
	case "FROM", "TO", "CC", "BCC", "SUBJECT":
		m, err := ev.message()
		if err != nil {
			return false, err
		}
		return m.HeaderContains(k.Op, k.Str), nil
	case "HEADER":
		m, err := ev.message()
		if err != nil {
			return false, err
		}
		if k.Str == "" {
			return len(m.HeaderValues(k.Field)) > 0, nil
		}
		return m.HeaderContains(k.Field, k.Str), nil
	case "BODY":
		m, err := ev.message()
		if err != nil {
			return false, err
		}
		return m.BodyContains(k.Str), nil
	case "EMAILID", "THREADID": // RFC 8474 §6
		return ev.objectID(k.Op, k.Str)
	case "TEXT":
		m, err := ev.message()
		if err != nil {
			return false, err
		}
		return m.HeaderContains("", k.Str) || m.BodyContains(k.Str), nil
	}
	return false, &wire.Error{Msg: "unsupported search key " + k.Op}
}

func compareDay(op string, d, want time.Time) bool {
	want = day(want)
	switch op {
	case "BEFORE":
		return d.Before(want)
	case "ON":
		return d.Equal(want)
	}
	return !d.Before(want) // SINCE
}

func init() { register("SEARCH", selected_, true, cmdSearch) }
