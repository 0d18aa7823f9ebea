package uidlist

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxKeywords is how many keywords a Maildir file name can carry: the
// letters 'a'..'z' (Dovecot's MAILDIR_MAX_KEYWORDS).
const MaxKeywords = 26

// keywordsTempName is where WriteKeywords builds the new file: Dovecot uses
// its dotlock path as the temporary file (maildir_keywords_commit) and, as
// we do, relies on the uidlist lock to keep writers apart.
const keywordsTempName = KeywordsFileName + ".lock"

// Keywords is the content of dovecot-keywords. The zero value is an empty
// table.
type Keywords struct {
	Names [MaxKeywords]string // Names[i] is letter 'a'+i; "" = unused slot
}

// ParseKeywords reads the content of a dovecot-keywords file. Bad lines are
// skipped and reported; a later line for the same index wins, as in
// Dovecot.
func ParseKeywords(path string, data []byte) (*Keywords, []Problem) {
	k := &Keywords{}
	var problems []Problem
	s := string(data)
	for line := 1; s != ""; line++ {
		var l string
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			problems = append(problems, Problem{path, line, problemText(s), "last line not terminated by newline (truncated?), skipped"})
			break
		}
		l, s = strings.TrimSuffix(s[:nl], "\r"), s[nl+1:]
		bad := func(reason string) {
			problems = append(problems, Problem{path, line, problemText(l), reason})
		}
		sp := strings.IndexByte(l, ' ')
		if sp < 0 {
			bad("no space (want \"<index> <name>\"), skipped")
			continue
		}
		idx, err := strconv.Atoi(l[:sp])
		name := l[sp+1:]
		switch {
		case err != nil || l[0] == '+' || l[0] == '-':
			bad("bad index, skipped")
			continue
		case idx >= MaxKeywords:
			bad("index out of range 0.." + strconv.Itoa(MaxKeywords-1) + ", skipped")
			continue
		case name == "":
			bad("empty name, skipped")
			continue
		case strings.IndexByte(name, 0) >= 0:
			bad("NUL in name, skipped")
			continue
		case strings.IndexByte(name, '\r') >= 0:
			// Only the line's CRLF is dropped: a CR left in the name
			// could not be written back, nor sent in a FLAGS list.
			bad("CR in name, skipped")
			continue
		}
		if old := k.Names[idx]; old != "" {
			bad("index " + strconv.Itoa(idx) + " repeated, replaces " + strconv.Quote(old))
		} else if c, dup := k.Letter(name); dup {
			bad("name also at letter " + string(rune(c)) + ", kept both")
		}
		k.Names[idx] = name
	}
	return k, problems
}

// ReadKeywords reads dir/dovecot-keywords. A missing file is an empty table
// and no error.
func ReadKeywords(dir string) (*Keywords, []Problem, error) {
	path := filepath.Join(dir, KeywordsFileName)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &Keywords{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	k, problems := ParseKeywords(path, data)
	return k, problems, nil
}

// Marshal returns k in the file format: "<index> <name>\n" for each used
// slot, in index order.
func (k *Keywords) Marshal() []byte {
	var b []byte
	for i, n := range k.Names {
		if n != "" {
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, ' ')
			b = append(b, n...)
			b = append(b, '\n')
		}
	}
	return b
}

// checkKeyword returns why name cannot be stored, or "".
func checkKeyword(name string) string {
	if name == "" {
		return "empty keyword"
	}
	if strings.ContainsAny(name, "\r\n\x00") {
		return "CR, LF or NUL in keyword " + strconv.Quote(name)
	}
	return ""
}

// Letter returns the file name letter of keyword name, compared
// case-insensitively (Dovecot's keyword table uses strcasecmp).
func (k *Keywords) Letter(name string) (byte, bool) {
	for i, n := range k.Names {
		if n != "" && strings.EqualFold(n, name) {
			return byte('a' + i), true
		}
	}
	return 0, false
}

// Name returns the keyword of file name letter 'a'..'z'.
func (k *Keywords) Name(letter byte) (string, bool) {
	if letter < 'a' || letter > 'z' {
		return "", false
	}
	n := k.Names[letter-'a']
	return n, n != ""
}

// Add returns the letter of name, giving it the first free letter when it
// has none. It fails with ErrKeywordsFull when all letters are used, and
// with ErrBadRecord for a name the file cannot hold. Persist the change
// with WriteKeywords.
func (k *Keywords) Add(name string) (byte, error) {
	if reason := checkKeyword(name); reason != "" {
		return 0, badRecord(reason)
	}
	if c, ok := k.Letter(name); ok {
		return c, nil
	}
	for i, n := range k.Names {
		if n == "" {
			k.Names[i] = name
			return byte('a' + i), nil
		}
	}
	return 0, fmt.Errorf("%w: cannot add %q", ErrKeywordsFull, name)
}

// WriteKeywords replaces dir/dovecot-keywords with k. Like Dovecot
// (maildir-keywords.c), it needs the uidlist lock and takes no lock of its
// own: dovecot-keywords.lock serves only as the temporary file, created with
// O_EXCL (a leftover of a crashed writer removed first), written, fsynced,
// renamed over dovecot-keywords, then the directory is fsynced; crash
// outcomes are those of Rewrite. The new file's mtime is made greater, in
// whole seconds, than the old one's: Dovecot rereads the file only when its
// mtime (in seconds) changed.
func WriteKeywords(l *Lock, dir string, k *Keywords) error {
	if l == nil {
		return fmt.Errorf("%w: nil lock", ErrWrongLock)
	}
	for _, n := range k.Names {
		if n != "" {
			if reason := checkKeyword(n); reason != "" {
				return badRecord(reason)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.checkLocked(dir); err != nil {
		return err
	}
	var oldMtime int64 = -1
	if fi, err := os.Stat(filepath.Join(dir, KeywordsFileName)); err == nil {
		oldMtime = fi.ModTime().Unix()
	}
	return writeDurable(l.dir, keywordsTempName, KeywordsFileName, k.Marshal(), func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.ModTime().Unix() > oldMtime {
			return nil
		}
		return touchFile(f, time.Unix(oldMtime+1, 0))
	})
}
