// Package mailboxname owns the names of mailboxes: an IMAP mailbox name
// (UTF-8, '.' between levels, "INBOX" in any case for the inbox) and the
// Maildir++ folder it lives in, whose levels are in modified UTF-7 on
// disk (RFC 3501 §5.1.3), as Dovecot names them, so that both servers
// see the same folders. The IMAP engine, the backend, delivery (address
// details, the LDA's -m), the fsck and migrate all map names here, and
// none of them needs a protocol package for it.
package mailboxname

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/cistern-mail/cistern/maildir"
)

// ErrControl: the name holds a control character, which no mailbox name
// may (RFC 9051 §5.1): no such folder is ever made, listed or opened.
var ErrControl = errors.New("mailboxname: the name holds a control character")

// IsControl reports whether r is a character no mailbox name may hold
// (RFC 9051 §5.1): C0, DEL or C1.
func IsControl(r rune) bool {
	return r <= 0x1f || (r >= 0x7f && r <= 0x9f)
}

// FirstControl returns the first character of name that IsControl
// refuses.
func FirstControl(name string) (rune, bool) {
	for _, r := range name {
		if IsControl(r) {
			return r, true
		}
	}
	return 0, false
}

// HasControl reports whether name holds a character IsControl refuses.
func HasControl(name string) bool {
	_, bad := FirstControl(name)
	return bad
}

// Folder returns the folder elements of an IMAP mailbox name as they are
// named on disk, nil for the inbox. A name holding a control character
// gives ErrControl; a name no Maildir++ folder can have (an empty level,
// "..", a '/') an error wrapping maildir.ErrBadFolderName. Neither ever
// reaches the file system.
func Folder(name string) ([]string, error) {
	if strings.EqualFold(name, "INBOX") {
		return nil, nil
	}
	if HasControl(name) {
		return nil, ErrControl
	}
	elems := strings.Split(name, string(maildir.FolderSep))
	for i, e := range elems {
		elems[i] = EncodeMUTF7(e)
	}
	p, err := maildir.ParseFolderName(string(maildir.FolderSep) + strings.Join(elems, string(maildir.FolderSep)))
	if err != nil {
		return nil, err
	}
	if len(p) == 1 && strings.EqualFold(p[0], "INBOX") {
		return nil, nil
	}
	return p, nil
}

// Name is the IMAP mailbox name (UTF-8) of folder elements as named on
// disk, "INBOX" for none. An element that is not valid modified UTF-7
// (another program made it) is shown as it is.
func Name(p []string) string {
	if len(p) == 0 {
		return "INBOX"
	}
	elems := make([]string, len(p))
	for i, e := range p {
		if d, err := DecodeMUTF7(e); err == nil {
			elems[i] = d
		} else {
			elems[i] = e
		}
	}
	return strings.Join(elems, string(maildir.FolderSep))
}

// Mailbox is one mailbox of an account's Maildir++ tree.
type Mailbox struct {
	Name   string   // the IMAP name (Name of Folder)
	Folder []string // the folder elements as named on disk; nil: the inbox
	Dir    string   // its directory
}

// List returns the mailboxes of the account whose Maildir is root: the
// inbox first, then every folder maildir.ListFoldersSkipping finds, in
// its order. skipped (when not nil) hears of each entry named like a
// folder that is left out, and why.
func List(root string, skipped func(name string, why error)) ([]Mailbox, error) {
	folders, err := maildir.ListFoldersSkipping(root, skipped)
	if err != nil {
		return nil, err
	}
	out := make([]Mailbox, 0, 1+len(folders))
	out = append(out, Mailbox{Name: "INBOX", Dir: root})
	for _, p := range folders {
		dir, err := maildir.FolderDir(root, p)
		if err != nil {
			return nil, err
		}
		out = append(out, Mailbox{Name: Name(p), Folder: p, Dir: dir})
	}
	return out, nil
}

// OfDir is the IMAP name of the mailbox directory dir of the account
// whose Maildir is root: "INBOX" for root, else the name of the folder
// its base name is (".Sent" is "Sent"), whether or not it exists. ok is
// false when dir is neither root nor a folder directory directly under
// it.
func OfDir(root, dir string) (name string, ok bool) {
	if filepath.Clean(dir) == filepath.Clean(root) {
		return "INBOX", true
	}
	if filepath.Dir(filepath.Clean(dir)) != filepath.Clean(root) {
		return "", false
	}
	p, err := maildir.ParseFolderName(filepath.Base(dir))
	if err != nil {
		return "", false
	}
	return Name(p), true
}
