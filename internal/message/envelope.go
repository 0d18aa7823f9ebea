package message

import "strings"

// Placeholders for the parts of an address that the header lacks, as
// Dovecot sends them: IMAP has no way to say "missing" inside an address,
// and a NIL host would mark a group (RFC 3501 §7.4.2).
const (
	MissingMailbox = "MISSING_MAILBOX"
	MissingDomain  = "MISSING_DOMAIN"
)

// Address is one IMAP address structure (RFC 3501 §7.4.2, RFC 9051
// §7.5.2). Strings are raw header text with quoting and folding removed;
// encoded-words in Name are kept as they are. "" stands for NIL.
//
// A group "name: a, b;" is a GroupStart address (Mailbox = the group name,
// Host = "", the rest empty), the members, then a GroupEnd address (all
// fields empty).
type Address struct {
	Name, Route, Mailbox, Host string
	GroupStart, GroupEnd       bool
}

// Envelope is the IMAP ENVELOPE of a message (RFC 3501 §7.4.2, RFC 9051
// §7.5.2). Strings are the raw, unfolded header values of the first field
// of each name, not RFC 2047-decoded; "" stands for NIL. Sender and
// ReplyTo are From when their fields are absent or empty.
type Envelope struct {
	Date, Subject         string
	From, Sender, ReplyTo []Address
	To, Cc, Bcc           []Address
	InReplyTo, MessageID  string
}

// Envelope returns the envelope of the message that p heads: for a
// message/rfc822 part the embedded message, otherwise the fields of p's
// own header (for the root part: the message's envelope).
func (p *Part) Envelope() Envelope {
	t := p
	if p.Embedded != nil {
		t = p.Embedded
	}
	if t.env != nil {
		return *t.env
	}
	if t.raw == nil {
		return Envelope{}
	}
	var l limiter
	return parseEnvelope(t.raw, int(t.HeaderStart), int(t.HeaderEnd), &l)
}

// parseEnvelope reads the envelope of the header raw[start:end], its
// strings and addresses charged to l.
func parseEnvelope(raw []byte, start, end int, l *limiter) Envelope {
	var e Envelope
	// Which fields have been seen: the first of each name counts.
	const (
		fDate = 1 << iota
		fSubject
		fFrom
		fSender
		fReplyTo
		fTo
		fCc
		fBcc
		fInReplyTo
		fMessageID
	)
	var seen uint16
	s := fieldScanner{raw: raw, pos: start, end: end}
	for {
		f, ok := s.next()
		if !ok {
			break
		}
		var bit uint16
		switch n := f.name; len(n) {
		case 2:
			if equalFoldASCII(n, "to") {
				bit = fTo
			} else if equalFoldASCII(n, "cc") {
				bit = fCc
			}
		case 3:
			if equalFoldASCII(n, "bcc") {
				bit = fBcc
			}
		case 4:
			if equalFoldASCII(n, "date") {
				bit = fDate
			} else if equalFoldASCII(n, "from") {
				bit = fFrom
			}
		case 6:
			if equalFoldASCII(n, "sender") {
				bit = fSender
			}
		case 7:
			if equalFoldASCII(n, "subject") {
				bit = fSubject
			}
		case 8:
			if equalFoldASCII(n, "reply-to") {
				bit = fReplyTo
			}
		case 10:
			if equalFoldASCII(n, "message-id") {
				bit = fMessageID
			}
		case 11:
			if equalFoldASCII(n, "in-reply-to") {
				bit = fInReplyTo
			}
		}
		if bit == 0 || seen&bit != 0 {
			continue
		}
		seen |= bit
		switch bit {
		case fDate:
			e.Date = unfoldCut(f.value, l)
		case fSubject:
			e.Subject = unfoldCut(f.value, l)
		case fFrom:
			e.From = parseAddressList(unfold(f.value), l)
		case fSender:
			e.Sender = parseAddressList(unfold(f.value), l)
		case fReplyTo:
			e.ReplyTo = parseAddressList(unfold(f.value), l)
		case fTo:
			e.To = parseAddressList(unfold(f.value), l)
		case fCc:
			e.Cc = parseAddressList(unfold(f.value), l)
		case fBcc:
			e.Bcc = parseAddressList(unfold(f.value), l)
		case fInReplyTo:
			e.InReplyTo = unfoldCut(f.value, l)
		case fMessageID:
			e.MessageID = unfoldCut(f.value, l)
		}
	}
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// addrToken is one lexical token of an address header.
type addrToken struct {
	kind  byte   // 'a' atom, 'q' quoted string, 'c' comment, 'd' domain literal, or the special itself
	text  string // unquoted text
	space bool   // white space or a comment came before it
}

// addrLexer walks an address header token by token (RFC 5322 §3.2),
// so that a field of millions of addresses is never held as tokens.
// Unterminated quoted strings, comments and domain literals run to the
// end. A quoted string keeps at most MaxStringBytes+4 bytes of its text.
type addrLexer struct {
	s     string
	i     int
	space bool
}

// next returns the next token; false at the end of the field.
func (x *addrLexer) next() (addrToken, bool) {
	s := x.s
	for x.i < len(s) {
		i := x.i
		c := s[i]
		space := x.space
		switch c {
		case ' ', '\t', '\r', '\n':
			x.space = true
			x.i++
			continue
		case '"':
			j := i + 1
			var b []byte
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				if len(b) < MaxStringBytes+4 {
					b = append(b, s[j])
				}
				j++
			}
			x.i, x.space = j+1, false
			return addrToken{kind: 'q', text: string(b), space: space}, true
		case '(':
			depth, j := 0, i
			for j < len(s) {
				if s[j] == '\\' && j+1 < len(s) {
					j += 2
					continue
				}
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
				j++
			}
			text := s[i+1 : min(j, len(s))]
			x.i, x.space = j+1, true
			return addrToken{kind: 'c', text: strings.TrimSpace(text), space: space}, true
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			x.i, x.space = i+j+1, false
			return addrToken{kind: 'd', text: s[i : i+j+1], space: space}, true
		case ')':
			// A stray close parenthesis: skip it.
			x.i++
			continue
		case '<', '>', '@', ',', ';', ':':
			x.i, x.space = i+1, false
			return addrToken{kind: c, text: s[i : i+1], space: space}, true
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\"()[<>@,;:", rune(s[j])) {
				j++
			}
			x.i, x.space = j, false
			return addrToken{kind: 'a', text: s[i:j], space: space}, true
		}
	}
	return addrToken{}, false
}

// ParseAddressList parses an address list (RFC 5322 §3.4) leniently into
// IMAP address structures. It never fails; what is not an address is
// skipped. ';' outside a group separates like ','. A group that is not
// closed is closed at the end. An address without a display name takes
// its last comment as the name ("a@b (Name)"). It returns at most
// MaxFieldAddresses addresses (a group cut short is closed) with strings
// of at most MaxStringBytes, and reads the field only as far as it needs.
func ParseAddressList(s string) []Address {
	var l limiter
	return parseAddressList(s, &l)
}

// parseAddressList is ParseAddressList charging the message's account:
// it stops at MaxFieldAddresses, at MaxAddresses for the whole account,
// and when the account's strings are full.
func parseAddressList(s string, l *limiter) []Address {
	var out []Address
	x := addrLexer{s: s}
	var seg []addrToken // the tokens of the address being read
	inGroup := false
	// special: seg has a '<' or '@' (a ':' then is no group start);
	// angle: inside <...>, where ',' and ';' do not separate.
	special, angle := false, false
	room := func() bool {
		switch {
		case len(out) >= MaxFieldAddresses:
			l.hit |= LimitFieldAddresses
		case l.addrs >= MaxAddresses:
			l.hit |= LimitAddresses
		case l.full():
			l.hit |= LimitStructureBytes
		default:
			return true
		}
		return false
	}
	// add appends a, charged to l; false, and nothing added, when no
	// more fit.
	add := func(a Address) bool {
		if !room() {
			return false
		}
		a.Name, a.Route, a.Mailbox, a.Host = l.str(a.Name), l.str(a.Route), l.str(a.Mailbox), l.str(a.Host)
		out = append(out, a)
		l.addrs++
		return true
	}
	// end ends the address in seg; false when no more fit.
	end := func() bool {
		if len(seg) > 0 {
			if a, ok := parseMailbox(seg); ok && !add(a) {
				return false
			}
		}
		seg, special, angle = seg[:0], false, false
		return true
	}
	// closeGroup ends the group being read, if any; false when no more
	// fit (the group stays open, to be closed at the end).
	closeGroup := func() bool {
		if inGroup && !add(Address{GroupEnd: true}) {
			return false
		}
		inGroup = false
		return true
	}
	full := false
	for t, ok := x.next(); ok && !full; t, ok = x.next() {
		switch {
		case len(seg) == 0 && t.kind == ',':
			continue
		case len(seg) == 0 && t.kind == ';':
			full = !closeGroup()
			continue
		case t.kind == ':' && !special:
			// A ':' before any '<', '@', ',', ';' starts a group.
			if !inGroup {
				full = !add(Address{Mailbox: phrase(seg), GroupStart: true})
				inGroup = !full
			}
			seg, special, angle = seg[:0], false, false
			continue
		case !angle && (t.kind == ',' || t.kind == ';'):
			full = !end() || t.kind == ';' && !closeGroup()
			continue
		case t.kind == '<':
			angle, special = true, true
		case t.kind == '>':
			angle = false
		case t.kind == '@':
			special = true
		}
		if len(seg) < maxAddressTokens {
			seg = append(seg, t)
		}
	}
	if !full {
		end()
	}
	if inGroup {
		// Closed even beyond the limits: one entry more keeps the
		// group well formed.
		out = append(out, Address{GroupEnd: true})
		l.addrs++
	}
	return out
}

// parseMailbox parses one mailbox: "[phrase] <[route:]addr-spec>" or
// "addr-spec".
func parseMailbox(toks []addrToken) (Address, bool) {
	var a Address
	comment := ""
	for _, t := range toks {
		if t.kind == 'c' && t.text != "" {
			comment = t.text
		}
	}
	lt := -1
	for i, t := range toks {
		if t.kind == '<' {
			lt = i
			break
		}
	}
	spec := toks
	if lt >= 0 {
		a.Name = phrase(toks[:lt])
		spec = toks[lt+1:]
		for i, t := range spec {
			if t.kind == '>' {
				spec = spec[:i]
				break
			}
		}
		// Obsolete source route: "@a,@b:" (RFC 5322 §4.4).
		if len(spec) > 0 && spec[0].kind == '@' {
			for i, t := range spec {
				if t.kind == ':' {
					a.Route = join(spec[:i], false)
					spec = spec[i+1:]
					break
				}
			}
		}
	}
	at := -1
	for i, t := range spec {
		if t.kind == '@' {
			at = i
			break
		}
	}
	if at >= 0 {
		a.Mailbox = join(spec[:at], true)
		a.Host = join(spec[at+1:], false)
	} else {
		a.Mailbox = join(spec, true)
	}
	if a.Name == "" {
		a.Name = comment
	}
	if a.Mailbox == "" && a.Host == "" && lt < 0 {
		return a, false
	}
	if a.Mailbox == "" {
		a.Mailbox = MissingMailbox
	}
	if a.Host == "" {
		a.Host = MissingDomain
	}
	return a, true
}

// phrase joins the words of a display name with single spaces; comments
// are dropped.
func phrase(toks []addrToken) string {
	return join(toks, true)
}

// join concatenates token texts, skipping comments; with spaced it keeps
// one space where white space separated two tokens.
func join(toks []addrToken, spaced bool) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == 'c' {
			continue
		}
		if spaced && t.space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}
