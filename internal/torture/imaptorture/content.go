package imaptorture

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// contentBudget bounds the message bytes the ledger keeps to judge
// partial FETCHes (BODY[]<o.n>); past it, only digests are kept, and
// whole sections are still judged.
const contentBudget = 32 << 20

// section is what the run knows of one part of a message (the whole
// message, or its text): its size and digest always, its bytes while
// the ledger's budget lasts.
type section struct {
	known bool
	size  int
	sum   [sha256.Size]byte
	data  []byte // nil: not kept
}

func (s *section) set(data []byte, keep bool) {
	s.known, s.size, s.sum = true, len(data), sha256.Sum256(data)
	if keep {
		s.data = data
	}
}

// matches reports whether got is the whole section.
func (s *section) matches(got []byte) bool {
	return len(got) == s.size && sha256.Sum256(got) == s.sum
}

// content is what the run knows of a message's bytes, as a client must
// be given them: with CRLF line ends (RFC 9051 §2.3.1's octets of
// RFC 5322 form), whatever line ends the file has.
type content struct {
	whole section // unknown for LMTP: the server adds trace fields
	text  section // the body after the header's empty line
}

// wrote records the bytes of message id, with CRLF line ends: the whole
// message when the server stores what it was given (APPEND, a file
// written into the Maildir), else (LMTP, which adds trace header
// fields) only its text.
func (l *ledger) wrote(id string, msg []byte, whole bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs[id]
	if m == nil {
		return
	}
	keep := l.contentKept+len(msg) <= contentBudget
	if keep {
		l.contentKept += len(msg)
	}
	c := &content{}
	if whole {
		c.whole.set(msg, keep)
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		c.text.set(msg[i+4:], keep)
	}
	m.content = c
}

// contentOf returns what the run knows of the bytes of the message uid
// names; nil when it knows nothing.
func (l *ledger) contentOf(uid uint32) *content {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.byUID[uid]
	if m := l.msgs[id]; m != nil {
		return m.content
	}
	return nil
}

// checkSections judges the body sections and RFC822.SIZE of a FETCH of
// uid against the bytes the run gave the message (body_wrong).
func (s *session) checkSections(uid uint32, f *FetchData, at time.Duration, line string) {
	if len(f.Sections) == 0 && !f.HasSize {
		return
	}
	c := s.r.led.contentOf(uid)
	if c == nil {
		return
	}
	if f.MessageID != "" && f.MessageID != s.r.led.idOf(uid) {
		return // another message: a uid_change, judged by checkContent
	}
	wrong := func(format string, args ...any) {
		s.violation(BodyWrong, at, fmt.Sprintf("UID %d: ", uid)+fmt.Sprintf(format, args...), line)
	}
	if f.HasSize && c.whole.known && f.Size != int64(c.whole.size) {
		wrong("RFC822.SIZE %d, but the message has %d octets", f.Size, c.whole.size)
	}
	for _, sec := range f.Sections {
		var want *section
		switch sec.Name {
		case "BODY[]", "RFC822":
			want = &c.whole
		case "BODY[TEXT]", "RFC822.TEXT":
			want = &c.text
		default:
			continue
		}
		switch {
		case !want.known:
		case sec.Origin < 0:
			if !want.matches(sec.Data) {
				wrong("%s is %d octets that are not the message's %d (%s)", sec.Name, len(sec.Data), want.size, firstDifference(want.data, sec.Data))
			}
		case want.data != nil && s.cur.partial > 0:
			lo := min(sec.Origin, len(want.data))
			hi := min(lo+s.cur.partial, len(want.data))
			if !bytes.Equal(sec.Data, want.data[lo:hi]) {
				wrong("%s<%d> is %d octets, not octets %d to %d of the message's %d (%s)", sec.Name, sec.Origin, len(sec.Data), lo, hi, want.size, firstDifference(want.data[lo:hi], sec.Data))
			}
		}
	}
}

// firstDifference says where got first differs from want, for evidence;
// "" when want's bytes were not kept.
func firstDifference(want, got []byte) string {
	if want == nil {
		return "only its digest was kept"
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	at := func(b []byte) string {
		if i >= len(b) {
			return "the end"
		}
		return strconv.Quote(string(b[i:min(i+12, len(b))]))
	}
	return fmt.Sprintf("from octet %d: %s where %s was due", i, at(got), at(want))
}

// bareLF is msg with every CRLF made LF: a file as procmail or an MTA
// that stores Unix line ends writes it.
func bareLF(msg []byte) []byte {
	return []byte(strings.ReplaceAll(string(msg), "\r\n", "\n"))
}
