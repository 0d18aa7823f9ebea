package message

import (
	"sort"
	"strconv"
	"strings"
)

// Param is one MIME parameter (RFC 2045 §5.1). Name is lower case; Value
// has quoting removed and RFC 2231 continuations and charsets decoded.
type Param struct {
	Name, Value string
}

// ParamValue returns the value of the named parameter (case-insensitive),
// or "" when ps has none.
func ParamValue(ps []Param, name string) string {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return p.Value
		}
	}
	return ""
}

// isTSpecial reports the RFC 2045 tspecials and white space: the bytes that
// end a token.
func isTSpecial(b byte) bool {
	switch b {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', ' ', '\t', '\r', '\n':
		return true
	}
	return b < ' ' || b == 0x7f
}

// mimeScanner reads the structured MIME fields Content-Type and
// Content-Disposition leniently.
type mimeScanner struct {
	s string
	i int
}

// skipCFWS skips white space and (nested) comments.
func (m *mimeScanner) skipCFWS() {
	for m.i < len(m.s) {
		switch m.s[m.i] {
		case ' ', '\t', '\r', '\n':
			m.i++
		case '(':
			depth := 0
			for m.i < len(m.s) {
				c := m.s[m.i]
				m.i++
				if c == '\\' && m.i < len(m.s) {
					m.i++
				} else if c == '(' {
					depth++
				} else if c == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
		default:
			return
		}
	}
}

func (m *mimeScanner) token() string {
	m.skipCFWS()
	start := m.i
	for m.i < len(m.s) && !isTSpecial(m.s[m.i]) {
		m.i++
	}
	return m.s[start:m.i]
}

func (m *mimeScanner) consume(b byte) bool {
	m.skipCFWS()
	if m.i < len(m.s) && m.s[m.i] == b {
		m.i++
		return true
	}
	return false
}

// quoted reads a quoted-string at m.i (which holds '"'); an unterminated
// one runs to the end.
func (m *mimeScanner) quoted() string {
	m.i++
	start := m.i
	simple := true
	for m.i < len(m.s) && m.s[m.i] != '"' {
		if m.s[m.i] == '\\' && m.i+1 < len(m.s) {
			simple = false
			m.i++
		}
		m.i++
	}
	v := m.s[start:m.i]
	if m.i < len(m.s) {
		m.i++ // closing quote
	}
	if simple {
		return v
	}
	var b strings.Builder
	for j := 0; j < len(v); j++ {
		if v[j] == '\\' && j+1 < len(v) {
			j++
		}
		b.WriteByte(v[j])
	}
	return b.String()
}

// value reads a parameter value: a quoted string, or else everything up
// to ';' with white space trimmed. Unquoted values with spaces (file names
// from broken mailers) are kept whole, but a space followed by "token="
// starts the next parameter (a missing ';', the other common breakage).
func (m *mimeScanner) value() string {
	m.skipCFWS()
	if m.i < len(m.s) && m.s[m.i] == '"' {
		return m.quoted()
	}
	start := m.i
	for m.i < len(m.s) && m.s[m.i] != ';' {
		if isWSP(m.s[m.i]) && m.nextIsParam(m.i) {
			break
		}
		m.i++
	}
	return strings.TrimRight(m.s[start:m.i], " \t\r\n")
}

// nextIsParam reports whether white space at i is followed by "token=".
func (m *mimeScanner) nextIsParam(i int) bool {
	for i < len(m.s) && isWSP(m.s[i]) {
		i++
	}
	j := i
	for j < len(m.s) && !isTSpecial(m.s[j]) {
		j++
	}
	for j < len(m.s) && isWSP(m.s[j]) {
		j++
	}
	return j > i && j < len(m.s) && m.s[j] == '='
}

// maxParams bounds the parameters read from one field: real fields carry
// a handful, and joining RFC 2231 sections and dropping duplicates is
// quadratic in their number.
const maxParams = 100

// params reads "; name=value" pairs to the end of the field.
func (m *mimeScanner) params() []Param {
	var ps []Param
	extended := false
	for m.i < len(m.s) && len(ps) < maxParams {
		m.skipCFWS()
		if m.i < len(m.s) && m.s[m.i] == ';' {
			m.i++
			continue
		}
		name := m.token()
		if name == "" || !m.consume('=') {
			// Not a parameter: skip to the next ';'.
			if m.i < len(m.s) && m.s[m.i] != ';' {
				m.i++
			}
			for m.i < len(m.s) && m.s[m.i] != ';' {
				m.i++
			}
			continue
		}
		v := m.value()
		if strings.IndexByte(name, '*') >= 0 {
			extended = true
		}
		ps = append(ps, Param{Name: lowerASCII(name), Value: v})
	}
	if extended {
		return decodeRFC2231(ps)
	}
	return dedupParams(ps)
}

// dedupParams drops repeated names, keeping the first.
func dedupParams(ps []Param) []Param {
	for i := 1; i < len(ps); i++ {
		for j := 0; j < i; j++ {
			if ps[j].Name == ps[i].Name {
				ps = append(ps[:i], ps[i+1:]...)
				i--
				break
			}
		}
	}
	return ps
}

// decodeRFC2231 joins continuations (name*0, name*1, ...) and decodes
// extended values (name*=charset'language'%XX) per RFC 2231 §3–§4. A
// parameter keeps the place of its first section. When both name and name*
// are present, the extended form wins. Sections are joined in numeric
// order whatever their order in the field; missing sections are skipped.
func decodeRFC2231(ps []Param) []Param {
	type section struct {
		n        int
		extended bool
		value    string
	}
	type group struct {
		name     string
		plain    string
		hasPlain bool
		sections []section
	}
	var groups []*group
	find := func(name string) *group {
		for _, g := range groups {
			if g.name == name {
				return g
			}
		}
		g := &group{name: name}
		groups = append(groups, g)
		return g
	}
	for _, p := range ps {
		star := strings.IndexByte(p.Name, '*')
		if star < 0 {
			g := find(p.Name)
			if !g.hasPlain {
				g.plain, g.hasPlain = p.Value, true
			}
			continue
		}
		base, rest := p.Name[:star], p.Name[star+1:]
		sec := section{value: p.Value}
		if rest == "" {
			sec.extended = true // name*=
		} else {
			if strings.HasSuffix(rest, "*") {
				sec.extended = true
				rest = rest[:len(rest)-1]
			}
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > 1000 {
				continue
			}
			sec.n = n
		}
		g := find(base)
		dup := false
		for _, s := range g.sections {
			if s.n == sec.n {
				dup = true
			}
		}
		if !dup {
			g.sections = append(g.sections, sec)
		}
	}
	out := make([]Param, 0, len(groups))
	for _, g := range groups {
		if len(g.sections) == 0 {
			out = append(out, Param{Name: g.name, Value: g.plain})
			continue
		}
		sort.Slice(g.sections, func(i, j int) bool { return g.sections[i].n < g.sections[j].n })
		var buf []byte
		cs := ""
		for i, s := range g.sections {
			v := s.value
			if s.extended {
				if i == 0 {
					// charset'language'value; both parts may be empty.
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				buf = appendPercentDecoded(buf, v)
			} else {
				buf = append(buf, v...)
			}
		}
		out = append(out, Param{Name: g.name, Value: string(toUTF8(cs, buf))})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendPercentDecoded decodes %XX; a '%' not followed by two hex digits
// is kept.
func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 2
				continue
			}
		}
		dst = append(dst, s[i])
	}
	return dst
}

// parseContentType parses a Content-Type value (RFC 2045 §5.1). ok is
// false when there is no usable type/subtype.
func parseContentType(v string) (typ, sub string, params []Param, ok bool) {
	m := mimeScanner{s: v}
	typ = m.token()
	if !m.consume('/') {
		return "", "", nil, false
	}
	sub = m.token()
	if typ == "" || sub == "" || !ascii([]byte(typ)) || !ascii([]byte(sub)) {
		return "", "", nil, false
	}
	return lowerASCII(typ), lowerASCII(sub), m.params(), true
}

// parseDisposition parses a Content-Disposition value (RFC 2183).
func parseDisposition(v string) (disp string, params []Param) {
	m := mimeScanner{s: v}
	disp = m.token()
	if disp == "" {
		return "", nil
	}
	return lowerASCII(disp), m.params()
}

// parseLanguage splits a Content-Language value (RFC 3282) into its tags,
// at most maxParams of them.
func parseLanguage(v string) []string {
	m := mimeScanner{s: v}
	var tags []string
	for m.i < len(m.s) && len(tags) < maxParams {
		m.skipCFWS()
		start := m.i
		for m.i < len(m.s) && m.s[m.i] != ',' && m.s[m.i] != '(' && !isWSP(m.s[m.i]) {
			m.i++
		}
		if m.i > start {
			tags = append(tags, m.s[start:m.i])
		} else if m.i < len(m.s) && m.s[m.i] == ',' {
			m.i++
		}
	}
	return tags
}

// firstToken returns the first token of a field value, lower case: the
// Content-Transfer-Encoding mechanism (RFC 2045 §6.1).
func firstToken(v string) string {
	m := mimeScanner{s: v}
	return lowerASCII(m.token())
}

// removeWSP removes all white space: Content-Location URIs may be folded
// anywhere (RFC 2557 §4.4.2).
func removeWSP(v string) string {
	if strings.IndexAny(v, " \t\r\n") < 0 {
		return v
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if !isWSP(v[i]) {
			b = append(b, v[i])
		}
	}
	return string(b)
}
