package wire

import (
	"strconv"
	"strings"
)

// FetchItem is one fetch-att of FETCH (RFC 9051 §6.4.5, §9; RFC 3516 §4.2;
// RFC 7162 §3.1.4).
//
//	Name           Sent as
//	ENVELOPE       ENVELOPE
//	FLAGS          FLAGS
//	INTERNALDATE   INTERNALDATE
//	RFC822         RFC822                  (IMAP4rev1)
//	RFC822.HEADER  RFC822.HEADER           (IMAP4rev1)
//	RFC822.SIZE    RFC822.SIZE
//	RFC822.TEXT    RFC822.TEXT             (IMAP4rev1)
//	BODY           BODY                    Sectioned false: BODYSTRUCTURE without extensions
//	BODY           BODY[s]<p>, BODY.PEEK[s]<p>   Sectioned true
//	BODYSTRUCTURE  BODYSTRUCTURE
//	UID            UID
//	BINARY         BINARY[p]<p>, BINARY.PEEK[p]<p>
//	BINARY.SIZE    BINARY.SIZE[p]
//	MODSEQ         MODSEQ
//	EMAILID        EMAILID                 (RFC 8474 §5.1)
//	THREADID       THREADID                (RFC 8474 §5.2)
type FetchItem struct {
	Name      string   // canonical upper-case base name, table above
	Peek      bool     // BODY.PEEK or BINARY.PEEK: do not set \Seen
	Sectioned bool     // a [section] was given
	Section   Section  // when Sectioned
	Partial   *Partial // <offset.count>, or nil
	Binary    bool     // BINARY, BINARY.PEEK or BINARY.SIZE
}

// Section is section-spec (RFC 9051 §9), or section-binary (only Path).
type Section struct {
	Path      []int    // part numbers, "1.2" -> [1 2]; empty for the whole message
	Specifier string   // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	Fields    []string // header field names of HEADER.FIELDS[.NOT], as sent
}

// Partial is partial = "<" number "." nz-number ">" (RFC 9051 §9).
type Partial struct{ Offset, Count uint32 }

// String formats the section-spec without brackets, e.g.
// `1.2.HEADER.FIELDS (From To)`. Field names are written as astrings, as
// Encoder.AString would write them.
func (s Section) String() string {
	var b strings.Builder
	for i, p := range s.Path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(p))
	}
	if s.Specifier != "" {
		if len(s.Path) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Specifier)
	}
	if strings.HasPrefix(s.Specifier, "HEADER.FIELDS") {
		b.WriteString(" (")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeAString(&b, f)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// ResponseName is the item's name in the FETCH response (RFC 9051 §7.5.2):
// PEEK dropped, the section echoed, and of a partial only the origin
// ("BODY[]<0>").
func (it FetchItem) ResponseName() string {
	if !it.Sectioned {
		return it.Name
	}
	s := it.Name + "[" + it.Section.String() + "]"
	if it.Partial != nil {
		s += "<" + strconv.FormatUint(uint64(it.Partial.Offset), 10) + ">"
	}
	return s
}

// Fetch macros, RFC 9051 §6.4.5.
var fetchMacros = map[string][]string{
	"ALL":  {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	"FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"},
	"FULL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"},
}

var simpleFetchItems = map[string]bool{
	"ENVELOPE": true, "FLAGS": true, "INTERNALDATE": true, "RFC822": true,
	"RFC822.HEADER": true, "RFC822.SIZE": true, "RFC822.TEXT": true,
	"BODY": true, "BODYSTRUCTURE": true, "UID": true, "MODSEQ": true,
	"EMAILID": true, "THREADID": true,
}

// FetchItems reads the data items of FETCH: "ALL" / "FULL" / "FAST" /
// fetch-att / "(" fetch-att *(SP fetch-att) ")" (RFC 9051 §9). Macros are
// expanded (and allowed only alone, not in a list). Names are
// case-insensitive; items are returned in the order sent.
func (d *Decoder) FetchItems() ([]FetchItem, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	if c == '(' {
		var items []FetchItem
		err := d.List(func() error {
			it, err := d.fetchAtt(false)
			items = append(items, it...)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, syntaxErr("empty fetch item list")
		}
		return items, nil
	}
	return d.fetchAtt(true)
}

func (d *Decoder) fetchAtt(macros bool) ([]FetchItem, error) {
	b, err := d.take(cName)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, syntaxErr("expected fetch item")
	}
	name := upper(b)
	if m, ok := fetchMacros[name]; ok {
		if !macros {
			return nil, syntaxErr("fetch macro %s inside a list", name)
		}
		items := make([]FetchItem, len(m))
		for i, n := range m {
			items[i] = FetchItem{Name: n}
		}
		return items, nil
	}
	it := FetchItem{Name: name}
	switch name {
	case "BODY.PEEK":
		it.Name, it.Peek = "BODY", true
	case "BINARY", "BINARY.SIZE":
		it.Binary = true
	case "BINARY.PEEK":
		it.Name, it.Peek, it.Binary = "BINARY", true, true
	default:
		if !simpleFetchItems[name] {
			return nil, syntaxErr("unknown fetch item %q", name)
		}
	}
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		if it.Peek || it.Binary {
			return nil, syntaxErr("%s needs a section", name)
		}
		return []FetchItem{it}, nil
	}
	if it.Name != "BODY" && !it.Binary {
		return nil, syntaxErr("%s takes no section", name)
	}
	d.readByte()
	it.Sectioned = true
	if it.Section, err = d.section(it.Binary); err != nil {
		return nil, err
	}
	if c, err := d.peekByte(); err == nil && c == '<' && it.Name != "BINARY.SIZE" {
		if it.Partial, err = d.partial(); err != nil {
			return nil, err
		}
	}
	return []FetchItem{it}, nil
}

// section reads what follows "[" up to and including "]": section-spec,
// or for BINARY section-binary = [section-part] (RFC 3516 §4.2).
func (d *Decoder) section(binary bool) (Section, error) {
	var s Section
	c, err := d.peekByte()
	if err != nil {
		return s, err
	}
	if c == ']' {
		_, err := d.readByte()
		return s, err
	}
	for '0' <= c && c <= '9' {
		n, err := d.Number()
		if err != nil {
			return s, err
		}
		if n == 0 {
			return s, syntaxErr("section part numbers start at 1")
		}
		if len(s.Path) >= d.lim.MaxDepth {
			return s, tooBig("section path deeper than %d", d.lim.MaxDepth)
		}
		s.Path = append(s.Path, int(n))
		if c, err = d.peekByte(); err != nil {
			return s, err
		}
		if c == ']' {
			_, err := d.readByte()
			return s, err
		}
		if err := d.expect('.', ". or ] in section"); err != nil {
			return s, err
		}
		if c, err = d.peekByte(); err != nil {
			return s, err
		}
	}
	if binary {
		return s, syntaxErr("BINARY sections are part numbers only")
	}
	b, err := d.take(cName)
	if err != nil {
		return s, err
	}
	s.Specifier = upper(b)
	switch s.Specifier {
	case "HEADER", "TEXT":
	case "MIME":
		if len(s.Path) == 0 {
			return s, syntaxErr("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if err := d.SP(); err != nil {
			return s, err
		}
		err := d.List(func() error {
			f, err := d.AString()
			s.Fields = append(s.Fields, f)
			return err
		})
		if err != nil {
			return s, err
		}
		if len(s.Fields) == 0 {
			return s, syntaxErr("empty header field list")
		}
	default:
		return s, syntaxErr("unknown section %q", s.Specifier)
	}
	if err := d.expect(']', "] closing section"); err != nil {
		return s, err
	}
	return s, nil
}

// partial reads "<" number "." nz-number ">".
func (d *Decoder) partial() (*Partial, error) {
	d.readByte() // "<"
	off, err := d.Number()
	if err != nil {
		return nil, err
	}
	if err := d.expect('.', ". in partial"); err != nil {
		return nil, err
	}
	n, err := d.Number()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, syntaxErr("partial length must be nonzero")
	}
	if err := d.expect('>', "> closing partial"); err != nil {
		return nil, err
	}
	return &Partial{Offset: off, Count: n}, nil
}

// writeAString writes s as Encoder.AString does (7-bit quoting rules).
func writeAString(b *strings.Builder, s string) {
	switch {
	case isAString(s) && !strings.EqualFold(s, "NIL"):
		b.WriteString(s)
	case quotable(s, false):
		b.WriteByte('"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		b.WriteByte('"')
	default:
		b.WriteString("{" + strconv.Itoa(len(s)) + "}\r\n" + s)
	}
}
