package fsck

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cistern-mail/cistern/internal/uidlist"
)

// uidAnalysis is one reading of a dovecot-uidlist: the records its
// readers use, and what is wrong with it, line by line.
type uidAnalysis struct {
	// file is what readers make of the file (uidlist.Parse), read with a
	// salvaged header when the real one is unusable; nil when not even
	// the UIDVALIDITY can be read from it.
	file     *uidlist.File
	salvaged bool
	lines    []uidLine // the lines that parse as a record, in file order
	// highest is the highest UID at the start of any line, damaged lines
	// included: whoever wrote it may have handed it out.
	highest     uint32
	highestLine int
	problems    []problem
}

// uidLine is one record line.
type uidLine struct {
	num int // 1-based line number
	rec uidlist.Record
	// skipped: readers ignore the line, its UID not being above the
	// last one they kept; dupUID: because an earlier line has the UID.
	skipped, dupUID bool
}

// problem is a finding before it is placed in a mailbox.
type problem struct {
	kind   Kind
	uid    uint32
	base   string
	detail string
	path   string // Finding.Path
}

// maxLineText bounds the line text quoted in a finding.
const maxLineText = 80

func quoteLine(s string) string {
	if len(s) > maxLineText {
		s = s[:maxLineText] + "..."
	}
	return strconv.Quote(s)
}

// readUIDList reads and analyses the uidlist at path; (nil, nil) when
// there is none.
func readUIDList(path string) (*uidAnalysis, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return analyzeUIDList(path, data), nil
}

// lineHeaders are headers under which one record line of each version
// parses on its own: no next UID can be below a valid UID.
var lineHeaders = map[int]string{
	1: "1 1 4294967295\n",
	2: "2 1 4294967295\n",
	3: "3 V1 N1\n",
}

// analyzeUIDList reads data, the content of the uidlist at path.
func analyzeUIDList(path string, data []byte) *uidAnalysis {
	a := &uidAnalysis{}
	text := string(data)
	hdr, rest, _ := strings.Cut(text, "\n")
	hdr = strings.TrimSuffix(hdr, "\r")

	f, probs, err := uidlist.Parse(path, data)
	if err != nil {
		why := err.Error()
		var pe *uidlist.ParseError
		if errors.As(err, &pe) {
			why = pe.Reason
		}
		fixed, ok := salvageHeader(hdr)
		if ok {
			f, probs, err = uidlist.Parse(path, []byte(fixed+"\n"+rest))
		}
		if !ok || err != nil {
			a.add(Header, 0, "", fmt.Sprintf("unusable (%s): no UID can be read from it; it is left as it is, since "+
				"rebuilding it needs a new UIDVALIDITY and every client would download every message again", why))
			return a
		}
		a.salvaged = true
		a.add(Header, 0, "", fmt.Sprintf("unusable to its readers (%s); UIDVALIDITY %d can be read from it",
			why, f.Header.UIDValidity))
	}
	a.file = f
	for _, p := range probs {
		if p.Line == 1 {
			a.add(Header, 0, "", "line 1: "+p.Reason)
		}
	}

	lineHdr := lineHeaders[f.Header.Version]
	lines := strings.Split(rest, "\n")
	if !strings.Contains(text, "\n") {
		lines = nil // the whole file is its header
	}
	for i, line := range lines {
		last := i == len(lines)-1
		if last && line == "" {
			break // the end of the last complete line
		}
		num := i + 2
		one := lineHdr + line
		if !last {
			one += "\n"
		}
		lf, lp, lerr := uidlist.Parse(path, []byte(one))
		if uid, ok := leadingUID(line); ok && uid > a.highest {
			a.highest, a.highestLine = uid, num
		}
		if len(lp) > 0 {
			reasons := make([]string, len(lp))
			for j, p := range lp {
				reasons[j] = p.Reason
			}
			a.add(DamagedLine, 0, "", fmt.Sprintf("line %d %s: %s", num, quoteLine(line), strings.Join(reasons, "; ")))
		}
		if lerr == nil && len(lf.Records) == 1 {
			a.lines = append(a.lines, uidLine{num: num, rec: lf.Records[0]})
		}
	}
	a.classify()

	if f.Header.Version != 3 {
		if n, ok := headerNext(hdr); ok {
			var top uidLine
			for _, l := range a.lines {
				if l.rec.UID > top.rec.UID {
					top = l
				}
			}
			if top.rec.UID != 0 && n <= top.rec.UID {
				a.add(NextUID, 0, "", fmt.Sprintf("the header's next UID %d is not above UID %d (line %d)", n, top.rec.UID, top.num))
			}
		}
	}
	if a.highest >= f.Header.NextUID {
		a.add(NextUID, a.highest, "", fmt.Sprintf("UID %d on line %d is not below the next UID %d: it could be handed out twice",
			a.highest, a.highestLine, f.Header.NextUID))
	}
	return a
}

// classify finds repeated and unordered UIDs and base names with two
// UIDs, deciding as readers do which lines count: a line counts when its
// UID is above the last one that counted.
func (a *uidAnalysis) classify() {
	type seen struct {
		uid  uint32
		line int
	}
	uidAt := make(map[uint32]uidLine, len(a.lines))
	baseAt := make(map[string]seen, len(a.lines))
	var last uint32
	for i := range a.lines {
		l := &a.lines[i]
		uid, base := l.rec.UID, l.rec.Base()
		if first, dup := uidAt[uid]; dup {
			l.skipped, l.dupUID = true, true
			a.add(DuplicateUID, uid, base, fmt.Sprintf("UID %d on line %d (%s) is also on line %d (%s)",
				uid, l.num, base, first.num, first.rec.Base()))
		} else {
			uidAt[uid] = *l
			if uid <= last {
				l.skipped = true
				a.add(UIDOrder, uid, base, fmt.Sprintf("UID %d (%s) on line %d follows UID %d", uid, base, l.num, last))
			}
		}
		if prev, ok := baseAt[base]; ok && prev.uid != uid {
			a.add(DuplicateRecord, uid, base, fmt.Sprintf("%s has UID %d (line %d) and UID %d (line %d)",
				base, prev.uid, prev.line, uid, l.num))
		}
		if _, ok := baseAt[base]; !ok {
			baseAt[base] = seen{uid, l.num}
		}
		if !l.skipped {
			last = uid
		}
	}
}

func (a *uidAnalysis) add(k Kind, uid uint32, base, detail string) {
	a.problems = append(a.problems, problem{kind: k, uid: uid, base: base, detail: detail})
}

// records maps every base name readers give a UID to that UID.
func (a *uidAnalysis) records() map[string]uint32 {
	if a == nil || a.file == nil {
		return nil
	}
	m := make(map[string]uint32, len(a.file.Records))
	for _, r := range a.file.Records {
		m[r.Base()] = r.UID
	}
	return m
}

// rebuildStats says what rebuild changed.
type rebuildStats struct {
	restored, dropped int
	next              uint32
}

// rebuild returns the uidlist to write in place of the analysed one: the
// records readers use, plus the lines they skipped whose UID and base
// name no other record has (their UID is the message's only one), minus
// the records of base names present says are gone (present nil: none is
// dropped), with a next UID above every UID the file held. No UID that
// readers give a message changes, and the UIDVALIDITY and GUID stay.
func (a *uidAnalysis) rebuild(present func(base string) bool) (*uidlist.File, rebuildStats) {
	var st rebuildStats
	recs := slices.Clone(a.file.Records)
	uids := make(map[uint32]bool, len(recs))
	bases := make(map[string]bool, len(recs))
	for _, r := range recs {
		uids[r.UID], bases[r.Base()] = true, true
	}
	for _, l := range a.lines {
		if !l.skipped || l.dupUID || uids[l.rec.UID] || bases[l.rec.Base()] {
			continue
		}
		recs = append(recs, l.rec)
		uids[l.rec.UID], bases[l.rec.Base()] = true, true
		st.restored++
	}
	slices.SortFunc(recs, func(x, y uidlist.Record) int { return int(int64(x.UID) - int64(y.UID)) })
	if present != nil {
		kept := recs[:0]
		for _, r := range recs {
			if present(r.Base()) {
				kept = append(kept, r)
			} else {
				st.dropped++
			}
		}
		recs = kept
	}
	h := a.file.Header
	h.Version = 3
	next := h.NextUID
	if a.highest >= next && a.highest < math.MaxUint32 {
		next = a.highest + 1
	}
	if k := len(recs); k > 0 && recs[k-1].UID >= next {
		next = recs[k-1].UID + 1
	}
	h.NextUID = next
	st.next = next
	return &uidlist.File{Header: h, Records: recs}, st
}

// salvageHeader returns a usable header of the same version for an
// unusable one, when its UIDVALIDITY can be read: a missing or broken
// next UID becomes 1 (the records raise it), broken fields are dropped.
// Unknown versions are never salvaged: they may be a newer format.
func salvageHeader(line string) (string, bool) {
	if len(line) < 2 || line[1] != ' ' {
		return "", false
	}
	var fields []string
	for _, f := range strings.Fields(line[2:]) {
		if !strings.ContainsAny(f, "\x00\r") {
			fields = append(fields, f)
		}
	}
	switch line[0] {
	case '1', '2':
		if len(fields) == 0 {
			return "", false
		}
		v, ok := parseUID(fields[0])
		if !ok {
			return "", false
		}
		n := uint32(1)
		if len(fields) > 1 {
			if x, ok := parseUID(fields[1]); ok {
				n = x
			}
		}
		return fmt.Sprintf("%c %d %d", line[0], v, n), true
	case '3':
		var v uint32
		n := uint32(1)
		var others []string
		for _, f := range fields {
			switch f[0] {
			case 'V':
				if x, ok := parseUID(f[1:]); ok {
					v = x
				}
			case 'N':
				if x, ok := parseUID(f[1:]); ok {
					n = x
				}
			default:
				others = append(others, f)
			}
		}
		if v == 0 {
			return "", false
		}
		return strings.Join(append([]string{fmt.Sprintf("3 V%d N%d", v, n)}, others...), " "), true
	}
	return "", false
}

// parseUID reads a non-zero decimal uint32.
func parseUID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || s[0] == '+' {
		return 0, false
	}
	return uint32(n), true
}

// leadingUID reads the decimal number a line starts with, followed by a
// space, when it can be a UID.
func leadingUID(line string) (uint32, bool) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		return 0, false
	}
	n, ok := parseUID(line[:i])
	if !ok || n == math.MaxUint32 {
		return 0, false
	}
	return n, true
}

// headerNext reads the next UID of a version 1 or 2 header.
func headerNext(hdr string) (uint32, bool) {
	fields := strings.Fields(hdr)
	if len(fields) < 3 {
		return 0, false
	}
	return parseUID(fields[2])
}
