package migrate

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Courier's file names in a mailbox directory.
const (
	CourierKeywordsDir  = "courierimapkeywords"
	CourierKeywordsList = ":list"
	CourierSubscribed   = "courierimapsubscribed"
)

// maxCourierFile bounds the read of one of Courier's keyword files: the
// keywords of one message, or :list of a mailbox (about 60 bytes a
// message with keywords).
const maxCourierFile = 64 << 20

// CourierKeywords is the keyword state of one Courier mailbox.
type CourierKeywords struct {
	// Names lists every keyword name once (compared case-insensitively,
	// as IMAP does): the order of :list, then the names only update files
	// use, sorted.
	Names []string
	// Messages maps a base name to its message's keyword names, each
	// once, in the order given; messages without keywords are absent.
	Messages map[string][]string
}

// ParseCourierKeywordList reads the content of courierimapkeywords/:list.
// Lines that are not "<base name>:<index> ..." and indexes that name no
// keyword are skipped and reported; a later line for the same base name
// replaces an earlier one, as in Courier. path is used only in Problems.
func ParseCourierKeywordList(path string, data []byte) (*CourierKeywords, []uidlist.Problem) {
	k := &CourierKeywords{Messages: map[string][]string{}}
	var problems []uidlist.Problem
	bad := func(line int, text, reason string) {
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		problems = append(problems, uidlist.Problem{Path: path, Line: line, Text: text, Reason: reason})
	}
	lines := strings.Split(string(data), "\n")
	if n := len(lines); lines[n-1] == "" {
		lines = lines[:n-1] // the end of the last line, not a line
	}
	var index []string // the names by their number in :list
	i := 0
	for ; i < len(lines); i++ {
		name := strings.TrimSuffix(lines[i], "\r")
		if name == "" {
			i++
			break
		}
		if strings.IndexByte(name, 0) >= 0 {
			bad(i+1, name, "NUL in keyword name, skipped")
			name = ""
		}
		if name != "" {
			name = k.addName(name)
		}
		index = append(index, name)
	}
	for ; i < len(lines); i++ {
		line := strings.TrimSuffix(lines[i], "\r")
		base, nums, ok := strings.Cut(line, ":")
		if !ok || base == "" || strings.ContainsAny(base, "/\x00") {
			bad(i+1, line, "not \"<base name>:<index> ...\", skipped")
			continue
		}
		var names []string
		for _, f := range strings.Fields(nums) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n >= len(index) || index[n] == "" {
				bad(i+1, line, "index "+strconv.Quote(f)+" names no keyword, skipped")
				continue
			}
			names = appendName(names, index[n])
		}
		if len(names) == 0 {
			delete(k.Messages, base)
			continue
		}
		k.Messages[base] = names
	}
	return k, problems
}

// addName adds name to Names unless it is there, and returns the name as
// Names holds it: the first spelling of names equal but for case (and,
// as strings.EqualFold has it, for bytes that are not UTF-8).
func (k *CourierKeywords) addName(name string) string {
	if i := slices.IndexFunc(k.Names, func(n string) bool { return strings.EqualFold(n, name) }); i >= 0 {
		return k.Names[i]
	}
	k.Names = append(k.Names, name)
	return name
}

// appendName appends name to names unless it is there.
func appendName(names []string, name string) []string {
	if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
		return names
	}
	return append(names, name)
}

// update is the update file that holds a message's keywords.
type update struct {
	file   string
	n      uint64
	newest bool // "<base name>": beats every ".<n>.<base name>"
}

// ReadCourierKeywords reads the keywords of the Courier mailbox dir:
// :list, then the update files, which replace what :list says of their
// message. It returns nil and no error when dir has no
// courierimapkeywords/.
func ReadCourierKeywords(dir string) (*CourierKeywords, []uidlist.Problem, error) {
	kwdir := filepath.Join(dir, CourierKeywordsDir)
	entries, err := os.ReadDir(kwdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	listPath := filepath.Join(kwdir, CourierKeywordsList)
	data, err := readBounded(listPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	k, problems := ParseCourierKeywordList(listPath, data)

	updates := map[string]update{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || name[0] == ':' || strings.HasPrefix(name, ".tmp.") {
			continue
		}
		u := update{file: name, newest: true}
		base := name
		if name[0] == '.' {
			num, b, ok := strings.Cut(name[1:], ".")
			n, err := strconv.ParseUint(num, 10, 64)
			if !ok || err != nil || b == "" {
				continue
			}
			u, base = update{file: name, n: n}, b
		}
		old, seen := updates[base]
		if !seen || (!old.newest && (u.newest || u.n > old.n)) {
			updates[base] = u
		}
	}
	bases := make([]string, 0, len(updates))
	for base := range updates {
		bases = append(bases, base)
	}
	slices.Sort(bases)
	var extra []string
	for _, base := range bases {
		path := filepath.Join(kwdir, updates[base].file)
		data, err := readBounded(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // folded into :list by Courier meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if line == "" {
				break
			}
			if strings.IndexByte(line, 0) >= 0 {
				problems = append(problems, uidlist.Problem{Path: path, Text: line, Reason: "NUL in keyword name, skipped"})
				continue
			}
			names = appendName(names, line)
		}
		if len(names) == 0 {
			delete(k.Messages, base)
			continue
		}
		k.Messages[base] = names
		for _, n := range names {
			if !slices.ContainsFunc(k.Names, func(x string) bool { return strings.EqualFold(x, n) }) {
				extra = appendName(extra, n)
			}
		}
	}
	slices.Sort(extra)
	for _, n := range extra {
		k.addName(n)
	}
	// Every message names its keywords as Names spells them.
	for _, names := range k.Messages {
		for i, n := range names {
			names[i] = k.addName(n)
		}
	}
	return k, problems, nil
}

// readBounded reads the file at path, at most maxCourierFile bytes.
// A symbolic link is not followed: it gives an error wrapping
// maildir.ErrNotRegular.
func readBounded(path string) ([]byte, error) {
	f, err := maildir.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxCourierFile))
}

// readFile reads the whole file at path, following no symbolic link
// (maildir.OpenRegular): a control file that links elsewhere, to another
// user's uidlist say, is never read.
func readFile(path string) ([]byte, error) {
	f, err := maildir.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ConvertSubscriptions turns the lines of courierimapsubscribed into the
// names of a Maildir++ subscriptions file: "INBOX" stays, "INBOX.<name>"
// becomes "<name>" (Courier's folders live in its INBOX. namespace).
// Names outside that namespace (shared folders) have no Maildir++ folder
// here and are returned in skipped. Each name appears once.
func ConvertSubscriptions(data []byte) (names, skipped []string) {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		var name string
		switch {
		case line == "":
			continue
		case strings.EqualFold(line, "INBOX"):
			name = "INBOX"
		case len(line) > len("INBOX.") && strings.EqualFold(line[:len("INBOX.")], "INBOX."):
			name = line[len("INBOX."):]
		default:
			if !slices.Contains(skipped, line) {
				skipped = append(skipped, line)
			}
			continue
		}
		if strings.IndexByte(name, 0) >= 0 {
			skipped = append(skipped, line)
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, skipped
}
