package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// Maildir++ quota (Courier's README.maildirquota, which Dovecot, maildrop,
// deliverquota and Exim implement too). An account's usage is recorded in
// the file maildirsize at the root of its Maildir:
//
//	line        format              meaning
//	first       <n>S,<n>C           the limit: bytes (S) and messages (C); either may be absent
//	every other <bytes> <messages>  a change of usage, either number may be negative
//
// Usage is the sum of every line after the first. A change is one
// "<bytes> <messages>\n" appended with a single write(2) on an O_APPEND
// descriptor, so concurrent writers (our sessions, LMTP deliveries,
// `cistern deliver`, maildrop, Courier, Dovecot) never interleave inside a
// line; a last line without its '\n' (a write under way) is not read.
// Nobody locks the file: the spec trades exactness for speed, and lets
// usage drift a little (a race between a check and the write that follows
// it, or a program that removes mail without recording it). Recalculation
// repairs the drift. It happens when:
//
//   - maildirsize is missing;
//   - it is at least QuotaFileMax (5120) bytes long;
//   - its first line gives another limit than ours (compared as numbers);
//   - it has no line of usage, a line is not two integers, or the totals
//     are negative (a foreign program subtracted for mail it never
//     recorded);
//   - the change asked for would pass the limit, unless the file is a
//     fresh recalculation: exactly one line of usage and younger than
//     QuotaStale (15 minutes). An over-quota account is therefore counted
//     again at most every 15 minutes, which is how mail removed by
//     programs that ignore maildirsize is eventually noticed.
//
// Recalculation adds up the messages (files not starting with '.') in new/
// and cur/ of the root and of every folder directory (.Name) except
// .Trash, as the spec says: Trash is not counted, moving a message into
// it frees quota and moving one out of it needs room (Dovecot counts
// Trash; on a Maildir that both serve, each recalculation follows its own
// rule). Messages flagged T (\Deleted) are counted: they occupy the disk
// until expunged. A message's size is its S= field when the name has one,
// else its file size; a file that vanished meanwhile is skipped. Every
// directory is stat'ed before it is read and again after the new file is
// in place; when one changed meanwhile (or its listing could not be proven
// complete, DESIGN.md §3) the count is repeated, up to quotaRecalcTries
// times, after which the last count stands until the next recalculation.
// The new file is written durably: a temporary file in tmp/, fsynced,
// renamed over maildirsize, the directory fsynced (maildir.WriteFile); a
// crash leaves the old file or the new one.
//
// Changes of usage are not fsynced: losing one to a crash costs
// accuracy, which the next recalculation restores, never mail.

// QuotaFile is the Maildir++ quota file at the root of a Maildir.
const QuotaFile = "maildirsize"

// QuotaFileMax is the size from which maildirsize is recalculated rather
// than read: the spec's 5120 bytes, which bounds the cost of reading it
// and makes drift short-lived (about 300 deliveries and removals).
const QuotaFileMax = 5120

// QuotaStale is the age after which an over-quota total is distrusted and
// recalculated (the spec's 15 minutes).
const QuotaStale = 15 * time.Minute

// QuotaTrash is the folder whose messages the quota does not count.
const QuotaTrash = "Trash"

// quotaRecalcTries bounds the counts of one recalculation when the
// mailbox keeps changing under it: the result of the last one is used.
const quotaRecalcTries = 3

// QuotaLimit is a user's quota: 0 means no limit on that resource.
type QuotaLimit struct {
	Bytes    int64
	Messages int64
}

// Unlimited reports whether neither resource is limited.
func (q QuotaLimit) Unlimited() bool { return q.Bytes == 0 && q.Messages == 0 }

// String is the limit as maildirsize's first line writes it: "1000S",
// "10C", "1000S,10C"; "" when unlimited.
func (q QuotaLimit) String() string {
	var parts []string
	if q.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(q.Bytes, 10)+"S")
	}
	if q.Messages > 0 {
		parts = append(parts, strconv.FormatInt(q.Messages, 10)+"C")
	}
	return strings.Join(parts, ",")
}

// ErrOverQuota is wrapped by quota refusals.
var ErrOverQuota = errors.New("store: over quota")

// QuotaError is a refusal: the change would take one resource past its
// limit. It wraps ErrOverQuota.
type QuotaError struct {
	Resource string // "storage" (bytes) or "messages"
	Limit    int64
	Used     int64 // usage before the change
	Add      int64 // the change asked for
}

func (e *QuotaError) Error() string {
	unit := " bytes"
	if e.Resource == "messages" {
		unit = " messages"
	}
	return fmt.Sprintf("store: over quota: %s: %d%s used + %d would exceed the limit of %d by %d%s",
		e.Resource, e.Used, unit, e.Add, e.Limit, e.Used+e.Add-e.Limit, unit)
}

func (e *QuotaError) Unwrap() error { return ErrOverQuota }

// QuotaUsage is an account's usage as maildirsize records it.
type QuotaUsage struct {
	Bytes    int64
	Messages int64
}

// quotaFile is a parsed maildirsize.
type quotaFile struct {
	limit QuotaLimit
	usage QuotaUsage
	lines int // lines of usage (after the first)
}

// errQuotaSyntax: a line of maildirsize is not what the spec says.
var errQuotaSyntax = errors.New("store: maildirsize: bad syntax")

// parseQuotaLimit reads a quota definition: comma-separated members, each
// an integer followed by S (bytes) or C (messages). A zero member means
// no limit, as in Dovecot.
func parseQuotaLimit(s string) (QuotaLimit, error) {
	var q QuotaLimit
	s = strings.TrimSpace(s)
	if s == "" {
		return q, nil
	}
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if len(m) < 2 {
			return QuotaLimit{}, fmt.Errorf("%w: quota member %q", errQuotaSyntax, m)
		}
		n, err := strconv.ParseInt(m[:len(m)-1], 10, 64)
		if err != nil || n < 0 || m[0] == '+' {
			return QuotaLimit{}, fmt.Errorf("%w: quota member %q", errQuotaSyntax, m)
		}
		switch m[len(m)-1] {
		case 'S':
			q.Bytes = n
		case 'C':
			q.Messages = n
		default:
			return QuotaLimit{}, fmt.Errorf("%w: quota member %q", errQuotaSyntax, m)
		}
	}
	return q, nil
}

// parseQuotaFile parses the content of maildirsize. A last line without
// its '\n' is a write under way and is ignored.
func parseQuotaFile(data []byte) (quotaFile, error) {
	var f quotaFile
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	if len(data) == 0 {
		return f, fmt.Errorf("%w: no definition line", errQuotaSyntax)
	}
	first, rest, _ := bytes.Cut(data, []byte{'\n'})
	var err error
	if f.limit, err = parseQuotaLimit(string(first)); err != nil {
		return quotaFile{}, err
	}
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		fields := strings.Fields(string(line))
		if len(fields) != 2 {
			return quotaFile{}, fmt.Errorf("%w: line %q", errQuotaSyntax, line)
		}
		b, err1 := strconv.ParseInt(fields[0], 10, 64)
		c, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			return quotaFile{}, fmt.Errorf("%w: line %q", errQuotaSyntax, line)
		}
		var ok1, ok2 bool
		f.usage.Bytes, ok1 = addInt64(f.usage.Bytes, b)
		f.usage.Messages, ok2 = addInt64(f.usage.Messages, c)
		if !ok1 || !ok2 {
			return quotaFile{}, fmt.Errorf("%w: the sum overflows at line %q", errQuotaSyntax, line)
		}
		f.lines++
	}
	return f, nil
}

// addInt64 returns a+b and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	c := a + b
	return c, (c > a) == (b > 0)
}

// formatQuotaFile is a freshly calculated maildirsize.
func formatQuotaFile(q QuotaLimit, u QuotaUsage) []byte {
	return fmt.Appendf(nil, "%s\n%d %d\n", q, u.Bytes, u.Messages)
}

// check returns a *QuotaError when u plus the change passes q. u is not
// negative (readQuota recounts a negative total), so the subtractions
// cannot overflow where an addition could.
func (u QuotaUsage) check(q QuotaLimit, addBytes, addMessages int64) error {
	if q.Bytes > 0 && addBytes > q.Bytes-u.Bytes {
		return &QuotaError{Resource: "storage", Limit: q.Bytes, Used: u.Bytes, Add: addBytes}
	}
	if q.Messages > 0 && addMessages > q.Messages-u.Messages {
		return &QuotaError{Resource: "messages", Limit: q.Messages, Used: u.Messages, Add: addMessages}
	}
	return nil
}

// CheckQuota returns nil when adding addBytes and addMessages to the Maildir
// whose root is root keeps it within q, else an error wrapping ErrOverQuota
// (saying which resource and by how much). It reads maildirsize and
// recalculates it when missing, stale or of another limit.
func CheckQuota(root string, q QuotaLimit, addBytes, addMessages int64) error {
	if q.Unlimited() {
		return nil
	}
	u, err := readQuota(root, q, addBytes, addMessages)
	if err != nil {
		return err
	}
	return u.check(q, addBytes, addMessages)
}

// ReadQuota returns the usage of the Maildir whose root is root under
// limit q, from maildirsize, recalculating it when the rules above say
// so. With no limit there is no file to read, and the usage is counted.
func ReadQuota(root string, q QuotaLimit) (QuotaUsage, error) {
	if q.Unlimited() {
		return RecalculateQuota(root, q)
	}
	return readQuota(root, q, 0, 0)
}

// readQuota returns the usage under limit q (not unlimited), trusting
// maildirsize when the rules allow it for a change of addBytes and
// addMessages, else recalculating.
func readQuota(root string, q QuotaLimit, addBytes, addMessages int64) (QuotaUsage, error) {
	f, fi, err := readQuotaFile(root)
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, errQuotaSyntax), errors.Is(err, errQuotaFileFull):
		return RecalculateQuota(root, q)
	case err != nil:
		return QuotaUsage{}, err
	case f.limit != q, f.lines == 0, f.usage.Bytes < 0, f.usage.Messages < 0:
		return RecalculateQuota(root, q)
	}
	if f.usage.check(q, addBytes, addMessages) == nil {
		return f.usage, nil
	}
	if f.lines == 1 && time.Since(fi.ModTime()) < QuotaStale {
		return f.usage, nil // a fresh count: trust the refusal
	}
	return RecalculateQuota(root, q)
}

// errQuotaFileFull: maildirsize reached QuotaFileMax.
var errQuotaFileFull = errors.New("store: maildirsize is due for recalculation")

// readQuotaFile reads and parses root's maildirsize, at most QuotaFileMax
// bytes of it.
func readQuotaFile(root string) (quotaFile, os.FileInfo, error) {
	fd, err := os.Open(filepath.Join(root, QuotaFile))
	if err != nil {
		return quotaFile{}, nil, err
	}
	defer fd.Close()
	buf := make([]byte, QuotaFileMax)
	n, err := io.ReadFull(fd, buf)
	switch {
	case err == nil:
		return quotaFile{}, nil, errQuotaFileFull
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		return quotaFile{}, nil, err
	}
	fi, err := fd.Stat()
	if err != nil {
		return quotaFile{}, nil, err
	}
	f, err := parseQuotaFile(buf[:n])
	return f, fi, err
}

// AddQuota records a change of usage (negative for removals) in maildirsize.
func AddQuota(root string, q QuotaLimit, bytes, messages int64) error {
	if q.Unlimited() || (bytes == 0 && messages == 0) {
		return nil
	}
	// No O_CREAT: without the file there is no usage to change, and the
	// next check counts the Maildir as it is, this change included.
	fd, err := os.OpenFile(filepath.Join(root, QuotaFile), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = fd.Write(fmt.Appendf(nil, "%d %d\n", bytes, messages))
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}

// RecalculateQuota counts the usage of the Maildir whose root is root and
// writes it into a new maildirsize with limit q, as described above. With
// no limit it only counts: an account without quota has no maildirsize.
func RecalculateQuota(root string, q QuotaLimit) (QuotaUsage, error) {
	if q.Unlimited() {
		u, _, err := countQuota(root)
		return u, err
	}
	var u QuotaUsage
	for try := 1; ; try++ {
		var stamps map[string]maildir.DirStamp
		var err error
		u, stamps, err = countQuota(root)
		if err != nil {
			return QuotaUsage{}, err
		}
		if err := maildir.WriteFile(root, QuotaFile, formatQuotaFile(q, u)); err != nil {
			return QuotaUsage{}, err
		}
		if (stamps != nil && unchanged(stamps)) || try == quotaRecalcTries {
			return u, nil
		}
	}
}

// unchanged reports whether every directory still has its stamp.
func unchanged(stamps map[string]maildir.DirStamp) bool {
	for dir, s := range stamps {
		now, err := maildir.StatDir(dir)
		if err != nil || now != s {
			return false
		}
	}
	return true
}

// countQuota adds up the messages that the quota counts in the Maildir
// whose root is root, and returns the stamp of every directory it read as
// it was before the read; nil stamps mean some listing was not proven
// complete.
func countQuota(root string) (QuotaUsage, map[string]maildir.DirStamp, error) {
	var u QuotaUsage
	stamps := map[string]maildir.DirStamp{}
	dirs := []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		return QuotaUsage{}, nil, err
	}
	for _, e := range entries {
		n := e.Name()
		// Symbolic links are skipped, as Courier does: a linked folder
		// is someone else's (shared folders).
		if len(n) < 2 || n[0] != maildir.FolderSep || n == ".." || !e.IsDir() || n == "."+QuotaTrash {
			continue
		}
		dirs = append(dirs, filepath.Join(root, n))
	}
	proven := true
	for _, d := range dirs {
		p, err := countMaildir(d, &u, stamps)
		if err != nil {
			return QuotaUsage{}, nil, err
		}
		proven = proven && p
	}
	if !proven {
		stamps = nil
	}
	return u, stamps, nil
}

// countMaildir adds the messages in new/ and cur/ of the Maildir dir to u
// and the stamps of those directories to stamps (when not nil). It
// reports whether both listings were proven complete. A missing
// directory counts nothing.
func countMaildir(dir string, u *QuotaUsage, stamps map[string]maildir.DirStamp) (proven bool, err error) {
	proven = true
	for _, sub := range []string{maildir.New, maildir.Cur} {
		path := filepath.Join(dir, sub)
		l, err := maildir.List(path, maildir.ListOptions{})
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
			continue // a folder removed meanwhile, or not a Maildir (new/ or cur/ a link)
		}
		if err != nil {
			return false, err
		}
		if !l.Proof.Proven() || !l.StampValid {
			proven = false
		}
		if stamps != nil {
			stamps[path] = l.Stamp
		}
		for i, name := range l.Names {
			if name[0] == '.' || l.Types[i] == syscall.DT_DIR || l.Types[i] == syscall.DT_LNK {
				continue // a link is no message (maildir/nofollow.go)
			}
			size, err := messageSize(path, name)
			if err != nil {
				continue // removed meanwhile
			}
			u.Bytes += size
			u.Messages++
		}
	}
	return proven, nil
}

// messageSize is the size the quota counts for the file name in dir: its
// S= field, else its size on disk.
func messageSize(dir, name string) (int64, error) {
	if size, _ := maildir.SizeFields(maildir.BaseName(name)); size >= 0 {
		return size, nil
	}
	fi, err := os.Lstat(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
