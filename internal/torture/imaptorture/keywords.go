package imaptorture

import (
	"fmt"
	"strings"
	"time"
)

// Keyword floods. A Maildir mailbox has 26 keyword letters (a–z in the
// file name, named by dovecot-keywords), and a server may refuse a
// STORE that needs more (NO [LIMIT]). A NO means not done: the refused
// STORE must not have defined any of its keywords either, or the
// mailbox has lost letters for good and a later STORE of one new
// keyword, well within the limit, is refused. A session sometimes sends
// such a flood, floodKeywords new keywords at once, each named nowhere
// else; the ledger remembers them, and a keyword of a refused flood
// that the server later shows (in a FLAGS response, the keywords the
// mailbox defines, or on a message in a FETCH) is a refused_but_done.

// floodKeywords is how many new keywords a flood stores at once: more
// than a Maildir mailbox's 26 letters, so that a server on Maildir
// cannot take them all.
const floodKeywords = 30

// flood is one keyword flood: a STORE of keywords nobody else names.
type flood struct {
	who, line string
	sent      time.Duration
	refused   bool
	reply     string // the tagged response; "" while unanswered
}

// floodNames returns the floodKeywords keywords of flood number n of
// session who.
func (l *ledger) floodNames(who string, n int) []string {
	names := make([]string, floodKeywords)
	for i := range names {
		names[i] = fmt.Sprintf("$Flood%s-%s-%d-%d", l.runID, strings.ReplaceAll(who, " ", ""), n, i)
	}
	return names
}

// floodSent records a flood of names that who is about to send as line.
func (l *ledger) floodSent(who, line string, names []string, at time.Duration) *flood {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.floods == nil {
		l.floods = make(map[string]*flood)
	}
	f := &flood{who: who, line: line, sent: at}
	for _, n := range names {
		l.floods[strings.ToLower(n)] = f
	}
	return f
}

// floodAnswered records the answer to f: resp is its tagged response,
// nil with err when none came.
func (l *ledger) floodAnswered(f *flood, resp *Response, err error) {
	if f == nil || err != nil || resp == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f.reply = resp.Line
	f.refused = resp.Type != "OK"
}

// keywordsShown checks the keywords (flags) that session who was shown
// at at by line (a FLAGS response, or a FETCH of uid, 0 for FLAGS): one
// that only a refused flood named is a refused_but_done.
func (l *ledger) keywordsShown(flags []string, uid uint32, who, cmd, line string, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.floods == nil {
		return
	}
	for _, name := range flags {
		f := l.floods[strings.ToLower(name)]
		if f == nil || !f.refused {
			continue
		}
		where := "the mailbox's FLAGS list"
		if uid != 0 {
			where = fmt.Sprintf("the flags of UID %d", uid)
		}
		l.rec.violation("flood|"+f.line, Violation{Kind: RefusedButDone, At: at.Seconds(), Session: who, Command: cmd,
			Detail:   fmt.Sprintf("keyword %s, which only a STORE the server refused named, is in %s: the refused STORE used keyword room all the same", name, where),
			Evidence: []string{"seen: " + line, fmt.Sprintf("refused: %.3fs %s: %.120s → %s", f.sent.Seconds(), f.who, f.line, f.reply)}})
		return
	}
}

// opKeywordFlood stores a flood of new keywords on one message, without
// .SILENT: what the server did is told by untagged FETCH either way.
func (s *session) opKeywordFlood() error {
	uids := s.pick(1)
	if uids == nil {
		return s.opNoop()
	}
	if err := s.writable(); err != nil {
		return err
	}
	s.floods++
	names := s.r.led.floodNames(s.name, s.floods)
	line := fmt.Sprintf("UID STORE %d +FLAGS (%s)", uids[0], strings.Join(names, " "))
	f := s.r.led.floodSent(s.name, line, names, s.r.now())
	resp, err := s.do("STORE keywords", line, curCmd{flagsTold: make(map[uint32]bool)})
	s.r.led.floodAnswered(f, resp, err)
	return err
}
