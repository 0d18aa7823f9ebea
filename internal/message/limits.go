package message

import (
	"strings"
	"unicode/utf8"
)

// Limits on what one message's ENVELOPE and BODYSTRUCTURE can hold,
// whatever the message (see also MaxDepth and MaxParts). A message
// delivered by anyone is parsed when its owner's client fetches it, so
// without them a 60 MB To: field of 15 million addresses costs gigabytes
// and a response of hundreds of megabytes. Beyond a limit the answer is
// what RFC 9051 lets a server give: the addresses parsed so far (the list
// cut), a string cut at a UTF-8 boundary, the parameters read so far; the
// Structure records which limit was hit (Structure.Limited) so that the
// server can log the message once.
const (
	// MaxFieldAddresses is the most addresses (group markers included)
	// read from one address field. Mailing-list and announcement To:
	// lines of a few thousand addresses are real; ten thousand is not a
	// list any client shows.
	MaxFieldAddresses = 10000

	// MaxAddresses is the most addresses in one Structure, over all its
	// envelopes together (the root's and those of every message/rfc822
	// part), so that MaxParts embedded messages with a big envelope each
	// do not multiply MaxFieldAddresses.
	MaxAddresses = 20000

	// MaxStringBytes is the longest string of an envelope or a part
	// (Subject, Message-ID, a display name, a parameter value, a
	// Content-Description...). RFC 5322 lines hold 998 octets; a folded
	// Subject or an RFC 2231 file name of several lines stays far below.
	MaxStringBytes = 16 << 10

	// MaxTokenBytes is the longest MIME type, subtype or transfer
	// encoding kept: RFC 6838 §4.2 allows 127 characters.
	MaxTokenBytes = 127

	// MaxMessageParams is the most Content-Type and Content-Disposition
	// parameters kept over all parts of a message (each field keeps at
	// most 100, see maxParams). A real part has a handful.
	MaxMessageParams = 10000

	// MaxStructureBytes bounds the bytes of all strings of a Structure
	// together: envelopes, addresses, parameters, part fields. MaxAddresses
	// real addresses of ~60 bytes take 1.2 MB; once the total is reached,
	// further addresses are left out and further strings are empty (NIL).
	MaxStructureBytes = 4 << 20

	// MaxEncodedStructure is an upper bound on the IMAP encoding of one
	// message's ENVELOPE or BODYSTRUCTURE (about 42 MB; a real message
	// takes a few KiB): every string at most doubled by quoting or framed
	// as a literal, From written up to three times (as Sender and Reply-To
	// when those are absent), the MIME tokens of every part, plus 48 bytes
	// of parentheses and NILs per address and 256 of numbers and NILs per
	// part. One FETCH response line for such an item never exceeds it.
	MaxEncodedStructure = 2*maxCachedBytes + maxCachedAddresses*48 + maxCachedParts*256 + maxCachedParams*16
)

// maxAddressTokens bounds the tokens kept for one address: a display name
// of more words than this is cut.
const maxAddressTokens = 1024

// Limit names the limits a Structure hit, as bits.
type Limit uint8

const (
	LimitFieldAddresses Limit = 1 << iota // MaxFieldAddresses
	LimitAddresses                        // MaxAddresses
	LimitString                           // MaxStringBytes
	LimitParams                           // MaxMessageParams
	LimitStructureBytes                   // MaxStructureBytes
	LimitParts                            // MaxDepth or MaxParts
)

var limitNames = [...]string{"addresses_per_field", "addresses_per_message", "string_bytes", "params_per_message", "structure_bytes", "parts"}

// String lists the limits hit, comma separated ("" for none).
func (l Limit) String() string {
	var b strings.Builder
	for i, n := range limitNames {
		if l&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// limiter accounts what one message's parse keeps, against the limits
// above. The zero value is a fresh account.
type limiter struct {
	addrs  int
	params int
	bytes  int
	hit    Limit
}

// cutUTF8 returns s cut to at most n bytes at a UTF-8 boundary (or at n
// when s is not valid UTF-8 there), and whether it was cut. A cut string
// is a copy, so that it does not keep a big field alive.
func cutUTF8(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if i == 0 || !utf8.RuneStart(s[i]) {
		i = n
	}
	return strings.Clone(s[:i]), true
}

// str charges s to the account: cut to MaxStringBytes, and "" once the
// account holds MaxStructureBytes.
func (l *limiter) str(s string) string {
	if s == "" {
		return s
	}
	s, cut := cutUTF8(s, MaxStringBytes)
	if cut {
		l.hit |= LimitString
	}
	if l.bytes+len(s) > MaxStructureBytes {
		l.hit |= LimitStructureBytes
		return ""
	}
	l.bytes += len(s)
	return s
}

// token charges a string that cannot be left out (a MIME type or
// subtype, an encoding): cut to MaxTokenBytes, counted, never emptied.
func (l *limiter) token(s string) string {
	s, cut := cutUTF8(s, MaxTokenBytes)
	if cut {
		l.hit |= LimitString
	}
	l.bytes += len(s)
	return s
}

// full reports whether no more strings fit.
func (l *limiter) full() bool { return l.bytes >= MaxStructureBytes }

// params keeps as many of ps as the message's allowance has room for,
// their strings charged.
func (l *limiter) paramList(ps []Param) []Param {
	if len(ps) == 0 {
		return ps
	}
	if room := MaxMessageParams - l.params; len(ps) > room {
		l.hit |= LimitParams
		ps = ps[:max(room, 0)]
	}
	l.params += len(ps)
	out := ps[:0]
	for _, p := range ps {
		p.Name, p.Value = l.str(p.Name), l.str(p.Value)
		if p.Name == "" {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// unfoldCut is unfold for a field whose value is kept as one string: it
// reads no more of v than MaxStringBytes of output need, so a huge field
// costs nothing beyond the bytes kept.
func unfoldCut(v []byte, l *limiter) string {
	v = trimWSP(v)
	out := make([]byte, 0, min(len(v), MaxStringBytes+utf8.UTFMax))
	for _, b := range v {
		if b == '\r' || b == '\n' {
			continue
		}
		if len(out) == MaxStringBytes+utf8.UTFMax {
			break
		}
		out = append(out, b)
	}
	return l.str(string(out))
}

// languages charges Content-Language tags, dropping those that no longer
// fit.
func (l *limiter) languages(tags []string) []string {
	out := tags[:0]
	for _, t := range tags {
		if t = l.str(t); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
