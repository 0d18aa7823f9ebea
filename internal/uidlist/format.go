package uidlist

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// File names in a mailbox directory.
const (
	FileName         = "dovecot-uidlist"
	LockName         = "dovecot-uidlist.lock"
	KeywordsFileName = "dovecot-keywords"
	CourierFileName  = "courierimapuiddb"

	// TempName is where Rewrite builds the new file; Dovecot uses the same
	// name (maildir_uidlist_recreate), always under the lock.
	TempName = "dovecot-uidlist.tmp"
)

// maxUID is the highest UID a record may carry: Dovecot rejects
// (uint32_t)-1 ("UID too high") because next UID would overflow.
const maxUID = math.MaxUint32 - 1

// Header is the first line of a uidlist.
type Header struct {
	Version     int    // 1, 2 or 3 as read; files are always written as 3
	UIDValidity uint32 // never 0 in a parsed file
	// NextUID is the next UID to assign: the header's N raised to last
	// UID + 1 when records go beyond it (normal after appends).
	NextUID uint32
	GUID    string   // 'G' field, 32 lowercase hex chars in v3; "" when absent
	Extra   []string // unknown header fields, kept verbatim and written back
}

// Record is one message: its UID and its file name.
type Record struct {
	UID uint32
	// Name is the file name as stored: a base name, or a base name with
	// ":2,<flags>" (both occur; version 1 stores full names).
	Name string
	// Ext holds the version 3 extension fields ("S1234", "W1300",
	// "G<guid>"), verbatim and in order.
	Ext []string
}

// Base returns the base name: Name up to the first ':'.
func (r Record) Base() string { return baseName(r.Name) }

func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// File is a whole uidlist: the header and the records in ascending UID
// order, each base name at most once.
//
// A File from a lean Reader (NewLeanReader) is partial: its Records are
// only those that Reader read last (the whole file after a full read,
// the appended lines after an incremental one, none once settled), and
// Len counts the whole file's.
type File struct {
	Header  Header
	Records []Record
	// partial: Records are a lean Reader's last read; total is the
	// whole file's record count then.
	partial bool
	total   int
}

// Partial reports whether f is a lean Reader's (Records are the last
// read's, not the whole file's).
func (f *File) Partial() bool { return f.partial }

// Len returns the number of records in the whole file: len(Records),
// or a lean Reader's count of every record it read (a base name given
// again in an appended line counted twice).
func (f *File) Len() int {
	if f.partial {
		return f.total
	}
	return len(f.Records)
}

// Lookup returns the record with the given UID.
func (f *File) Lookup(uid uint32) (Record, bool) {
	i := sort.Search(len(f.Records), func(i int) bool { return f.Records[i].UID >= uid })
	if i < len(f.Records) && f.Records[i].UID == uid {
		return f.Records[i], true
	}
	return Record{}, false
}

// LastUID returns the highest UID in f, or 0 when it has no records.
func (f *File) LastUID() uint32 {
	if len(f.Records) == 0 {
		return 0
	}
	return f.Records[len(f.Records)-1].UID
}

// Parse reads a dovecot-uidlist of version 1, 2 or 3. path is used only in
// errors and Problems.
//
// It fails (with a *ParseError wrapping ErrBadHeader or ErrBadVersion) only
// when the header is unusable: empty file, header without '\n', unknown
// version, missing or zero UIDVALIDITY or next UID. Damaged record lines are
// skipped and reported as Problems; every valid record is kept. The result
// shares memory with nothing passed in (data may be reused).
func Parse(path string, data []byte) (*File, []Problem, error) {
	p := newParser(path)
	p.feed(string(data), true)
	if p.err != nil {
		return nil, p.problems, p.err
	}
	return p.file(), p.problems, nil
}

// parser reads a uidlist line by line. It is incremental: feed may be
// called again with the bytes appended since (see Reader).
type parser struct {
	path     string
	line     int // lines consumed so far
	haveHdr  bool
	hdr      Header
	hdrNext  uint32 // N as read from the header
	recs     []Record
	bases    map[string]uint32 // base name -> UID
	extPool  []string
	problems []Problem
	err      error
	// last is the highest UID added.
	last uint32
	// lean: recs, bases and extPool hold one read's records only (lean
	// Reader); seen holds the hashes of every base name read, total
	// counts every record added.
	lean  bool
	seen  hashSet
	total int
}

func newParser(path string) *parser {
	return &parser{path: path}
}

func (p *parser) problem(line, reason string) {
	p.problems = append(p.problems, Problem{Path: p.path, Line: p.line, Text: problemText(line), Reason: reason})
}

// feed parses the complete lines of data and returns how many bytes it
// consumed. A last line without '\n' is consumed (and reported) only when
// final is set: otherwise it may be an append in progress. After a header
// error p.err is set and nothing more is parsed.
func (p *parser) feed(data string, final bool) int {
	if p.err != nil {
		return 0
	}
	if p.lean && p.haveHdr {
		// One read's records: what the last one made is the File's.
		p.recs, p.bases, p.extPool = nil, nil, nil
	}
	if !p.haveHdr && p.bases == nil {
		// A line is at least ~25 bytes in practice; size the tables once.
		n := len(data) / 48
		p.recs = make([]Record, 0, n)
		p.bases = make(map[string]uint32, n)
	}
	consumed := 0
	for consumed < len(data) {
		rest := data[consumed:]
		nl := strings.IndexByte(rest, '\n')
		var line string
		if nl < 0 {
			if !final {
				break
			}
			line = rest
			consumed = len(data)
		} else {
			line = rest[:nl]
			consumed += nl + 1
		}
		p.line++
		if nl < 0 {
			if !p.haveHdr {
				p.fail("header line not terminated by newline (truncated file?)", ErrBadHeader)
				return consumed
			}
			p.problem(line, "last line not terminated by newline (truncated write?), skipped")
			break
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if !p.haveHdr {
			p.header(line)
			if p.err != nil {
				return consumed
			}
			continue
		}
		p.record(line)
	}
	if final && !p.haveHdr && p.err == nil {
		p.line = 1
		p.fail("empty file", ErrBadHeader)
	}
	return consumed
}

func (p *parser) fail(reason string, err error) {
	p.err = &ParseError{Path: p.path, Line: p.line, Reason: reason, Err: err}
}

// parseUint32 parses a non-empty decimal without sign or spaces.
func parseUint32(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

func isHexGUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (p *parser) header(line string) {
	if strings.IndexByte(line, 0) >= 0 {
		p.fail("NUL byte in header", ErrBadHeader)
		return
	}
	// Dovecot: one digit, then a space.
	if len(line) < 2 || line[0] < '0' || line[0] > '9' || line[1] != ' ' {
		p.fail("corrupted header (invalid version number)", ErrBadVersion)
		return
	}
	h := Header{Version: int(line[0] - '0')}
	fields := strings.Fields(line[2:])
	var next uint32
	switch h.Version {
	case 1, 2:
		if len(fields) < 2 {
			p.fail("corrupted header: want \"<version> <uidvalidity> <nextuid>\"", ErrBadHeader)
			return
		}
		var ok1, ok2 bool
		h.UIDValidity, ok1 = parseUint32(fields[0])
		next, ok2 = parseUint32(fields[1])
		if !ok1 || !ok2 {
			p.fail("corrupted header: bad number", ErrBadHeader)
			return
		}
		if len(fields) > 2 {
			p.problem(line, "extra header fields ignored")
		}
	case 3:
		for _, f := range strings.Split(line[2:], " ") {
			if f == "" {
				continue
			}
			switch f[0] {
			case 'V':
				v, ok := parseUint32(f[1:])
				if !ok {
					p.fail("bad UIDVALIDITY field "+strconv.Quote(f), ErrBadHeader)
					return
				}
				h.UIDValidity = v
			case 'N':
				v, ok := parseUint32(f[1:])
				if !ok {
					p.fail("bad next UID field "+strconv.Quote(f), ErrBadHeader)
					return
				}
				next = v
			case 'G':
				if !isHexGUID(f[1:]) {
					p.problem(line, "invalid mailbox GUID "+strconv.Quote(f)+" dropped")
					h.GUID = ""
					continue
				}
				// Copies: a Reader keeps the header after it lets
				// go of the file's bytes (Settle).
				h.GUID = strings.Clone(strings.ToLower(f[1:]))
			default:
				if strings.IndexByte(f, '\r') >= 0 {
					// A CR could not be written back faithfully at
					// the end of the line.
					p.problem(line, "header field with CR "+strconv.Quote(f)+" dropped")
					continue
				}
				h.Extra = append(h.Extra, strings.Clone(f))
			}
		}
	default:
		p.fail("unsupported version "+strconv.Itoa(h.Version), ErrBadVersion)
		return
	}
	if h.UIDValidity == 0 || next == 0 {
		p.fail("broken header (uidvalidity = "+strconv.FormatUint(uint64(h.UIDValidity), 10)+
			", next_uid = "+strconv.FormatUint(uint64(next), 10)+")", ErrBadHeader)
		return
	}
	h.NextUID = next
	p.hdr = h
	p.hdrNext = next
	p.haveHdr = true
}

func (p *parser) lastUID() uint32 { return p.last }

// record parses one record line and adds it, or reports why not.
func (p *parser) record(line string) {
	if strings.IndexByte(line, 0) >= 0 {
		p.problem(line, "NUL byte in line, skipped")
		return
	}
	i := 0
	var uid uint64
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		if uid <= math.MaxUint32 {
			uid = uid*10 + uint64(line[i]-'0')
		}
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		p.problem(line, "invalid data (want \"<uid> ...\"), skipped")
		return
	}
	if uid == 0 {
		p.problem(line, "UID 0, skipped")
		return
	}
	if uid > maxUID {
		p.problem(line, "UID too high, skipped")
		return
	}
	if last := p.lastUID(); uint32(uid) <= last {
		p.problem(line, "UIDs not ordered ("+strconv.FormatUint(uid, 10)+" <= "+
			strconv.FormatUint(uint64(last), 10)+"), skipped")
		return
	}
	for i < len(line) && line[i] == ' ' {
		i++
	}
	rec := Record{UID: uint32(uid)}
	switch p.hdr.Version {
	case 2:
		// <flags> token: internal state of old Dovecot, dropped.
		sp := strings.IndexByte(line[i:], ' ')
		if sp < 0 {
			p.problem(line, "missing flags or file name, skipped")
			return
		}
		i += sp
		for i < len(line) && line[i] == ' ' {
			i++
		}
	case 3:
		start := len(p.extPool)
		var dropped string
		for i < len(line) && line[i] != ':' {
			j := i
			for j < len(line) && line[j] != ' ' {
				j++
			}
			f := line[i:j]
			if f[0] >= 'A' && f[0] <= 'Z' && strings.IndexByte(f, '\r') < 0 {
				p.extPool = append(p.extPool, f)
			} else if dropped == "" {
				dropped = f
			}
			i = j
			for i < len(line) && line[i] == ' ' {
				i++
			}
		}
		if i == len(line) {
			p.extPool = p.extPool[:start]
			p.problem(line, "no ':' before file name, skipped")
			return
		}
		i++ // ':'
		if n := len(p.extPool); n > start {
			rec.Ext = p.extPool[start:n:n]
		}
		if dropped != "" {
			p.problem(line, "invalid extension field "+strconv.Quote(dropped)+" dropped")
		}
	}
	rec.Name = line[i:]
	if reason := NameProblem(rec.Name); reason != "" {
		p.problem(line, reason+", skipped")
		return
	}
	if p.hdr.Version != 3 && rec.UID >= p.hdrNext {
		p.problem(line, "UID larger than header next_uid "+strconv.FormatUint(uint64(p.hdrNext), 10)+", next UID raised")
	}
	p.add(rec, line)
}

// NameProblem returns why a file of this name cannot have a record (a
// line of dovecot-uidlist could not hold it, or it is no file name), or "".
// A name ending in CR is refused: readers take a CR before the newline as
// part of a CRLF line end, so the record would read back as another name.
func NameProblem(name string) string {
	if name == "" {
		return "empty file name"
	}
	if name[0] == ':' {
		return "empty base name"
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/':
			return "broken file name (contains '/')"
		case '\n', 0:
			return "newline or NUL in file name"
		}
	}
	if name[len(name)-1] == '\r' {
		return "file name ends in CR"
	}
	return ""
}

// add appends rec, which has a UID above every record so far; an earlier
// record with the same base name is dropped (the later line wins).
func (p *parser) add(rec Record, line string) {
	base := rec.Base()
	if old, dup := p.bases[base]; dup {
		p.problem(line, "duplicate file entry (uid "+strconv.FormatUint(uint64(old), 10)+
			" -> "+strconv.FormatUint(uint64(rec.UID), 10)+"), older record dropped")
		i := sort.Search(len(p.recs), func(i int) bool { return p.recs[i].UID >= old })
		// Never write into the old array: snapshots handed out by a
		// Reader share it.
		p.recs = append(p.recs[:i:i], p.recs[i+1:]...)
	}
	if p.bases == nil {
		p.bases = make(map[string]uint32)
	}
	p.bases[base] = rec.UID
	p.recs = append(p.recs, rec)
	p.last = rec.UID
	if p.lean {
		p.seen.add(hashBase(base))
		p.total++
	}
}

// file returns the parsed state as a File. The Records slice is capped so
// that appending to it copies instead of writing into the parser's array.
func (p *parser) file() *File {
	h := p.hdr
	h.NextUID = p.hdrNext
	if last := p.lastUID(); last >= h.NextUID {
		h.NextUID = last + 1
	}
	n := len(p.recs)
	return &File{Header: h, Records: p.recs[:n:n], partial: p.lean, total: p.total}
}

// ParseCourier reads Courier-IMAP's courierimapuiddb (version 1:
// "1 <uidvalidity> <nextuid>", then "<uid> <basename>" lines). The File has
// Header.Version 1, no GUID, and records sorted by UID; lines out of UID
// order are sorted in (Courier does not require the order), bad lines and
// repeated UIDs are skipped and reported, a repeated base name keeps its
// highest UID.
func ParseCourier(path string, data []byte) (*File, []Problem, error) {
	s := string(data)
	var problems []Problem
	fail := func(line int, reason string, err error) (*File, []Problem, error) {
		return nil, problems, &ParseError{Path: path, Line: line, Reason: reason, Err: err}
	}
	nl := strings.IndexByte(s, '\n')
	if nl < 0 {
		if s == "" {
			return fail(1, "empty file", ErrBadHeader)
		}
		return fail(1, "header line not terminated by newline (truncated file?)", ErrBadHeader)
	}
	hdrLine := strings.TrimSuffix(s[:nl], "\r")
	fields := strings.Fields(hdrLine)
	if len(fields) < 3 || strings.IndexByte(hdrLine, 0) >= 0 {
		return fail(1, "corrupted header: want \"1 <uidvalidity> <nextuid>\"", ErrBadHeader)
	}
	if fields[0] != "1" {
		return fail(1, "unsupported courierimapuiddb version "+strconv.Quote(fields[0]), ErrBadVersion)
	}
	uidv, ok1 := parseUint32(fields[1])
	next, ok2 := parseUint32(fields[2])
	if !ok1 || !ok2 || uidv == 0 || next == 0 {
		return fail(1, "broken header", ErrBadHeader)
	}
	type rec struct {
		r    Record
		line int
		text string
	}
	var recs []rec
	rest := s[nl+1:]
	for line := 2; rest != ""; line++ {
		var l string
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			problems = append(problems, Problem{path, line, problemText(rest), "last line not terminated by newline (truncated write?), skipped"})
			break
		}
		l, rest = strings.TrimSuffix(rest[:nl], "\r"), rest[nl+1:]
		bad := func(reason string) {
			problems = append(problems, Problem{path, line, problemText(l), reason + ", skipped"})
		}
		sp := strings.IndexByte(l, ' ')
		if sp < 0 {
			bad("invalid data (want \"<uid> <filename>\")")
			continue
		}
		uid, ok := parseUint32(l[:sp])
		switch {
		case !ok:
			bad("invalid UID")
			continue
		case uid == 0:
			bad("UID 0")
			continue
		case uid > maxUID:
			bad("UID too high")
			continue
		}
		name := l[sp+1:]
		if reason := NameProblem(name); reason != "" {
			bad(reason)
			continue
		}
		if uid >= next {
			problems = append(problems, Problem{path, line, problemText(l), "UID larger than header next_uid, next UID raised"})
		}
		recs = append(recs, rec{Record{UID: uid, Name: name}, line, l})
	}
	if !sort.SliceIsSorted(recs, func(i, j int) bool { return recs[i].r.UID < recs[j].r.UID }) {
		problems = append(problems, Problem{path, 1, problemText(hdrLine), "records not in UID order, sorted"})
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].r.UID < recs[j].r.UID })
	}
	p := newParser(path)
	p.hdr = Header{Version: 1, UIDValidity: uidv, NextUID: next}
	p.hdrNext = next
	p.haveHdr = true
	p.bases = make(map[string]uint32, len(recs))
	p.recs = make([]Record, 0, len(recs))
	for _, r := range recs {
		p.line = r.line
		if r.r.UID <= p.lastUID() {
			p.problem(r.text, "repeated UID, skipped")
			continue
		}
		p.add(r.r, r.text)
	}
	problems = append(problems, p.problems...)
	return p.file(), problems, nil
}

// Marshal returns f as a version 3 dovecot-uidlist:
//
//	3 V<uidvalidity> N<nextuid> [G<guid>] [<extra> ...]
//	<uid> [<ext> ...] :<name>
//
// G is left out when f has no GUID (Rewrite always supplies one). Marshal
// does not check f; Validate does, and Append and Rewrite call it.
func (f *File) Marshal() []byte {
	size := 64
	for _, r := range f.Records {
		size += 13 + len(r.Name)
		for _, e := range r.Ext {
			size += 1 + len(e)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, "3 V"...)
	b = strconv.AppendUint(b, uint64(f.Header.UIDValidity), 10)
	b = append(b, " N"...)
	b = strconv.AppendUint(b, uint64(f.Header.NextUID), 10)
	if f.Header.GUID != "" {
		b = append(b, " G"...)
		b = append(b, f.Header.GUID...)
	}
	for _, e := range f.Header.Extra {
		b = append(b, ' ')
		b = append(b, e...)
	}
	b = append(b, '\n')
	for _, r := range f.Records {
		b = appendRecord(b, r)
	}
	return b
}

func appendRecord(b []byte, r Record) []byte {
	b = strconv.AppendUint(b, uint64(r.UID), 10)
	for _, e := range r.Ext {
		b = append(b, ' ')
		b = append(b, e...)
	}
	b = append(b, " :"...)
	b = append(b, r.Name...)
	return append(b, '\n')
}

// Validate reports (wrapping ErrBadRecord, ErrUIDOrder or
// ErrDuplicateName) why f cannot be written as a version 3 file that
// parses back to the same records.
func (f *File) Validate() error {
	h := f.Header
	if h.UIDValidity == 0 {
		return badRecord("UIDVALIDITY 0")
	}
	if h.GUID != "" && (!isHexGUID(h.GUID) || strings.ToLower(h.GUID) != h.GUID) {
		return badRecord("mailbox GUID " + strconv.Quote(h.GUID) + " is not 32 lowercase hex digits")
	}
	for _, e := range h.Extra {
		if e == "" || e[0] == 'V' || e[0] == 'N' || e[0] == 'G' || strings.ContainsAny(e, " \r\n\x00") {
			return badRecord("header field " + strconv.Quote(e))
		}
	}
	if err := validateRecords(f.Records, 0); err != nil {
		return err
	}
	return nil
}

func badRecord(why string) error {
	return &wrapErr{msg: "uidlist: record cannot be written: " + why, err: ErrBadRecord}
}

type wrapErr struct {
	msg string
	err error
}

func (e *wrapErr) Error() string { return e.msg }
func (e *wrapErr) Unwrap() error { return e.err }

// validateRecords checks recs in order, each UID above the previous and
// above after, and each base name once.
func validateRecords(recs []Record, after uint32) error {
	seen := make(map[string]struct{}, len(recs))
	prev := after
	for _, r := range recs {
		if err := validateRecord(r); err != nil {
			return err
		}
		if r.UID <= prev {
			return &wrapErr{msg: "uidlist: UIDs not ascending: " + strconv.FormatUint(uint64(r.UID), 10) +
				" after " + strconv.FormatUint(uint64(prev), 10), err: ErrUIDOrder}
		}
		prev = r.UID
		b := r.Base()
		if _, dup := seen[b]; dup {
			return &wrapErr{msg: "uidlist: base name " + strconv.Quote(b) + " twice", err: ErrDuplicateName}
		}
		seen[b] = struct{}{}
	}
	return nil
}

func validateRecord(r Record) error {
	if r.UID == 0 || r.UID > maxUID {
		return badRecord("UID " + strconv.FormatUint(uint64(r.UID), 10))
	}
	if reason := NameProblem(r.Name); reason != "" {
		return badRecord(reason + ": " + strconv.Quote(r.Name))
	}
	for _, e := range r.Ext {
		if e == "" || e[0] < 'A' || e[0] > 'Z' || strings.ContainsAny(e, " \r\n\x00") {
			return badRecord("extension field " + strconv.Quote(e))
		}
	}
	return nil
}

// NewUIDValidity returns a UIDVALIDITY for a new or rebuilt mailbox: the
// current Unix time, or previous+1 when that is not greater than previous
// (a clock that went back, or two rebuilds within a second), so that the
// value always grows as RFC 9051 §2.3.1.1 requires. previous 0 means none.
func NewUIDValidity(previous uint32) uint32 {
	now := time.Now().Unix()
	var v uint32
	if now > 0 && now <= math.MaxUint32 {
		v = uint32(now)
	}
	if previous != 0 && v <= previous {
		v = previous + 1
	}
	if v == 0 {
		// Only after previous = 2^32-1: nothing greater exists.
		v = 1
	}
	return v
}

// NewGUID returns a new mailbox GUID: 32 lowercase hex digits from
// crypto/rand.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
