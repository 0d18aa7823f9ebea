package message

import (
	"strings"
	"time"
)

// Date returns the time in the message's Date: field (the first one), for
// SENTBEFORE, SENTON and SENTSINCE (RFC 9051 §6.4.4). False when there is
// no Date: field or it cannot be read. See ParseDate.
func (m *Message) Date() (time.Time, bool) {
	s := fieldScanner{raw: m.raw, pos: int(m.root.HeaderStart), end: int(m.root.HeaderEnd)}
	for {
		f, ok := s.next()
		if !ok {
			return time.Time{}, false
		}
		if equalFoldASCII(f.name, "date") {
			return ParseDate(unfold(f.value))
		}
	}
}

var monthNames = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// zoneOffsets are the zone names RFC 5322 §4.3 keeps as obsolete syntax,
// plus the ones common mailers write. Military zones are read as +0000,
// as §4.3 advises, since their sign was defined backwards.
var zoneOffsets = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0,
	"est": -5 * 3600, "edt": -4 * 3600,
	"cst": -6 * 3600, "cdt": -5 * 3600,
	"mst": -7 * 3600, "mdt": -6 * 3600,
	"pst": -8 * 3600, "pdt": -7 * 3600,
	"cet": 1 * 3600, "cest": 2 * 3600,
	"bst": 1 * 3600, "ist": 0, // IST is ambiguous; read as UTC
	"met": 1 * 3600, "mest": 2 * 3600,
	"eet": 2 * 3600, "eest": 3 * 3600,
	"jst": 9 * 3600, "kst": 9 * 3600,
	"hst": -10 * 3600, "akst": -9 * 3600, "akdt": -8 * 3600,
}

// ParseDate reads an RFC 5322 date-time leniently. Besides the standard
// form ("Mon, 2 Jan 2006 15:04:05 -0700") it takes a missing day of week,
// missing seconds, two- and three-digit years (RFC 5322 §4.3), zone names
// and a zone comment ("+0000 (UTC)"), "GMT+0100", asctime order
// ("Mon Jan  2 15:04:05 2006"), ISO dates ("2006-01-02 15:04:05"), and
// dots or dashes between day, month and year. A missing zone is UTC; a
// missing time is midnight. It needs at least a day, a month and a year.
// A date that does not exist (31 Feb, 29 Feb 1994, day 0, month 13, hour
// 24 or more, minute 60 or more) is unreadable, never rolled over into
// another; second 60 (a leap second) is read as 59. The one parser of
// Date: fields: SEARCH SENT* (and SORT, when it comes) use it through
// Message.Date; ENVELOPE gives the field as written.
func ParseDate(s string) (time.Time, bool) {
	// Drop comments.
	if strings.IndexByte(s, '(') >= 0 {
		var b strings.Builder
		depth := 0
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '(':
				depth++
			case c == ')' && depth > 0:
				depth--
			case depth == 0:
				b.WriteByte(c)
			}
		}
		s = b.String()
	}
	// ISO 8601 "2006-01-02T15:04:05": split date and time.
	for i := 1; i+1 < len(s); i++ {
		if (s[i] == 'T' || s[i] == 't') && '0' <= s[i-1] && s[i-1] <= '9' && '0' <= s[i+1] && s[i+1] <= '9' {
			s = s[:i] + " " + s[i+1:]
		}
	}
	day, month, year := -1, -1, -1
	hour, minute, sec := 0, 0, 0
	haveTime, haveZone := false, false
	zone := 0
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n'
	})
	for _, f := range fields {
		lf := strings.ToLower(f)
		switch {
		case isDigits(f) && len(f) <= 2 && day < 0:
			day = atoi(f)
		case isDigits(f) && len(f) <= 4 && year < 0:
			year = atoi(f)
			switch len(f) {
			case 1, 2:
				if year < 50 {
					year += 2000
				} else {
					year += 1900
				}
			case 3:
				year += 1900
			}
		case strings.IndexByte(f, ':') > 0 && !haveTime:
			t := f
			// "15:04:05+0100", "15:04:05Z"
			if i := strings.IndexAny(t, "+-Zz"); i > 0 {
				if off, ok := parseOffset(t[i:]); ok && !haveZone {
					zone, haveZone = off, true
				}
				t = t[:i]
			}
			if i := strings.IndexByte(t, '.'); i > 0 {
				t = t[:i] // fractional seconds
			}
			parts := strings.Split(t, ":")
			if len(parts) < 2 || len(parts) > 3 {
				return time.Time{}, false
			}
			for _, p := range parts {
				if !isDigits(p) || len(p) > 2 {
					return time.Time{}, false
				}
			}
			hour, minute = atoi(parts[0]), atoi(parts[1])
			if len(parts) == 3 {
				sec = atoi(parts[2])
			}
			haveTime = true
		case (f[0] == '+' || f[0] == '-') && len(f) > 1 && !haveZone:
			if off, ok := parseOffset(f); ok {
				zone, haveZone = off, true
			}
		case strings.Count(f, "-") == 2 || strings.Count(f, ".") == 2 || strings.Count(f, "/") == 2:
			if !dmy(f, &day, &month, &year) {
				return time.Time{}, false
			}
		default:
			if len(lf) >= 3 && month < 0 {
				if m := monthIndex(lf); m >= 0 {
					month = m
					continue
				}
			}
			name, rest := lf, ""
			if i := strings.IndexAny(lf, "+-"); i > 0 {
				name, rest = lf[:i], lf[i:]
			}
			if off, ok := zoneOffsets[name]; ok && !haveZone {
				zone, haveZone = off, true
				if rest != "" {
					if o, ok := parseOffset(rest); ok {
						zone = o
					}
				}
			}
			// Day names and unknown words are ignored.
		}
	}
	if day < 1 || day > 31 || month < 0 || year < 0 || year > 9999 ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 {
		sec = 59 // a leap second; time.Date would roll over
	}
	t := time.Date(year, time.Month(month+1), day, hour, minute, sec, 0, time.FixedZone("", zone))
	if t.Day() != day {
		// 31 Feb, 29 Feb of a common year: time.Date would roll it
		// over into March. Dovecot's utc_mktime refuses any date
		// that needs normalizing; so do we.
		return time.Time{}, false
	}
	return t, true
}

func monthIndex(lf string) int {
	for i, m := range monthNames {
		if strings.HasPrefix(lf, m) {
			return i
		}
	}
	return -1
}

// dmy reads "2006-01-02", "02.01.2006", "02-Jan-2006" or "01/02/2006"
// (read as month/day, the US order, which is what writes slashes).
func dmy(f string, day, month, year *int) bool {
	sep := "-"
	if strings.Count(f, ".") == 2 {
		sep = "."
	} else if strings.Count(f, "/") == 2 {
		sep = "/"
	}
	p := strings.Split(f, sep)
	switch {
	case isDigits(p[0]) && len(p[0]) == 4 && isDigits(p[1]) && isDigits(p[2]):
		*year, *month, *day = atoi(p[0]), atoi(p[1])-1, atoi(p[2])
	case isDigits(p[0]) && isDigits(p[2]) && monthIndex(strings.ToLower(p[1])) >= 0:
		*day, *month, *year = atoi(p[0]), monthIndex(strings.ToLower(p[1])), atoi(p[2])
	case sep == "/" && isDigits(p[0]) && isDigits(p[1]) && isDigits(p[2]):
		*month, *day, *year = atoi(p[0])-1, atoi(p[1]), atoi(p[2])
	case isDigits(p[0]) && isDigits(p[1]) && isDigits(p[2]):
		*day, *month, *year = atoi(p[0]), atoi(p[1])-1, atoi(p[2])
	default:
		return false
	}
	if *year >= 0 && *year < 100 {
		if *year < 50 {
			*year += 2000
		} else {
			*year += 1900
		}
	}
	return *month >= 0 && *month < 12
}

// parseOffset reads "+hhmm", "-hh:mm", "+hh" and "Z".
func parseOffset(s string) (int, bool) {
	if s == "z" || s == "Z" {
		return 0, true
	}
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	d := strings.ReplaceAll(s[1:], ":", "")
	if !isDigits(d) {
		return 0, false
	}
	var h, m int
	switch len(d) {
	case 1, 2:
		h = atoi(d)
	case 3:
		h, m = atoi(d[:1]), atoi(d[1:])
	case 4:
		h, m = atoi(d[:2]), atoi(d[2:])
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, true
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

// atoi converts a short digit string; callers check isDigits and length.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
