package uidlist

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Reader is a lockless, incremental reader of one dovecot-uidlist, safe for
// many processes at once (writers append whole lines or replace the file by
// rename) and for concurrent use by goroutines.
//
// Refresh costs one stat when the file is unchanged, a read and parse of the
// appended bytes when it grew, and a full read when the path names another
// inode (a rewrite), shrank, or changed in place.
//
// The Reader keeps the file it read open. That is what makes "same inode
// number" mean "same file": a rewrite frees the old inode when it renames
// the new file over it, and the filesystem may hand that number to the
// next rewrite's file, which an incremental read would then take for an
// append. An inode that is still open is never freed. Close releases it.
type Reader struct {
	path string
	lean bool // immutable: NewLeanReader (lean.go)

	mu sync.Mutex // guards everything below
	f  *os.File   // the inode in st, held open; nil before the first read
	p  *parser    // parse state of the inode in st; nil before the first read
	st fileState  // the file as last read; st.size is how far we read
	// consumed is the offset of the first byte not parsed yet: a last line
	// without '\n' (an append in progress) stays unconsumed.
	consumed int64
	cur      *File // the snapshot returned last; shared, never modified
	// floorValidity and floorNext remember the highest next UID seen for a
	// UIDVALIDITY, across rewrites, to catch a next UID that went down.
	floorValidity, floorNext uint32
	floorReported            bool // the lowered next UID of this inode was reported
}

// NewReader returns a Reader of dir/dovecot-uidlist. It reads nothing yet.
func NewReader(dir string) *Reader {
	return &Reader{path: filepath.Join(dir, FileName)}
}

// Path returns the path of the file read.
func (r *Reader) Path() string { return r.path }

// Refresh brings the in-memory copy up to date and returns it.
//
// The *File is shared by every caller of this Reader until the file changes
// and must not be modified (copy Records before changing them; appending
// to Records copies because its capacity is capped). Problems are those
// found in the bytes read by this call only: an unchanged file reports none
// again.
//
// A missing file returns (nil, nil, err) with errors.Is(err, ErrNotExist).
// An unusable header returns a *ParseError; the next Refresh reads the whole
// file again.
func (r *Reader) Refresh() (*File, []Problem, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked()
}

// Close releases the file held open. The Reader can be used again: the
// next Refresh reads the whole file.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reset()
	return nil
}

func (r *Reader) reset() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.p = nil
	r.st = fileState{}
	r.consumed = 0
	r.cur = nil
}

func (r *Reader) refreshLocked() (*File, []Problem, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		r.reset()
		return nil, nil, err
	}
	if r.cur != nil && stateOf(fi).equal(r.st) {
		return r.cur, nil, nil
	}
	f, err := os.Open(r.path)
	if err != nil {
		r.reset()
		return nil, nil, err
	}
	// The open file, not the earlier stat, is the truth: the path may have
	// been renamed over in between.
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		r.reset()
		return nil, nil, err
	}
	st := stateOf(fi)
	if r.cur != nil && st.sameFile(r.st) && st.size > r.st.size {
		f.Close()
		return r.readAppended(r.f, st)
	}
	file, problems, err := r.readWhole(f, st)
	if err != nil {
		f.Close()
		return nil, problems, err
	}
	r.f = f
	return file, problems, nil
}

// readWhole parses the whole file f, whose state is st.
func (r *Reader) readWhole(f *os.File, st fileState) (*File, []Problem, error) {
	r.reset()
	data := make([]byte, 0, st.size+512)
	data, err := readAllInto(f, data)
	if err != nil {
		return nil, nil, err
	}
	p := newParser(r.path)
	p.lean = r.lean
	n := p.feed(string(data), false)
	problems := p.problems
	p.problems = nil
	if p.err != nil {
		return nil, problems, p.err
	}
	if !p.haveHdr {
		reason := "header line not terminated by newline (being written?)"
		if len(data) == 0 {
			reason = "empty file"
		}
		return nil, problems, &ParseError{Path: r.path, Line: 1, Reason: reason, Err: ErrBadHeader}
	}
	st.size = int64(len(data))
	r.p, r.st, r.consumed = p, st, int64(n)
	r.floorReported = false
	r.cur = p.file()
	problems = r.checkFloor(problems)
	return r.cur, problems, nil
}

// readAppended parses the bytes added to f since the last read.
func (r *Reader) readAppended(f *os.File, st fileState) (*File, []Problem, error) {
	data := make([]byte, 0, st.size-r.consumed+512)
	data, err := readAllInto(io.NewSectionReader(f, r.consumed, 1<<62), data)
	if err != nil {
		r.reset()
		return nil, nil, err
	}
	n := r.p.feed(string(data), false)
	problems := r.p.problems
	r.p.problems = nil
	st.size = r.consumed + int64(len(data))
	r.st = st
	r.consumed += int64(n)
	if n > 0 {
		r.cur = r.p.file()
		problems = r.checkFloor(problems)
	}
	return r.cur, problems, nil
}

// checkFloor raises r.cur's next UID to the highest seen before for the
// same UIDVALIDITY (Dovecot: "next_uid was lowered"), so that no UID is
// handed out twice, and remembers the new floor.
func (r *Reader) checkFloor(problems []Problem) []Problem {
	h := r.cur.Header
	if h.UIDValidity == r.floorValidity && h.NextUID < r.floorNext {
		if !r.floorReported {
			r.floorReported = true
			problems = append(problems, Problem{Path: r.path, Line: 1,
				Text:   "N" + strconv.FormatUint(uint64(h.NextUID), 10),
				Reason: "next UID was lowered from " + strconv.FormatUint(uint64(r.floorNext), 10) + ", kept the higher value"})
		}
		c := *r.cur
		c.Header.NextUID = r.floorNext
		r.cur = &c
		return problems
	}
	r.floorValidity, r.floorNext = h.UIDValidity, h.NextUID
	return problems
}

// readAllInto reads rd to EOF, appending to buf.
func readAllInto(rd io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// maxHeaderLen bounds the header line ReadHeader reads.
const maxHeaderLen = 64 << 10

// ReadHeader reads only the header line of the uidlist open as f (from
// offset 0, whatever f's position): what a caller that has no use for
// the records needs, such as the mailbox GUID, without the cost of
// parsing the whole file. Its NextUID is the header's own (records may
// go beyond it). An unusable header, or none within maxHeaderLen bytes,
// is a *ParseError as for Parse.
func ReadHeader(f *os.File) (Header, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.ReadAt(buf[len(buf):cap(buf)], int64(len(buf)))
		buf = buf[:len(buf)+n]
		if i := bytes.IndexByte(buf, '\n'); i >= 0 || err != nil || len(buf) >= maxHeaderLen {
			if i < 0 {
				if err != nil && err != io.EOF {
					return Header{}, err
				}
				i = len(buf)
				if i > maxHeaderLen {
					i = maxHeaderLen
				}
			}
			p := newParser(f.Name())
			p.feed(string(buf[:min(i+1, len(buf))]), true)
			if p.err != nil {
				return Header{}, p.err
			}
			h := p.hdr
			h.NextUID = p.hdrNext
			return h, nil
		}
	}
}
