package message

import "bytes"

// MaxThreadRootBytes is the longest thread root kept (a msg-id, RFC 5322
// §3.6.4, brackets included): the longest line RFC 5322 §2.1.1 allows.
// A longer id counts as absent.
const MaxThreadRootBytes = 998

// threadRoot returns the msg-id that names the thread of the message
// whose header is raw[start:end] (RFC 8474 THREADID): the first id of
// References, which RFC 5322 §3.6.4 makes the thread's first message;
// else the first of In-Reply-To, the parent; else the message's own
// Message-ID, which makes it a thread's first message. "" when the
// header has none of them. Ids are "<left@right>" with white space and
// folding removed, compared as bytes.
func threadRoot(raw []byte, start, end int) string {
	var refs, reply, own []byte
	var seen uint8
	s := fieldScanner{raw: raw, pos: start, end: end}
	for {
		f, ok := s.next()
		if !ok {
			break
		}
		var bit uint8
		switch {
		case equalFoldASCII(f.name, "references"):
			bit = 1
		case equalFoldASCII(f.name, "in-reply-to"):
			bit = 2
		case equalFoldASCII(f.name, "message-id"):
			bit = 4
		}
		if bit == 0 || seen&bit != 0 {
			continue // the first of each name counts, as for the envelope
		}
		seen |= bit
		switch bit {
		case 1:
			refs = f.value
		case 2:
			reply = f.value
		case 4:
			own = f.value
		}
	}
	for _, v := range [][]byte{refs, reply, own} {
		if id := firstMsgID(v); id != "" {
			return id
		}
	}
	return ""
}

// firstMsgID returns the first "<...>" of v with white space removed,
// or "" when v has none with something between the brackets, or it is
// longer than MaxThreadRootBytes.
func firstMsgID(v []byte) string {
	i := bytes.IndexByte(v, '<')
	if i < 0 {
		return ""
	}
	j := bytes.IndexByte(v[i:], '>')
	if j < 0 {
		return ""
	}
	id := make([]byte, 0, j+1)
	for _, b := range v[i : i+j+1] {
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			id = append(id, b)
		}
	}
	if len(id) <= 2 || len(id) > MaxThreadRootBytes {
		return ""
	}
	return string(id)
}
