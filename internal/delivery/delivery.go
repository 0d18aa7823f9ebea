package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// Deliverer delivers messages. Users is required; the zero value of
// every other field works. Safe for concurrent use once set up.
type Deliverer struct {
	Users Users
	// Registry, when set, is the daemon's: a mailbox it has open is told
	// of each delivery (Mailbox.Kick) so that its IDLE sessions hear of
	// it without waiting for a change notice. nil for the LDA.
	Registry *store.Registry
	// Logger receives one line per recipient; nil: slog.Default().
	Logger *slog.Logger
	// MaxSize bounds the message as given, in bytes; 0: no bound.
	MaxSize int64
	// Delimiter holds the characters that separate a user from a folder
	// in an address; "": DefaultDelimiter.
	Delimiter string
	// SaveToDetailMailbox files a message for user+folder into folder
	// (Dovecot's lmtp_save_to_detail_mailbox); false (the default): into
	// INBOX, the detail only logged. Never into a folder ProtectedUse
	// names, either way.
	SaveToDetailMailbox bool
	// MaxFolders bounds the folders of a user for a folder made by
	// delivery (Recipient.CreateFolder): past it, the message goes to
	// INBOX. 0: store.DefaultMaxFolders.
	MaxFolders int
	// Gen makes the file names; nil: maildir's shared generator.
	Gen *maildir.NameGen

	// Counters count the outcomes; read them with Load.
	Counters Counters
}

// Counters count delivery outcomes, one per recipient. A message for
// three recipients counts three times.
type Counters struct {
	Delivered atomic.Int64 // copies stored
	Bytes     atomic.Int64 // bytes of the copies stored (each counted)

	// Rejected, by kind: the sender is told no for good.
	UnknownUser atomic.Int64
	BadAddress  atomic.Int64
	OverQuota   atomic.Int64
	TooBig      atomic.Int64
	BadMessage  atomic.Int64

	CannotCreate atomic.Int64 // the Maildir could not be made
	// TempFail counts disk (a full one included), lock, permission, I/O
	// and input failures.
	TempFail atomic.Int64
}

// RegisterMetrics reports the counters in r:
//
//	cistern_deliveries_total{result}  by Kind: delivered, unknown_user,
//	                                  bad_address, over_quota, too_big,
//	                                  bad_message, cannot_create, temporary
//	                                  (disk full and no access included)
//	cistern_delivered_bytes_total     Bytes
func (c *Counters) RegisterMetrics(r *metrics.Registry) {
	count := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	for _, s := range []struct {
		result string
		v      *atomic.Int64
	}{
		{"delivered", &c.Delivered}, {"unknown_user", &c.UnknownUser}, {"bad_address", &c.BadAddress},
		{"over_quota", &c.OverQuota}, {"too_big", &c.TooBig}, {"bad_message", &c.BadMessage},
		{"cannot_create", &c.CannotCreate}, {"temporary", &c.TempFail},
	} {
		r.CounterFunc("cistern_deliveries_total", "Delivery outcomes, one per recipient, by result.", count(s.v), "result", s.result)
	}
	r.CounterFunc("cistern_delivered_bytes_total", "Bytes of the copies delivered, each recipient's counted.", count(&c.Bytes))
}

func (c *Counters) add(k Kind, size int64) {
	switch k {
	case Delivered:
		c.Delivered.Add(1)
		c.Bytes.Add(size)
	case UnknownUser:
		c.UnknownUser.Add(1)
	case BadAddress:
		c.BadAddress.Add(1)
	case OverQuota:
		c.OverQuota.Add(1)
	case TooBig:
		c.TooBig.Add(1)
	case BadMessage:
		c.BadMessage.Add(1)
	case CannotCreate:
		c.CannotCreate.Add(1)
	default:
		c.TempFail.Add(1)
	}
}

// Envelope is what a message comes with besides its recipients.
type Envelope struct {
	// From is the sender (MAIL FROM, or the LDA's -f) without angle
	// brackets; "" is the null sender.
	From string
	// ID names the transaction in the log: an LMTP session and
	// transaction, or the LDA's process.
	ID string
	// Logger, when set, receives the transaction's lines instead of the
	// Deliverer's: the LMTP session's, which names the session.
	Logger *slog.Logger
}

// Result is the outcome of a delivery to one recipient.
type Result struct {
	// Folder is where the message went (or was to go): "INBOX" or the
	// folder's directory name without its leading dot.
	Folder string
	// Filename is the message's name in the folder's new/ when Err is
	// nil.
	Filename string
	// Size is the size of the stored file, header lines included.
	Size int64
	// Err is nil when the message is durably in the folder; else KindOf
	// tells what went wrong.
	Err error
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// target is where one recipient's copy goes.
type target struct {
	dir    string // the folder's Maildir
	folder string // its name, for logs and Result
	err    error
}

// Deliver stores the message read from msg for every recipient, and
// returns one Result per recipient, in order (see the package doc for
// the steps). It reads msg to its end unless the message is refused
// (ErrTooBig, ErrBadMessage) or msg fails; the rest is then the caller's
// to drain. Two recipients with the same target folder get one copy and
// the same Result.
func (d *Deliverer) Deliver(env Envelope, rcpts []*Recipient, msg io.Reader) []Result {
	start := time.Now()
	results := make([]Result, len(rcpts))
	targets := make([]target, len(rcpts))
	spoolAt := -1
	senderErr := ValidAddress(env.From)
	for i, r := range rcpts {
		if senderErr != nil {
			targets[i] = target{folder: "INBOX", err: fmt.Errorf("sender: %w", senderErr)}
		} else {
			targets[i] = d.target(r)
		}
		results[i].Folder = targets[i].folder
		if targets[i].err == nil && spoolAt < 0 {
			spoolAt = i
		}
	}

	var spool string
	var size int64
	var spoolErr error
	if spoolAt >= 0 {
		src := io.MultiReader(bytes.NewReader(header(env.From, rcpts)), newNormalizer(msg, d.MaxSize))
		if spoolErr = failpoint("spool", targets[spoolAt].dir); spoolErr == nil {
			spool, size, spoolErr = maildir.Spool(targets[spoolAt].dir, src, maildir.DeliverOptions{Gen: d.Gen})
		}
		if spoolErr == nil {
			defer os.Remove(spool)
		}
	}

	sources := []string{spool}
	done := make(map[string]int, len(rcpts))
	for i, r := range rcpts {
		t := &targets[i]
		switch {
		case t.err != nil:
			results[i].Err = t.err
		case spoolErr != nil:
			results[i].Err = spoolErr
		default:
			if j, ok := done[t.dir]; ok {
				results[i] = results[j]
				continue
			}
			done[t.dir] = i
			results[i].Size = size
			results[i].Filename, results[i].Err = d.store(r, t.dir, &sources, size)
		}
	}
	for i, r := range rcpts {
		d.record(env, r.Address, r, results[i].Folder, results[i].Size, results[i].Err, start)
	}
	return results
}

// target opens the recipient's account, making its Maildir on the first
// delivery, and picks the folder. A Maildir that exists but cannot be
// used (ErrNoAccess) is the target all the same, with that error: its
// mail is never filed in another folder.
func (d *Deliverer) target(r *Recipient) target {
	inbox := target{dir: filepath.Clean(r.User.Root), folder: "INBOX"}
	if err := maildir.CheckMaildir(inbox.dir); errors.Is(err, fs.ErrPermission) {
		inbox.err = fmt.Errorf("%w: %w", ErrNoAccess, err)
		return inbox
	}
	acct, err := store.OpenAccount(r.User.Root, nil)
	if err != nil {
		inbox.err = fmt.Errorf("%w: %w", ErrCannotCreate, err)
		return inbox
	}
	acct.LimitFolders(d.MaxFolders)
	if len(r.Folder) == 0 {
		return inbox
	}
	dir, err := maildir.FolderDir(acct.Root(), r.Folder)
	if err != nil {
		// FolderPath made r.Folder; only a hand-made Recipient gets here.
		inbox.err = fmt.Errorf("%w: %w", ErrCannotCreate, err)
		return inbox
	}
	t := target{dir: dir, folder: folderName(r.Folder)}
	switch use, err := acct.SpecialUse(r.Folder); {
	case err != nil:
		d.logger().Warn("delivery: the folder's special use is unknown; delivering to INBOX", "user", r.User.Name, "folder", t.folder, "err", err)
		return inbox
	case ProtectedUse(use):
		d.logger().Info("delivery: never into a folder of this special use; delivering to INBOX", "user", r.User.Name, "folder", t.folder, "special_use", use)
		return inbox
	}
	switch err := maildir.CheckFolder(acct.Root(), filepath.Base(dir)); {
	case err == nil:
		return t
	case errors.Is(err, fs.ErrPermission):
		t.err = fmt.Errorf("%w: %w", ErrNoAccess, err)
		return t
	case errors.Is(err, maildir.ErrSymlink):
		// A link is no folder, and is never followed: the mail goes to
		// INBOX, as it does for a folder that does not exist.
		d.logger().Warn("delivery: the folder is a symbolic link, or holds one; delivering to INBOX",
			"user", r.User.Name, "folder", t.folder, "dir", dir)
		return inbox
	}
	if !r.CreateFolder {
		return inbox
	}
	switch err := acct.CreateFolder(r.Folder, ""); {
	case errors.Is(err, store.ErrTooManyFolders):
		d.logger().Warn("delivery: no folder made, the user has too many; delivering to INBOX", "user", r.User.Name, "folder", t.folder, "err", err)
		return inbox
	case err != nil && !errors.Is(err, maildir.ErrFolderExists):
		t.err = fmt.Errorf("%w: %w", ErrCannotCreate, err)
	}
	return t
}

// store puts one recipient's copy into dir: quota check, link (or copy),
// quota record, notice to the store. sources are files holding the
// message, the spool first, to link from.
func (d *Deliverer) store(r *Recipient, dir string, sources *[]string, size int64) (string, error) {
	q := r.User.Quota
	counted := !q.Unlimited() && store.QuotaCountsDir(r.User.Root, dir)
	if counted {
		if err := store.CheckQuota(r.User.Root, q, size, 1); err != nil {
			return "", err
		}
	}
	if err := failpoint("link", dir); err != nil {
		return "", err
	}
	name, err := d.link(dir, sources)
	if err != nil {
		return "", err
	}
	if counted {
		// The message is durable and will be reported delivered: a retry
		// would duplicate it. maildirsize is recalculated when it is
		// found wrong, so a lost update costs a recount, nothing more.
		if err := store.AddQuota(r.User.Root, q, size, 1); err != nil {
			d.logger().Warn("delivery: recording quota usage failed", "user", r.User.Name, "err", err)
		}
	}
	if d.Registry != nil {
		if mb, ok := d.Registry.Lookup(dir); ok {
			mb.Kick()
		}
	}
	return name, nil
}

// link publishes the message into dir's new/: a hard link of the spool,
// or of an earlier copy on dir's filesystem, else a copy, which later
// recipients on that filesystem then link to.
func (d *Deliverer) link(dir string, sources *[]string) (string, error) {
	opts := maildir.DeliverOptions{Gen: d.Gen}
	name, err := maildir.Link((*sources)[0], dir, opts)
	if !errors.Is(err, maildir.ErrCrossDevice) {
		return name, err
	}
	for _, src := range (*sources)[1:] {
		// An earlier copy may have been moved to cur/ by its reader
		// meanwhile; any failure here just means: try the next one.
		if name, err := maildir.Link(src, dir, opts); err == nil {
			return name, nil
		}
	}
	f, err := os.Open((*sources)[0])
	if err != nil {
		return "", err
	}
	defer f.Close()
	name, err = maildir.Deliver(dir, f, opts)
	if err != nil {
		return "", err
	}
	*sources = append(*sources, filepath.Join(dir, maildir.New, name))
	return name, nil
}

// testFailpoint, set by tests only, makes the step op ("spool" or
// "link") into the directory dir fail with the error it returns, for
// failures a test cannot cause on the file system (it runs as root).
var testFailpoint func(op, dir string) error

func failpoint(op, dir string) error {
	if testFailpoint == nil {
		return nil
	}
	return testFailpoint(op, dir)
}

// record logs and counts the outcome for one recipient of the
// transaction env; r is nil for a recipient that was not resolved.
func (d *Deliverer) record(env Envelope, addr string, r *Recipient, folder string, size int64, err error, start time.Time) {
	k := KindOf(err)
	d.Counters.add(k, size)
	log := env.Logger
	if log == nil {
		log = d.logger()
	}
	attrs := []any{"id", env.ID, "rcpt", addr}
	if r != nil {
		attrs = append(attrs, "user", r.User.Name, "folder", folder, "size", size)
		if r.Detail != "" {
			attrs = append(attrs, "detail", r.Detail)
		}
	}
	attrs = append(attrs, "result", k.String(), "duration", time.Since(start).Round(time.Microsecond))
	switch k {
	case Delivered:
		log.Info("delivery", attrs...)
	case Temporary, CannotCreate, DiskFull, NoAccess:
		log.Warn("delivery", append(attrs, "err", err)...)
	default:
		log.Info("delivery", append(attrs, "err", err)...)
	}
}
