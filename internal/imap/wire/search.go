package wire

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"
)

// SearchKey is one node of a search program (RFC 9051 §6.4.4, RFC 3501
// §6.4.4, RFC 7162 §3.1.5). Op is the upper-case key name, or:
//
//	Op          Fields set
//	AND         Children (a parenthesized list or the top-level keys, 2 or more)
//	OR          Children[0], Children[1]
//	NOT         Children[0]
//	SEQSET      Seq (message sequence numbers; may be "$", RFC 5182)
//	UID         Seq (may be "$")
//	BCC BODY CC FROM SUBJECT TEXT TO    Str
//	HEADER      Field (header name as sent), Str
//	KEYWORD UNKEYWORD                   Str (the keyword as sent)
//	BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE   Date (midnight UTC)
//	LARGER SMALLER                      Num
//	MODSEQ      Num; Field and Str when an entry is named
//	            (Field "/flags/\Seen", Str "priv", "shared" or "all")
//	EMAILID THREADID                    Str (an objectid, RFC 8474 §6)
//	ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN
//	UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN   nothing
type SearchKey struct {
	Op       string
	Children []*SearchKey
	Str      string
	Field    string
	Date     time.Time
	Num      uint64
	Seq      SeqSet
}

// SearchCommand is everything after "SEARCH SP" (RFC 9051 §6.4.4, §9):
// search = "SEARCH" [search-return-opts] SP search-program.
type SearchCommand struct {
	// Return holds the RETURN options upper-cased: MIN MAX ALL COUNT
	// (RFC 4731 §3.1) and SAVE (RFC 5182 §2.2). ReturnGiven reports that
	// RETURN was present: "RETURN ()" means RETURN (ALL) (RFC 4731 §3.1).
	Return      []string
	ReturnGiven bool
	// Charset is the CHARSET argument, or "". Checking it (BADCHARSET,
	// and RFC 6855 §3's BAD for CHARSET after ENABLE UTF8=ACCEPT) is the
	// server's.
	Charset string
	Key     *SearchKey
}

var searchReturnOpts = map[string]bool{"MIN": true, "MAX": true, "ALL": true, "COUNT": true, "SAVE": true}

// Search reads the arguments of SEARCH: [RETURN (opts) SP] [CHARSET
// astring SP] search-key *(SP search-key). With utf8, string arguments
// must be valid UTF-8 (IMAP4rev2, UTF8=ACCEPT); otherwise they are bytes
// in Charset for the server to convert.
func (d *Decoder) Search(utf8 bool) (*SearchCommand, error) {
	d.inLine = true
	var cmd SearchCommand
	if d.peekWord("RETURN") {
		d.take(cAtom)
		if err := d.SP(); err != nil {
			return nil, err
		}
		cmd.ReturnGiven = true
		cmd.Return = []string{}
		err := d.List(func() error {
			opt, err := d.keyword("RETURN option")
			if err != nil {
				return err
			}
			if !searchReturnOpts[opt] {
				return syntaxErr("unknown RETURN option %q", opt)
			}
			cmd.Return = append(cmd.Return, opt)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := d.SP(); err != nil {
			return nil, err
		}
	}
	if d.peekWord("CHARSET") {
		d.take(cAtom)
		if err := d.SP(); err != nil {
			return nil, err
		}
		cs, err := d.AString()
		if err != nil {
			return nil, err
		}
		cmd.Charset = cs
		if err := d.SP(); err != nil {
			return nil, err
		}
	}
	key, err := d.SearchKeys(utf8)
	if err != nil {
		return nil, err
	}
	cmd.Key = key
	return &cmd, nil
}

// peekWord reports whether the next bytes are word (case-insensitive)
// followed by SP, without consuming them. It asks for one more byte only
// while the bytes so far match: a shorter command ("SEARCH ALL") must not
// make it wait for bytes the client will never send.
func (d *Decoder) peekWord(word string) bool {
	if d.prepare() != nil {
		return false
	}
	for i := 1; i <= len(word)+1; i++ {
		b, err := d.r.Peek(i)
		if err != nil {
			return false
		}
		c := b[i-1]
		if i == len(word)+1 {
			return c == ' '
		}
		if !bytes.EqualFold([]byte{c}, []byte{word[i-1]}) {
			return false
		}
	}
	return false
}

// SearchKeys reads search-key *(SP search-key) up to (not including) the
// end of the line or a closing parenthesis. Several keys are returned as
// one AND node; a single key as itself. Key names are case-insensitive.
func (d *Decoder) SearchKeys(utf8 bool) (*SearchKey, error) {
	d.inLine = true
	var keys []*SearchKey
	for {
		k, err := d.searchKey(utf8)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		c, err := d.peekByte()
		if err != nil || c != ' ' {
			break
		}
		d.readByte()
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	return &SearchKey{Op: "AND", Children: keys}, nil
}

func (d *Decoder) searchString(utf8mode bool) (string, error) {
	s, err := d.AString()
	if err == nil && utf8mode && !utf8.ValidString(s) {
		return "", syntaxErr("search string is not valid UTF-8")
	}
	return s, err
}

func (d *Decoder) searchKey(utf8 bool) (*SearchKey, error) {
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	switch {
	case c == '(':
		var keys []*SearchKey
		err := d.List(func() error {
			k, err := d.searchKey(utf8)
			keys = append(keys, k)
			return err
		})
		if err != nil {
			return nil, err
		}
		switch len(keys) {
		case 0:
			return nil, syntaxErr("empty search key list")
		case 1:
			return keys[0], nil
		}
		return &SearchKey{Op: "AND", Children: keys}, nil
	case '0' <= c && c <= '9' || c == '*' || c == '$':
		s, err := d.SeqSet()
		if err != nil {
			return nil, err
		}
		return &SearchKey{Op: "SEQSET", Seq: s}, nil
	}
	op, err := d.keyword("search key")
	if err != nil {
		return nil, err
	}
	k := &SearchKey{Op: op}
	switch op {
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD",
		"RECENT", "SEEN", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED",
		"UNSEEN":
		return k, nil
	}
	if err := d.SP(); err != nil {
		return nil, syntaxErr("%s needs an argument", op)
	}
	switch op {
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO":
		k.Str, err = d.searchString(utf8)
	case "HEADER":
		if k.Field, err = d.AString(); err != nil {
			return nil, err
		}
		if err := d.SP(); err != nil {
			return nil, err
		}
		k.Str, err = d.searchString(utf8)
	case "KEYWORD", "UNKEYWORD":
		k.Str, err = d.Atom()
	case "EMAILID", "THREADID":
		k.Str, err = d.ObjectID()
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		k.Date, err = d.Date()
	case "LARGER", "SMALLER":
		k.Num, err = d.Number64()
	case "UID":
		k.Seq, err = d.SeqSet()
	case "NOT":
		err = d.nested(func() error {
			c, err := d.searchKey(utf8)
			k.Children = []*SearchKey{c}
			return err
		})
	case "OR":
		err = d.nested(func() error {
			a, err := d.searchKey(utf8)
			if err != nil {
				return err
			}
			if err := d.SP(); err != nil {
				return err
			}
			b, err := d.searchKey(utf8)
			k.Children = []*SearchKey{a, b}
			return err
		})
	case "MODSEQ":
		// search-modsequence = "MODSEQ" [search-modseq-ext] SP
		// mod-sequence-valzer; search-modseq-ext = SP entry-name SP
		// entry-type-req (RFC 7162 §7).
		if c, _ := d.peekByte(); c == '"' {
			if k.Field, err = d.String(); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(k.Field, "/flags/") {
				return nil, syntaxErr("MODSEQ entry name must start with /flags/")
			}
			if err := d.SP(); err != nil {
				return nil, err
			}
			if k.Str, err = d.keyword("priv, shared or all"); err != nil {
				return nil, err
			}
			k.Str = strings.ToLower(k.Str)
			if k.Str != "priv" && k.Str != "shared" && k.Str != "all" {
				return nil, syntaxErr("expected priv, shared or all")
			}
			if err := d.SP(); err != nil {
				return nil, err
			}
		}
		k.Num, err = d.Number64()
	default:
		return nil, syntaxErr("unknown search key %q", op)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// nested runs f one level deeper, bounded by MaxDepth.
func (d *Decoder) nested(f func() error) error {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > d.lim.MaxDepth {
		return tooBig("search nesting deeper than %d", d.lim.MaxDepth)
	}
	return f()
}
