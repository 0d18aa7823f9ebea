package delivery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/mailboxname"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// DefaultDelimiter separates a user from a folder in an address when
// Deliverer.Delimiter is empty.
const DefaultDelimiter = "+"

// User is a user mail can be delivered to.
type User struct {
	Name  string           // as in the passwd-file
	Root  string           // the Maildir root (INBOX), absolute
	Quota store.QuotaLimit // the zero value: no limit
}

// Users finds users by name.
type Users interface {
	// LookupUser returns the user called name, matched exactly. A name
	// that is not a user gives an error wrapping ErrUnknownUser; any
	// other error (the passwd-file cannot be read) is temporary.
	LookupUser(name string) (User, error)
}

// Recipient is a resolved recipient of a message.
type Recipient struct {
	// Address is the address as given (RCPT TO, or the LDA's -u); it is
	// what Delivered-To says.
	Address string
	User    User
	// Detail is the part of the address after the delimiter, "" if none.
	Detail string
	// Folder is the folder asked for, as the elements of its Maildir++
	// directory name (FolderPath); nil for INBOX.
	Folder []string
	// CreateFolder makes Folder when it does not exist, instead of
	// delivering to INBOX.
	CreateFolder bool
}

// Resolve finds the user an address belongs to (see the package doc for
// the names tried) and the folder its detail names. An address that no
// user matches gives an error wrapping ErrUnknownUser, a malformed one
// ErrBadAddress; other errors are temporary. A rejection is logged and
// counted with id, the transaction's.
func (d *Deliverer) Resolve(id, addr string) (*Recipient, error) {
	return d.ResolveFor(Envelope{ID: id}, addr)
}

// ResolveFor is Resolve for the transaction env: a rejection is logged
// with its ID and Logger.
func (d *Deliverer) ResolveFor(env Envelope, addr string) (*Recipient, error) {
	start := time.Now()
	r, err := d.resolve(addr)
	if err != nil {
		d.record(env, addr, nil, "", 0, err, start)
	}
	return r, err
}

func (d *Deliverer) resolve(addr string) (*Recipient, error) {
	if addr == "" {
		return nil, fmt.Errorf("%w: empty recipient", ErrBadAddress)
	}
	if err := ValidAddress(addr); err != nil {
		return nil, err
	}
	for _, c := range d.candidates(addr) {
		u, err := d.Users.LookupUser(c.name)
		if errors.Is(err, ErrUnknownUser) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("delivery: looking up %q: %w", c.name, err)
		}
		r := &Recipient{Address: addr, User: u, Detail: c.detail}
		if c.detail != "" && d.SaveToDetailMailbox {
			if p, err := FolderPath(c.detail); err == nil {
				r.Folder = p
			} else {
				d.logger().Info("delivery: the address names no possible folder; delivering to INBOX", "rcpt", addr, "detail", c.detail, "err", err)
			}
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownUser, addr)
}

type candidate struct{ name, detail string }

// candidates lists the user names addr may mean, in the order they are
// tried, without repeats.
func (d *Deliverer) candidates(addr string) []candidate {
	local, domain, hasDomain := addr, "", false
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain, hasDomain = addr[:i], addr[i+1:], true
	}
	delim := d.Delimiter
	if delim == "" {
		delim = DefaultDelimiter
	}
	base, detail, hasDetail := local, "", false
	if i := strings.IndexAny(local, delim); i > 0 {
		base, detail, hasDetail = local[:i], local[i+1:], true
	}
	var out []candidate
	add := func(name, detail string) {
		for _, c := range out {
			if c.name == name {
				return
			}
		}
		if name != "" {
			out = append(out, candidate{name, detail})
		}
	}
	add(addr, "")
	if hasDetail && hasDomain {
		add(base+"@"+domain, detail)
	}
	if hasDomain {
		add(local, "")
	}
	if hasDetail {
		add(base, detail)
	}
	return out
}

// ProtectedUse reports whether a folder of special use (RFC 6154) use
// never receives mail by delivery, whatever the address's detail or the
// LDA's -m say: \Sent and \Drafts would hold a message the user seems
// to have written (a forged sent mail, a draft the user might send),
// \Trash one the user may never see (and that a cleanup removes).
// \Junk is not protected: a sender can only demote its own message
// there, and filters file spam there on purpose.
func ProtectedUse(use string) bool {
	switch strings.ToLower(use) {
	case `\sent`, `\drafts`, `\trash`:
		return true
	}
	return false
}

// FolderPath returns the Maildir++ folder of an IMAP mailbox name, as
// IMAP names it (mailboxname.Folder), "" being the inbox too. A name no
// folder can have gives an error wrapping maildir.ErrBadFolderName; such
// a name never reaches the file system. That includes a name holding a
// control character, which no IMAP client could ever see or open.
func FolderPath(name string) ([]string, error) {
	if name == "" {
		return nil, nil
	}
	p, err := mailboxname.Folder(name)
	if errors.Is(err, mailboxname.ErrControl) {
		return nil, fmt.Errorf("%w: %w", maildir.ErrBadFolderName, err)
	}
	return p, err
}

// folderName is a folder's name for logs: its directory name without
// the leading dot, "INBOX" for the inbox.
func folderName(path []string) string {
	if len(path) == 0 {
		return "INBOX"
	}
	return strings.Join(path, string(maildir.FolderSep))
}
