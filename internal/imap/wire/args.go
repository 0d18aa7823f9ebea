package wire

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/mailboxname"
)

// NameError is the error of Mailbox and ListMailbox for an astring that
// is syntactically valid but not a valid encoding of a name: not
// modified UTF-7 (RFC 3501 §5.1.3), or with UTF8 not UTF-8 (RFC 6855
// §3). It is no syntax error (no BAD): such a name names no mailbox that
// exists or could be made, and the argument was read whole, so the rest
// of the command can still be read. Error is the client-visible text,
// Dovecot's.
type NameError struct {
	Name string // the astring as sent
	UTF8 bool   // UTF-8 mode: the name is not valid UTF-8
}

func (e *NameError) Error() string {
	if e.UTF8 {
		return "Mailbox name is not valid UTF-8"
	}
	return "Mailbox name is not valid mUTF-7"
}

// Mailbox reads a mailbox name: mailbox = "INBOX" / astring (RFC 9051 §9).
// "INBOX" in any case is returned as "INBOX" (RFC 9051 §5.1). Unless utf8
// (IMAP4rev2 or UTF8=ACCEPT enabled, RFC 6855 §3), the name is modified
// UTF-7 (RFC 3501 §5.1.3) and is decoded; an invalid or non-canonical
// encoding is a *NameError. With utf8, the name must be valid UTF-8.
func (d *Decoder) Mailbox(utf8 bool) (string, error) {
	s, err := d.AString()
	if err != nil {
		return "", err
	}
	name, err := decodeName(s, utf8)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

// decodeName decodes a mailbox name or LIST pattern as sent: the one
// place where a name's encoding is checked.
func decodeName(s string, utf8mode bool) (string, error) {
	if utf8mode {
		if !utf8.ValidString(s) {
			return "", &NameError{Name: s, UTF8: true}
		}
		return s, nil
	}
	name, err := mailboxname.DecodeMUTF7(s)
	if err != nil {
		return "", &NameError{Name: s}
	}
	return name, nil
}

// ListMailbox reads list-mailbox = 1*list-char / string (RFC 9051 §9), a
// LIST pattern that may contain the wildcards "%" and "*". It is decoded
// like Mailbox, except that "INBOX" is not canonicalized: the caller's
// pattern matcher treats INBOX case-insensitively (RFC 9051 §6.3.9). A
// pattern that is not a valid encoding is a *NameError: it matches no
// name.
func (d *Decoder) ListMailbox(utf8mode bool) (string, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return "", err
	}
	var s string
	if c == '"' || c == '{' {
		if s, err = d.String(); err != nil {
			return "", err
		}
	} else {
		b, err := d.take(cList)
		if err != nil {
			return "", err
		}
		if len(b) == 0 {
			return "", syntaxErr("expected mailbox pattern")
		}
		s = string(b)
	}
	return decodeName(s, utf8mode)
}

// System flags in their canonical spelling (RFC 9051 §2.3.2). \Recent is
// IMAP4rev1 only (RFC 3501 §2.3.2).
var systemFlags = map[string]string{
	`\ANSWERED`: `\Answered`,
	`\FLAGGED`:  `\Flagged`,
	`\DELETED`:  `\Deleted`,
	`\SEEN`:     `\Seen`,
	`\DRAFT`:    `\Draft`,
	`\RECENT`:   `\Recent`,
}

// CanonicalFlag returns a system flag in its canonical case (`\seen` ->
// `\Seen`) and any other flag unchanged. Flags are case-insensitive (RFC
// 9051 §2.3.2); strict clients such as mbsync expect system flags in the
// canonical case.
func CanonicalFlag(f string) string {
	if len(f) > 0 && f[0] == '\\' {
		if c, ok := systemFlags[strings.ToUpper(f)]; ok {
			return c
		}
	}
	return f
}

// Flag reads flag = "\" atom / atom (RFC 9051 §9: system flags,
// flag-extension, flag-keyword). System flags are canonicalized, keywords
// and flag extensions returned as sent. "\*" is not a flag (it exists only
// in PERMANENTFLAGS).
func (d *Decoder) Flag() (string, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return "", err
	}
	prefix := ""
	if c == '\\' {
		d.readByte()
		prefix = `\`
	}
	b, err := d.take(cAtom)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", syntaxErr("expected flag")
	}
	return CanonicalFlag(prefix + string(b)), nil
}

// FlagList reads flag-list = "(" [flag *(SP flag)] ")" (RFC 9051 §9).
func (d *Decoder) FlagList() ([]string, error) {
	flags := []string{}
	err := d.List(func() error {
		f, err := d.Flag()
		if err != nil {
			return err
		}
		flags = append(flags, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return flags, nil
}

// digits2 reads exactly n digits.
func (d *Decoder) digitsN(n int, what string) (int, error) {
	v := 0
	for range n {
		c, err := d.peekByte()
		if err != nil {
			return 0, err
		}
		if c < '0' || c > '9' {
			return 0, syntaxErr("expected %s", what)
		}
		d.readByte()
		v = v*10 + int(c-'0')
	}
	return v, nil
}

var months = [...]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// month reads date-month, case-insensitive (ABNF strings are, RFC 5234 §2.3).
func (d *Decoder) month() (time.Month, error) {
	var m [3]byte
	for i := range m {
		c, err := d.peekByte()
		if err != nil {
			return 0, err
		}
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return 0, syntaxErr("expected month name")
		}
		d.readByte()
		m[i] = c &^ 0x20
	}
	for i, name := range months {
		if string(m[:]) == name {
			return time.Month(i + 1), nil
		}
	}
	return 0, syntaxErr("expected month name")
}

// validDate builds a date, refusing days that do not exist (31-Feb).
func validDate(y int, m time.Month, day int, loc *time.Location) (time.Time, bool) {
	t := time.Date(y, m, day, 0, 0, 0, 0, loc)
	return t, t.Day() == day && t.Month() == m
}

// DateTime reads date-time = DQUOTE date-day-fixed "-" date-month "-"
// date-year SP time SP zone DQUOTE (RFC 9051 §9), as in APPEND. The day is
// two digits or SP and one digit. The result carries the client's zone
// offset.
func (d *Decoder) DateTime() (time.Time, error) {
	d.inLine = true
	if err := d.expect('"', "quoted date-time"); err != nil {
		return time.Time{}, err
	}
	c, err := d.peekByte()
	if err != nil {
		return time.Time{}, err
	}
	var day int
	if c == ' ' {
		d.readByte()
		day, err = d.digitsN(1, "day")
	} else {
		day, err = d.digitsN(2, "day")
	}
	if err != nil {
		return time.Time{}, err
	}
	if err := d.expect('-', "- after day"); err != nil {
		return time.Time{}, err
	}
	mon, err := d.month()
	if err != nil {
		return time.Time{}, err
	}
	if err := d.expect('-', "- after month"); err != nil {
		return time.Time{}, err
	}
	year, err := d.digitsN(4, "4-digit year")
	if err != nil {
		return time.Time{}, err
	}
	if err := d.expect(' ', "SP before time"); err != nil {
		return time.Time{}, err
	}
	var hms [3]int
	for i := range hms {
		if i > 0 {
			if err := d.expect(':', ": in time"); err != nil {
				return time.Time{}, err
			}
		}
		if hms[i], err = d.digitsN(2, "2-digit time field"); err != nil {
			return time.Time{}, err
		}
	}
	if hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
		return time.Time{}, syntaxErr("invalid time of day")
	}
	if err := d.expect(' ', "SP before zone"); err != nil {
		return time.Time{}, err
	}
	sign, err := d.peekByte()
	if err != nil {
		return time.Time{}, err
	}
	if sign != '+' && sign != '-' {
		return time.Time{}, syntaxErr("expected zone (+hhmm or -hhmm)")
	}
	d.readByte()
	zone, err := d.digitsN(4, "4-digit zone")
	if err != nil {
		return time.Time{}, err
	}
	if zone%100 > 59 {
		return time.Time{}, syntaxErr("invalid zone")
	}
	if err := d.expect('"', `" closing date-time`); err != nil {
		return time.Time{}, err
	}
	off := (zone/100*60 + zone%100) * 60
	if sign == '-' {
		off = -off
	}
	loc := time.FixedZone("", off)
	t, ok := validDate(year, mon, day, loc)
	if !ok {
		return time.Time{}, syntaxErr("invalid date")
	}
	// A leap second (60) is accepted and folds into the next minute.
	return t.Add(time.Duration(hms[0])*time.Hour + time.Duration(hms[1])*time.Minute +
		time.Duration(hms[2])*time.Second), nil
}

// Date reads date = date-text / DQUOTE date-text DQUOTE, date-text =
// date-day "-" date-month "-" date-year, date-day = 1*2DIGIT (RFC 9051 §9),
// as in SEARCH. The result is midnight UTC of that day: search dates
// disregard time and zone (RFC 9051 §6.4.4).
func (d *Decoder) Date() (time.Time, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return time.Time{}, err
	}
	quoted := c == '"'
	if quoted {
		d.readByte()
	}
	day, err := d.digitsN(1, "day")
	if err != nil {
		return time.Time{}, err
	}
	if c, err := d.peekByte(); err == nil && '0' <= c && c <= '9' {
		d.readByte()
		day = day*10 + int(c-'0')
	}
	if err := d.expect('-', "- after day"); err != nil {
		return time.Time{}, err
	}
	mon, err := d.month()
	if err != nil {
		return time.Time{}, err
	}
	if err := d.expect('-', "- after month"); err != nil {
		return time.Time{}, err
	}
	year, err := d.digitsN(4, "4-digit year")
	if err != nil {
		return time.Time{}, err
	}
	if quoted {
		if err := d.expect('"', `" closing date`); err != nil {
			return time.Time{}, err
		}
	}
	t, ok := validDate(year, mon, day, time.UTC)
	if !ok {
		return time.Time{}, syntaxErr("invalid date")
	}
	return t, nil
}

// StoreAction is the store-att-flags of a STORE command.
type StoreAction struct {
	Mode   flagop.Op // FLAGS, +FLAGS or -FLAGS (RFC 9051 §6.4.6)
	Silent bool      // ".SILENT": no untagged FETCH for this session
	Flags  []string  // canonicalized as by Flag
}

// StoreAction reads store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
// (flag-list / (flag *(SP flag))) (RFC 9051 §9). Both the parenthesized
// list and the bare flags of RFC 3501 are accepted; the bare form ends at
// the first byte that is not SP.
func (d *Decoder) StoreAction() (StoreAction, error) {
	var a StoreAction
	name, err := d.keyword("FLAGS, +FLAGS or -FLAGS")
	if err != nil {
		return a, err
	}
	switch name[0] {
	case '+':
		a.Mode, name = flagop.Add, name[1:]
	case '-':
		a.Mode, name = flagop.Remove, name[1:]
	}
	switch name {
	case "FLAGS":
	case "FLAGS.SILENT":
		a.Silent = true
	default:
		return a, syntaxErr("expected FLAGS, +FLAGS or -FLAGS")
	}
	if err := d.SP(); err != nil {
		return a, err
	}
	c, err := d.peekByte()
	if err != nil {
		return a, err
	}
	if c == '(' {
		a.Flags, err = d.FlagList()
		return a, err
	}
	for {
		f, err := d.Flag()
		if err != nil {
			return a, err
		}
		a.Flags = append(a.Flags, f)
		if c, err := d.peekByte(); err != nil || c != ' ' {
			return a, err
		}
		d.readByte()
	}
}

// Status items a server may be asked for (RFC 9051 §6.3.11; SIZE, RFC
// 8438; HIGHESTMODSEQ, RFC 7162 §3.1.6; RECENT, RFC 3501 §6.3.10;
// MAILBOXID, RFC 8474 §4.3).
var statusItems = map[string]bool{
	"MESSAGES": true, "RECENT": true, "UIDNEXT": true, "UIDVALIDITY": true,
	"UNSEEN": true, "DELETED": true, "SIZE": true, "HIGHESTMODSEQ": true,
	"MAILBOXID": true,
}

// StatusItems reads "(" status-att *(SP status-att) ")" (RFC 9051 §9) and
// returns the items upper-cased. An unknown item or an empty list is an
// error.
func (d *Decoder) StatusItems() ([]string, error) {
	var items []string
	err := d.List(func() error {
		it, err := d.keyword("status item")
		if err != nil {
			return err
		}
		if !statusItems[it] {
			return syntaxErr("unknown status item %q", it)
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, syntaxErr("empty status item list")
	}
	return items, nil
}
