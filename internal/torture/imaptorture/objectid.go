package imaptorture

import (
	"fmt"
	"sync"
	"time"
)

// emailIDBook keeps every EMAILID (RFC 8474 §5.1) a session was told in
// the mailbox under test, by message (Message-ID), and judges each new
// one. What it can claim of any server, and so all it claims: one message
// has one EMAILID for as long as it exists (RFC 8474 §5.1: it MUST NOT
// change), and two messages of different content (every message of the
// run has a Message-ID of its own) never share one. The mailbox under
// test holds no COPY or MOVE copies (their target is Aux), so every
// message there is an original: whether a copy keeps its message's
// EMAILID is a SHOULD, and a server keeps it only where its store lets
// it (a second copy into one Maildir mailbox cannot), so the book does
// not judge copies.
type emailIDBook struct {
	mu    sync.Mutex
	byMsg map[string]emailIDTold // Message-ID → the first EMAILID told for it
	byID  map[string]emailIDTold // EMAILID → the first message told with it
}

type emailIDTold struct {
	msgID, emailID string
	uid            uint32
	session        string
	line           string
}

// told judges the EMAILID id that s was told for uid, whose message the
// ledger knows (a UID not learned yet is not judged).
func (b *emailIDBook) told(s *session, uid uint32, id string, at time.Duration, line string) {
	msgID := s.r.led.idOf(uid)
	if msgID == "" {
		return
	}
	t := emailIDTold{msgID: msgID, emailID: id, uid: uid, session: s.name, line: line}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byMsg == nil {
		b.byMsg, b.byID = make(map[string]emailIDTold), make(map[string]emailIDTold)
	}
	if was, ok := b.byMsg[msgID]; ok && was.emailID != id {
		s.r.rec.violation("", Violation{Kind: ObjectIDWrong, At: at.Seconds(), Session: s.name, Command: s.cur.line,
			Detail:   fmt.Sprintf("message %s (UID %d) has EMAILID %s; %s was told %s for it (UID %d)", msgID, uid, id, was.session, was.emailID, was.uid),
			Evidence: []string{was.line, line}})
	} else if !ok {
		b.byMsg[msgID] = t
	}
	if was, ok := b.byID[id]; ok && was.msgID != msgID {
		s.r.rec.violation("", Violation{Kind: ObjectIDWrong, At: at.Seconds(), Session: s.name, Command: s.cur.line,
			Detail:   fmt.Sprintf("messages %s (UID %d) and %s (UID %d) share EMAILID %s", msgID, uid, was.msgID, was.uid, id),
			Evidence: []string{was.line, line}})
	} else if !ok {
		b.byID[id] = t
	}
}
