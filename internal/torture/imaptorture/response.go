package imaptorture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the response reader: a server that sends more is broken or
// hostile, and the session ends with an error.
const (
	// maxLineBytes bounds one response without its literals. The longest
	// we provoke is a SEARCH or FETCH over a few thousand messages.
	maxLineBytes = 4 << 20
	// maxLiteralBytes bounds one literal; our messages are a few KiB.
	maxLiteralBytes = 16 << 20
	// maxLiterals bounds the literals of one response.
	maxLiterals = 64
	// maxDepth bounds nested parentheses (a BODYSTRUCTURE is the deepest).
	maxDepth = 64
)

// ErrMalformed marks a response that is not IMAP (RFC 9051 §7, §9).
var ErrMalformed = errors.New("malformed response")

// rawResponse is one response as it came off the wire: its lines joined
// (CRLF removed) and its literals, in order. A literal's "{n}" stays in
// the line and the line goes on with the text that followed the literal.
type rawResponse struct {
	line []byte
	lits [][]byte
}

// readRaw reads one response from r: a line, and when it ends with a
// literal announcement the literal and the next line, and so on.
func readRaw(r *bufio.Reader) (rawResponse, error) {
	var raw rawResponse
	for {
		frag, err := readLine(r, maxLineBytes-len(raw.line))
		if err != nil {
			return raw, err
		}
		raw.line = append(raw.line, frag...)
		n, ok := literalSuffix(frag)
		if !ok {
			return raw, nil
		}
		if n > maxLiteralBytes {
			return raw, fmt.Errorf("%w: literal of %d bytes", ErrMalformed, n)
		}
		if len(raw.lits) == maxLiterals {
			return raw, fmt.Errorf("%w: more than %d literals in one response", ErrMalformed, maxLiterals)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(r, lit); err != nil {
			return raw, err
		}
		raw.lits = append(raw.lits, lit)
	}
}

// readLine reads up to and without the line end (LF, with an optional CR
// before it), failing past limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit+2 {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, maxLineBytes)
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
}

// literalSuffix reports the size n of a literal announced at the end of
// a line: "{n}" (RFC 9051 §4.3), also "{n+}" and "~{n}" (RFC 7888, 3516).
func literalSuffix(line []byte) (int, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	if len(digits) == 0 || len(digits) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// valueKind is what a Value is.
type valueKind uint8

const (
	atomValue   valueKind = iota // an atom, a number, NIL, a flag, a FETCH item name
	stringValue                  // a quoted string or a literal
	listValue                    // a parenthesized list
)

// Value is one element of a response's data (RFC 9051 §4).
type Value struct {
	Kind valueKind
	Text string  // an atom's or a string's text
	List []Value // a list's elements
}

// IsNil reports the atom NIL.
func (v Value) IsNil() bool { return v.Kind == atomValue && strings.EqualFold(v.Text, "NIL") }

// Number returns an atom's value as a 32-bit unsigned number.
func (v Value) Number() (uint32, bool) {
	if v.Kind != atomValue || v.Text == "" || len(v.Text) > 10 {
		return 0, false
	}
	n, err := strconv.ParseUint(v.Text, 10, 32)
	return uint32(n), err == nil
}

// String returns the text of an atom or a string, "" for anything else.
func (v Value) String() string {
	if v.Kind == listValue || v.IsNil() {
		return ""
	}
	return v.Text
}

// Response is one parsed server response.
type Response struct {
	// Tag is "*" for untagged data, "+" for a continuation request, or
	// the tag of the command it completes.
	Tag string
	// Num is the number before the type in "* 5 EXISTS", "* 3 FETCH (...)".
	Num uint32
	// Type is upper case: OK, NO, BAD, BYE, PREAUTH, CAPABILITY, FLAGS,
	// SEARCH, STATUS, LIST, EXISTS, RECENT, EXPUNGE, FETCH, ...; "" for a
	// continuation.
	Type string
	// Code and CodeArgs are a response code ("[UIDNEXT 5]"): its name in
	// upper case and its arguments as they were sent, split at spaces
	// outside parentheses.
	Code     string
	CodeArgs []string
	// Text is the human-readable text of a status response or a
	// continuation.
	Text string
	// Fetch is the data of a FETCH response.
	Fetch *FetchData
	// Numbers are the numbers of a SEARCH response.
	Numbers []uint32
	// Vanished are the UID ranges of a VANISHED response (RFC 7162
	// §3.2.10), Earlier its (EARLIER) tag: they were expunged before the
	// selection, not from the session's view.
	Vanished []uidRange
	Earlier  bool
	// Data holds the values of other untagged data (CAPABILITY, FLAGS,
	// STATUS, LIST, ...), after the type.
	Data []Value
	// Size is the bytes of the response as sent: its lines without
	// CRLF and its literals.
	Size int
	// Line is the response for people: the line as sent, literals
	// replaced by their size, cut to evidenceBytes.
	Line string
}

// FetchData is what a FETCH response said (RFC 9051 §7.5.2). A field is
// set only when its item was present.
type FetchData struct {
	UID      uint32
	HasUID   bool
	Flags    []string
	HasFlags bool
	// MessageID is the Message-ID of the message, from a header section
	// or a whole-message section; ""  when none was fetched.
	MessageID string
	// Body is the text of a BODY[] or BODY[TEXT] section, if fetched.
	Body    []byte
	HasBody bool
	// Sections are the sections of the whole message and of its text
	// (BODY[], BODY[TEXT], RFC822, RFC822.TEXT, each perhaps partial), in
	// response order.
	Sections []Section
	// Size is RFC822.SIZE.
	Size    int64
	HasSize bool
	// ModSeq is the MODSEQ item (RFC 7162 §3.1.4).
	ModSeq    uint64
	HasModSeq bool
	// EmailID is the EMAILID item (RFC 8474 §7.1); "" when absent.
	EmailID string
	// Envelope is the ENVELOPE item's list; BodyStructure the
	// BODYSTRUCTURE item's.
	Envelope      *Value
	BodyStructure *Value
}

// Section is one body section of a FETCH response.
type Section struct {
	// Name is the item's name in upper case without its origin:
	// "BODY[]", "BODY[TEXT]", "RFC822".
	Name string
	// Origin is the first octet of a partial fetch (BODY[]<0>); -1: the
	// whole section.
	Origin int
	Data   []byte
}

// evidenceBytes bounds Response.Line.
const evidenceBytes = 300

// parseResponse parses one raw response.
func parseResponse(raw rawResponse) (*Response, error) {
	p := &parser{b: raw.line, lits: raw.lits}
	resp := &Response{Line: evidence(raw), Size: len(raw.line)}
	for _, l := range raw.lits {
		resp.Size += len(l)
	}
	tag, err := p.word()
	if err != nil {
		return nil, err
	}
	resp.Tag = tag
	if tag == "+" {
		p.sp()
		resp.Text = p.rest()
		return resp, nil
	}
	if !p.sp() {
		return nil, p.errorf("no space after the tag")
	}
	word, err := p.word()
	if err != nil {
		return nil, err
	}
	if tag == "*" && isDigits(word) {
		n, err := strconv.ParseUint(word, 10, 32)
		if err != nil {
			return nil, p.errorf("number %q", word)
		}
		resp.Num = uint32(n)
		if !p.sp() {
			return nil, p.errorf("no space after the number")
		}
		if word, err = p.word(); err != nil {
			return nil, err
		}
		resp.Type = strings.ToUpper(word)
		switch resp.Type {
		case "FETCH":
			if !p.sp() {
				return nil, p.errorf("FETCH without data")
			}
			v, err := p.value(0)
			if err != nil {
				return nil, err
			}
			if v.Kind != listValue {
				return nil, p.errorf("FETCH data is not a list")
			}
			if resp.Fetch, err = fetchData(v.List); err != nil {
				return nil, fmt.Errorf("%w: %v in %q", ErrMalformed, err, resp.Line)
			}
		case "EXISTS", "RECENT", "EXPUNGE":
		default:
			return nil, p.errorf("unknown response %q after a number", word)
		}
		return resp, p.end()
	}
	resp.Type = strings.ToUpper(word)
	switch resp.Type {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		if err := p.statusText(resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	if tag != "*" {
		return nil, p.errorf("tagged response %q is not OK, NO or BAD", word)
	}
	switch resp.Type {
	case "SEARCH":
		for p.sp() && p.i < len(p.b) {
			if p.peek() == '(' {
				// "(MODSEQ n)" at the end (RFC 7162 §3.1.5).
				if _, err := p.value(0); err != nil {
					return nil, err
				}
				continue
			}
			w, err := p.word()
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(w, 10, 32)
			if err != nil || n == 0 {
				return nil, p.errorf("SEARCH result %q", w)
			}
			resp.Numbers = append(resp.Numbers, uint32(n))
		}
		return resp, p.end()
	case "VANISHED":
		if !p.sp() {
			return nil, p.errorf("VANISHED without UIDs")
		}
		if p.peek() == '(' {
			v, err := p.value(0)
			if err != nil {
				return nil, err
			}
			if len(v.List) != 1 || !strings.EqualFold(v.List[0].Text, "EARLIER") || !p.sp() {
				return nil, p.errorf("VANISHED %q", resp.Line)
			}
			resp.Earlier = true
		}
		w, err := p.word()
		if err != nil {
			return nil, err
		}
		if resp.Vanished, err = parseUIDRanges(w); err != nil {
			return nil, p.errorf("VANISHED %q: %v", w, err)
		}
		return resp, p.end()
	case "CAPABILITY", "ENABLED":
		for p.sp() {
			w, err := p.word()
			if err != nil {
				return nil, err
			}
			resp.Data = append(resp.Data, Value{Kind: atomValue, Text: w})
		}
		return resp, p.end()
	}
	for p.sp() {
		v, err := p.value(0)
		if err != nil {
			// Data we do not use need not parse (ID, NAMESPACE, ...).
			resp.Data = nil
			resp.Text = string(raw.line)
			return resp, nil
		}
		resp.Data = append(resp.Data, v)
	}
	return resp, nil
}

// evidence renders a response for a report.
func evidence(raw rawResponse) string {
	s := string(raw.line)
	if len(s) > evidenceBytes {
		s = s[:evidenceBytes] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// fetchData reads a FETCH response's items.
func fetchData(items []Value) (*FetchData, error) {
	if len(items)%2 != 0 {
		return nil, errors.New("FETCH items not in pairs")
	}
	f := &FetchData{}
	for i := 0; i < len(items); i += 2 {
		name, v := items[i], items[i+1]
		if name.Kind != atomValue {
			return nil, fmt.Errorf("FETCH item name %q", name.Text)
		}
		upper := strings.ToUpper(name.Text)
		switch {
		case upper == "UID":
			n, ok := v.Number()
			if !ok || n == 0 {
				return nil, fmt.Errorf("UID %q", v.Text)
			}
			f.UID, f.HasUID = n, true
		case upper == "FLAGS":
			if v.Kind != listValue {
				return nil, errors.New("FLAGS is not a list")
			}
			f.HasFlags = true
			f.Flags = []string{}
			for _, fl := range v.List {
				if fl.Kind != atomValue {
					return nil, fmt.Errorf("flag %q", fl.Text)
				}
				f.Flags = append(f.Flags, fl.Text)
			}
		case upper == "MODSEQ":
			if v.Kind != listValue || len(v.List) != 1 || v.List[0].Kind != atomValue {
				return nil, errors.New("MODSEQ is not a list of one number")
			}
			n, err := strconv.ParseUint(v.List[0].Text, 10, 63)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("MODSEQ %q", v.List[0].Text)
			}
			f.ModSeq, f.HasModSeq = n, true
		case upper == "EMAILID":
			if v.Kind != listValue || len(v.List) != 1 || v.List[0].Kind != atomValue || v.List[0].Text == "" {
				return nil, errors.New("EMAILID is not a list of one objectid")
			}
			f.EmailID = v.List[0].Text
		case upper == "ENVELOPE":
			if v.Kind != listValue || len(v.List) < 10 {
				return nil, errors.New("ENVELOPE is not a list of 10")
			}
			env := v
			f.Envelope = &env
		case upper == "BODYSTRUCTURE":
			if v.Kind != listValue {
				return nil, errors.New("BODYSTRUCTURE is not a list")
			}
			bs := v
			f.BodyStructure = &bs
		case strings.HasPrefix(upper, "BODY[") || strings.HasPrefix(upper, "RFC822"):
			if v.Kind == listValue {
				return nil, fmt.Errorf("%s is a list", name.Text)
			}
			if upper == "RFC822.SIZE" {
				n, err := strconv.ParseInt(v.Text, 10, 64)
				if err != nil || v.Kind != atomValue {
					return nil, fmt.Errorf("RFC822.SIZE %q", v.Text)
				}
				f.Size, f.HasSize = n, true
				continue
			}
			text := []byte(v.String())
			sec := Section{Name: upper, Origin: -1, Data: text}
			if i := strings.IndexByte(upper, '<'); i > 0 && strings.HasSuffix(upper, ">") {
				o, err := strconv.Atoi(upper[i+1 : len(upper)-1])
				if err != nil || o < 0 {
					return nil, fmt.Errorf("FETCH item name %q", name.Text)
				}
				sec.Name, sec.Origin = upper[:i], o
			}
			switch sec.Name {
			case "BODY[]", "BODY[TEXT]", "RFC822", "RFC822.TEXT":
				f.Sections = append(f.Sections, sec)
			}
			if strings.HasPrefix(upper, "BODY[HEADER") || upper == "BODY[]" || upper == "RFC822" || upper == "RFC822.HEADER" {
				if id := headerMessageID(text); id != "" {
					f.MessageID = id
				}
			}
			if upper == "BODY[]" || upper == "BODY[TEXT]" || upper == "RFC822" {
				f.Body, f.HasBody = text, true
			}
		}
	}
	return f, nil
}

// headerMessageID finds the Message-ID field in a message's header (RFC
// 5322 §3.6.4), unfolded, without surrounding space; "" when absent.
func headerMessageID(msg []byte) string {
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		var line []byte
		if i < 0 {
			line, msg = msg, nil
		} else {
			line, msg = msg[:i], msg[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return ""
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("Message-ID")) {
			continue
		}
		// Folded continuation lines.
		for len(msg) > 0 && (msg[0] == ' ' || msg[0] == '\t') {
			j := bytes.IndexByte(msg, '\n')
			if j < 0 {
				j = len(msg) - 1
			}
			value = append(append([]byte{}, value...), bytes.TrimRight(msg[:j+1], "\r\n")...)
			msg = msg[j+1:]
		}
		return string(bytes.TrimSpace(value))
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parser walks one response line.
type parser struct {
	b    []byte
	i    int
	lits [][]byte
	lit  int // the next literal
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d of %q", ErrMalformed, fmt.Sprintf(format, args...), p.i, cut(p.b, 120))
}

func cut(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) sp() bool {
	if p.peek() == ' ' {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() error {
	if p.i != len(p.b) {
		return p.errorf("unexpected text")
	}
	return nil
}

func (p *parser) rest() string {
	s := string(p.b[p.i:])
	p.i = len(p.b)
	return s
}

// word reads up to the next space or the end.
func (p *parser) word() (string, error) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != ' ' {
		if c := p.b[p.i]; c < 0x20 || c == 0x7f {
			return "", p.errorf("control character %#x", c)
		}
		p.i++
	}
	if p.i == start {
		return "", p.errorf("empty word")
	}
	return string(p.b[start:p.i]), nil
}

// statusText reads " [code args] text" after OK/NO/BAD/BYE/PREAUTH.
func (p *parser) statusText(resp *Response) error {
	if !p.sp() {
		return nil // "a1 OK" without text: lenient
	}
	if p.peek() == '[' {
		p.i++
		end := bytes.IndexByte(p.b[p.i:], ']')
		if end < 0 {
			return p.errorf("response code without ]")
		}
		code := string(p.b[p.i : p.i+end])
		p.i += end + 1
		name, args, _ := strings.Cut(code, " ")
		resp.Code = strings.ToUpper(name)
		resp.CodeArgs = splitArgs(args)
		p.sp()
	}
	resp.Text = p.rest()
	return nil
}

// splitArgs splits a response code's arguments at spaces outside
// parentheses.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ':
			if depth == 0 {
				if i > start {
					out = append(out, s[start:i])
				}
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// value reads one value: an atom (with any [section]<partial> in it), a
// quoted string, a literal, or a list.
func (p *parser) value(depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, p.errorf("lists nested deeper than %d", maxDepth)
	}
	switch c := p.peek(); {
	case c == '(':
		p.i++
		v := Value{Kind: listValue, List: []Value{}}
		for {
			if p.peek() == ')' {
				p.i++
				return v, nil
			}
			// Lists follow each other without a space in an address
			// list and in a multipart body (RFC 9051 §9: "(" 1*address
			// ")", "(" 1*body SP ...).
			if len(v.List) > 0 && !p.sp() && !(p.peek() == '(' && v.List[len(v.List)-1].Kind == listValue) {
				return Value{}, p.errorf("no space between list elements")
			}
			if p.peek() == ')' {
				p.i++
				return v, nil
			}
			e, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			v.List = append(v.List, e)
		}
	case c == '"':
		return p.quoted()
	case c == '{' || c == '~' && p.i+1 < len(p.b) && p.b[p.i+1] == '{':
		return p.literal()
	case c == 0 || c == ' ' || c == ')':
		return Value{}, p.errorf("value expected")
	default:
		return p.atom()
	}
}

func (p *parser) quoted() (Value, error) {
	p.i++
	var sb strings.Builder
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return Value{Kind: stringValue, Text: sb.String()}, nil
		case '\\':
			if p.i == len(p.b) {
				return Value{}, p.errorf("quoted string ends in a backslash")
			}
			sb.WriteByte(p.b[p.i])
			p.i++
		default:
			sb.WriteByte(c)
		}
	}
	return Value{}, p.errorf("unterminated quoted string")
}

func (p *parser) literal() (Value, error) {
	if p.peek() == '~' {
		p.i++
	}
	end := bytes.IndexByte(p.b[p.i:], '}')
	if end < 0 {
		return Value{}, p.errorf("unterminated literal size")
	}
	size := string(bytes.TrimSuffix(p.b[p.i+1:p.i+end], []byte("+")))
	p.i += end + 1
	n, err := strconv.Atoi(size)
	if err != nil || p.lit >= len(p.lits) || len(p.lits[p.lit]) != n {
		return Value{}, p.errorf("literal {%s} without its data", size)
	}
	v := Value{Kind: stringValue, Text: string(p.lits[p.lit])}
	p.lit++
	return v, nil
}

// atom reads an atom. A '[' opens a section that runs to its ']', spaces
// and parentheses included (BODY[HEADER.FIELDS (MESSAGE-ID)]); outside
// one, ']' ends the atom.
func (p *parser) atom() (Value, error) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '[' {
			end := bytes.IndexByte(p.b[p.i:], ']')
			if end < 0 {
				return Value{}, p.errorf("section without ]")
			}
			p.i += end + 1
			continue
		}
		if c == ' ' || c == '(' || c == ')' || c == '"' || c == '{' || c == ']' || c < 0x20 || c == 0x7f {
			break
		}
		p.i++
	}
	if p.i == start {
		return Value{}, p.errorf("atom expected")
	}
	return Value{Kind: atomValue, Text: string(p.b[start:p.i])}, nil
}
