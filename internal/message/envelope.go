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
	return parseEnvelope(t.raw, int(t.HeaderStart), int(t.HeaderEnd))
}

func parseEnvelope(raw []byte, start, end int) Envelope {
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
		v := unfold(f.value)
		switch bit {
		case fDate:
			e.Date = v
		case fSubject:
			e.Subject = v
		case fFrom:
			e.From = ParseAddressList(v)
		case fSender:
			e.Sender = ParseAddressList(v)
		case fReplyTo:
			e.ReplyTo = ParseAddressList(v)
		case fTo:
			e.To = ParseAddressList(v)
		case fCc:
			e.Cc = ParseAddressList(v)
		case fBcc:
			e.Bcc = ParseAddressList(v)
		case fInReplyTo:
			e.InReplyTo = v
		case fMessageID:
			e.MessageID = v
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

// tokenizeAddresses splits an address header into tokens (RFC 5322 §3.2).
// Unterminated quoted strings, comments and domain literals run to the end.
func tokenizeAddresses(s string) []addrToken {
	toks := make([]addrToken, 0, 8)
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			space = true
			i++
			continue
		case '"':
			j := i + 1
			var b []byte
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b = append(b, s[j])
				j++
			}
			toks = append(toks, addrToken{kind: 'q', text: string(b), space: space})
			i = j + 1
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
			toks = append(toks, addrToken{kind: 'c', text: strings.TrimSpace(text), space: space})
			i = j + 1
			space = true
			continue
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, addrToken{kind: 'd', text: s[i : i+j+1], space: space})
			i += j + 1
		case ')':
			// A stray close parenthesis: skip it.
			i++
			continue
		case '<', '>', '@', ',', ';', ':':
			toks = append(toks, addrToken{kind: c, text: s[i : i+1], space: space})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\"()[<>@,;:", rune(s[j])) {
				j++
			}
			toks = append(toks, addrToken{kind: 'a', text: s[i:j], space: space})
			i = j
		}
		space = false
	}
	return toks
}

// ParseAddressList parses an address list (RFC 5322 §3.4) leniently into
// IMAP address structures. It never fails; what is not an address is
// skipped. ';' outside a group separates like ','. A group that is not
// closed is closed at the end. An address without a display name takes
// its last comment as the name ("a@b (Name)").
func ParseAddressList(s string) []Address {
	toks := tokenizeAddresses(s)
	var out []Address
	inGroup := false
	for i := 0; i < len(toks); {
		switch toks[i].kind {
		case ',':
			i++
			continue
		case ';':
			if inGroup {
				out = append(out, Address{GroupEnd: true})
				inGroup = false
			}
			i++
			continue
		}
		// A ':' before any '<', '@', ',', ';' starts a group.
		j := i
		for j < len(toks) && !strings.ContainsRune("<@,;:", rune(toks[j].kind)) {
			j++
		}
		if j < len(toks) && toks[j].kind == ':' {
			if !inGroup {
				out = append(out, Address{Mailbox: phrase(toks[i:j])})
				out[len(out)-1].GroupStart = true
				inGroup = true
			}
			i = j + 1
			continue
		}
		// One address: up to ',' or ';' outside angle brackets.
		j = i
		angle := false
		for j < len(toks) {
			k := toks[j].kind
			if k == '<' {
				angle = true
			} else if k == '>' {
				angle = false
			} else if !angle && (k == ',' || k == ';') {
				break
			}
			j++
		}
		if a, ok := parseMailbox(toks[i:j]); ok {
			out = append(out, a)
		}
		i = j
	}
	if inGroup {
		out = append(out, Address{GroupEnd: true})
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
