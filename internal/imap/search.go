package imap

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// SEARCH and UID SEARCH — RFC 9051 §6.4.4 and RFC 3501 §6.4.4. State:
// selected. Text keys match case-insensitively on decoded headers and
// text (message.HeaderContains, BodyContains). Charsets: UTF-8 and
// US-ASCII. No EXPUNGE during a SEARCH by sequence number.
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
	if cmd.ReturnGiven {
		return &wire.Error{Msg: "SEARCH RETURN is not supported"}
	}
	if cs := strings.ToUpper(cmd.Charset); cs != "" && cs != "UTF-8" && cs != "US-ASCII" {
		return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset")
	}
	s := c.sel
	ev := &evaluator{c: c, flags: currentFlags(s.mb)}
	var hits []uint32
	for i, u := range s.view.UIDs() {
		ev.reset(uint32(i+1), u)
		ok, err := ev.match(cmd.Key)
		if errors.Is(err, ErrNoSuchMessageErr) {
			continue
		}
		if err != nil {
			return err
		}
		if ok {
			if uid {
				hits = append(hits, u)
			} else {
				hits = append(hits, uint32(i+1))
			}
		}
	}
	c.bw.WriteString("* SEARCH")
	for _, h := range hits {
		c.bw.WriteString(" " + strconv.FormatUint(uint64(h), 10))
	}
	c.bw.WriteString("\r\n")
	if err := c.updates(uid); err != nil {
		return err
	}
	return c.ok(tag, "", "SEARCH completed")
}

// evaluator matches one message at a time, reading only what the keys
// need: flags from the view's snapshot, size and date from Stat, the
// message itself for header and text keys.
type evaluator struct {
	c     *conn
	flags map[uint32][]string

	seq, uid uint32
	info     *MessageInfo
	msg      *message.Message
}

func (ev *evaluator) reset(seq, uid uint32) {
	ev.seq, ev.uid, ev.info, ev.msg = seq, uid, nil, nil
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
		raw, _, err := ev.c.sel.mb.Open(ev.c.ctx, ev.uid)
		if err != nil {
			return nil, err
		}
		ev.msg = message.Parse(raw)
	}
	return ev.msg, nil
}

func (ev *evaluator) has(flag string) bool { return hasFlag(ev.flags[ev.uid], flag) }

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
		uids, err := ev.c.uids(k.Seq, k.Op == "UID")
		if err != nil {
			return false, err
		}
		return containsUID(uids, ev.uid), nil
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
	case "RECENT", "NEW":
		return false, nil // \Recent is never set
	case "OLD":
		return true, nil
	case "KEYWORD":
		return ev.has(k.Str), nil
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
			return false, nil
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
