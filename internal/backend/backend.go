// Package backend joins the IMAP engine to the storage: it implements
// imap.Backend with store.Account and store.Mailbox, mapping IMAP mailbox
// names to Maildir++ folders and IMAP flags to Maildir flag letters.
//
//	IMAP        Maildir letter
//	\Draft      D
//	\Flagged    F
//	\Answered   R
//	\Seen       S
//	\Deleted    T
//	keyword     a–z, by dovecot-keywords
//
// Other letters (P, or any a program invented) are invisible to IMAP and
// kept by every flag change. \Recent is not stored.
//
// A user's quota (Account.Quota, from the Authenticator) is kept by the
// store's Account: APPEND, COPY and MOVE that would pass it answer NO
// [OVERQUOTA] (RFC 5530) before anything is written, and EXPUNGE and
// CLOSE give the space back. MOVE between two counted mailboxes adds
// nothing, so it is never refused.
//
// MOVE (imap.Mover) renames each message into the target folder
// (store.Mailbox.Move): it is in exactly one folder at every instant.
// Across filesystems it copies, then expunges the originals.
//
// Storage failures the client can be told of are mapped in mapErr: a
// full disk (ENOSPC, or the owner's EDQUOT) to NO [OVERQUOTA] "Not
// enough disk space" for whatever command needed room (reading needs
// none: the store serves what it has), and a mailbox the server may not
// look inside (a permission error) to NO [NOPERM]; LIST still shows it.
//
// A change (APPEND, COPY, MOVE, STORE, EXPUNGE) whose mailbox lock
// another process holds past the lock timeout answers NO [INUSE] and
// changes nothing (store.ErrLocked); SELECT, EXAMINE, STATUS, NOOP and
// IDLE never wait for the lock, and show new files once they have UIDs.
//
// Mailbox names use '.' between hierarchy levels, as Maildir++ does on
// disk; "INBOX" (any case) is the root Maildir. Folder names are in
// modified UTF-7 on disk (as Dovecot writes them) and UTF-8 for the
// engine.
package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/logctx"
	"github.com/cistern-mail/cistern/internal/mailboxname"
	"github.com/cistern-mail/cistern/internal/message"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// Authenticator checks a password and says where the user's mail is.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (Account, error)
}

// Account is what an Authenticator says of a user it let in.
type Account struct {
	// MaildirRoot is the user's Maildir (INBOX; the folders below it).
	MaildirRoot string
	// Quota limits what the user may keep (the zero value: no limit). It
	// is enforced on APPEND, COPY and MOVE, and recorded in maildirsize
	// (store.CheckQuota).
	Quota store.QuotaLimit
}

// Backend implements imap.Backend.
type Backend struct {
	Auth     Authenticator
	Registry *store.Registry
}

var _ imap.Backend = (*Backend)(nil)

// Login implements imap.Backend.
func (b *Backend) Login(ctx context.Context, username, password string) (imap.User, error) {
	a, err := b.Auth.Authenticate(ctx, username, password)
	if err != nil {
		return nil, err
	}
	acct, err := store.OpenAccountWithQuota(a.MaildirRoot, b.Registry, a.Quota)
	if err != nil {
		return nil, mapErr(err)
	}
	return &User{name: username, acct: acct}, nil
}

// User implements imap.User for one account.
type User struct {
	name string
	acct *store.Account
}

var _ imap.User = (*User)(nil)

func (u *User) Username() string { return u.name }
func (u *User) Close() error     { return nil }

// path splits an IMAP mailbox name into its folder elements
// (mailboxname.Folder). A name holding a control character names no
// mailbox (RFC 9051 §5.1): the engine refuses to make one and never
// lists one that another program made, so none can be opened, changed
// or looked at either.
func path(name string) ([]string, error) {
	p, err := mailboxname.Folder(name)
	switch {
	case errors.Is(err, mailboxname.ErrControl):
		return nil, errors.Join(imap.ErrNoSuchMailbox, err)
	case err != nil:
		return nil, errors.Join(imap.ErrBadMailboxName, err)
	}
	return p, nil
}

// diskName is the name of folder elements in the subscriptions file:
// as on disk, elements joined by '.' ("INBOX" for the inbox).
func diskName(p []string) string {
	if len(p) == 0 {
		return "INBOX"
	}
	return strings.Join(p, ".")
}

// mapErr turns storage errors into the engine's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, maildir.ErrFolderExists):
		return errors.Join(imap.ErrMailboxExists, err)
	case errors.Is(err, maildir.ErrFolderNotFound), errors.Is(err, store.ErrNoSuchFolder):
		return errors.Join(imap.ErrNoSuchMailbox, err)
	case errors.Is(err, maildir.ErrBadFolderName):
		return errors.Join(imap.ErrBadMailboxName, err)
	case errors.Is(err, store.ErrNoSuchMessage):
		return errors.Join(imap.ErrNoSuchMessageErr, err)
	case errors.Is(err, store.ErrOverQuota):
		return errors.Join(imap.ErrOverQuota, err)
	case errors.Is(err, store.ErrTooManyFolders):
		return errors.Join(imap.ErrTooManyMailboxes, err)
	case errors.Is(err, store.ErrMailboxGone):
		return errors.Join(imap.ErrNoSuchMailbox, err)
	case errors.Is(err, store.ErrLocked):
		return errors.Join(imap.ErrLocked, err)
	case maildir.NoSpace(err):
		return errors.Join(imap.ErrNoSpace, err)
	case errors.Is(err, fs.ErrPermission):
		return errors.Join(imap.ErrNoPerm, err)
	}
	return err
}

// selErr maps the errors of the selected mailbox's own operations: when
// it was deleted or renamed meanwhile, the session cannot go on with it.
func (m *Mailbox) selErr(err error) error {
	if err != nil && m.mb.Gone() {
		return errors.Join(imap.ErrSelectedGone, err)
	}
	return mapErr(err)
}

func (u *User) Folders(ctx context.Context) ([]imap.FolderInfo, error) {
	fs, err := u.acct.Folders()
	if err != nil {
		return nil, mapErr(err)
	}
	subs, err := u.acct.Subscriptions()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]imap.FolderInfo, 0, len(fs))
	exists := make(map[string]bool, len(fs))
	inbox := -1
	for _, f := range fs {
		if len(f.Path) == 1 && strings.EqualFold(f.Path[0], "INBOX") && inbox >= 0 {
			// The level above INBOX.x (or a .INBOX directory another
			// program made) is INBOX itself, which the name INBOX
			// always means (path): one mailbox, listed once, with the
			// children of both.
			out[inbox].HasChildren = out[inbox].HasChildren || f.HasChildren
			continue
		}
		if len(f.Path) == 0 {
			inbox = len(out)
		}
		out = append(out, imap.FolderInfo{Name: mailboxname.Name(f.Path), SpecialUse: f.SpecialUse, HasChildren: f.HasChildren, NoSelect: !f.Selectable,
			Subscribed: slices.Contains(subs, diskName(f.Path))})
		exists[diskName(f.Path)] = true
	}
	// A subscription outlives its mailbox (RFC 9051 §6.3.7): such names
	// are listed as \NonExistent, by LSUB and LIST (SUBSCRIBED) only.
	for _, s := range subs {
		if exists[s] || strings.EqualFold(s, "INBOX") {
			continue
		}
		p, err := maildir.ParseFolderName("." + s)
		if err != nil {
			continue // not a name any client could have subscribed
		}
		exists[s] = true
		out = append(out, imap.FolderInfo{Name: mailboxname.Name(p), NonExistent: true, NoSelect: true, Subscribed: true})
	}
	return out, nil
}

func (u *User) Create(ctx context.Context, name, specialUse string) error {
	p, err := path(name)
	if err != nil {
		return err
	}
	if p == nil {
		return imap.ErrMailboxExists
	}
	return mapErr(u.acct.CreateFolder(p, specialUse))
}

func (u *User) Delete(ctx context.Context, name string) error {
	p, err := path(name)
	if err != nil {
		return err
	}
	if p == nil {
		return errors.Join(imap.ErrBadMailboxName, errors.New("INBOX cannot be deleted"))
	}
	return mapErr(u.acct.DeleteFolder(p))
}

func (u *User) Rename(ctx context.Context, from, to string) error {
	pf, err := path(from)
	if err != nil {
		return err
	}
	pt, err := path(to)
	if err != nil {
		return err
	}
	return mapErr(u.acct.RenameFolder(pf, pt))
}

func (u *User) SetSubscribed(ctx context.Context, name string, on bool) error {
	p, err := path(name)
	if err != nil {
		return err
	}
	return mapErr(u.acct.SetSubscribed(diskName(p), on))
}

func (u *User) Status(ctx context.Context, name string) (imap.StatusInfo, error) {
	mb, release, err := u.open(name)
	if err != nil {
		return imap.StatusInfo{}, err
	}
	defer release()
	if _, err := mb.Sync(ctx); err != nil {
		return imap.StatusInfo{}, mapErr(err)
	}
	st := imap.StatusInfo{UIDValidity: mb.UIDValidity(), UIDNext: mb.NextUID(), HighestModSeq: mb.HighestModSeq()}
	if st.MailboxID, err = mb.GUID(ctx); err != nil {
		return imap.StatusInfo{}, mapErr(err)
	}
	firstRecent := mb.FirstRecent()
	for _, m := range mb.Messages() {
		st.Messages++
		if m.UID >= firstRecent {
			st.Recent++
		}
		if !m.Flags.Has(maildir.FlagSeen) {
			st.Unseen++
		}
		if m.Flags.Has(maildir.FlagTrashed) {
			st.Deleted++
		}
		if size, _ := maildir.SizeFields(m.Base); size >= 0 {
			st.Size += size
		} else if fi, err := maildir.LstatMessage(mb.Path(m)); err == nil {
			st.Size += fi.Size()
		}
	}
	return st, nil
}

func (u *User) open(name string) (*store.Mailbox, func(), error) {
	p, err := path(name)
	if err != nil {
		return nil, nil, err
	}
	mb, release, err := u.acct.OpenMailbox(p)
	return mb, release, mapErr(err)
}

func (u *User) Select(ctx context.Context, name string) (imap.Mailbox, error) {
	mb, release, err := u.open(name)
	if err != nil {
		return nil, err
	}
	if _, err := mb.Sync(ctx); err != nil {
		release()
		return nil, mapErr(err)
	}
	id, err := mb.GUID(ctx)
	if err != nil {
		release()
		return nil, mapErr(err)
	}
	// Subscribed after the sync, so that the session does not collect a
	// first sync's every message as news; the engine's snapshot
	// (Messages) comes after this, so nothing falls between the two, and
	// what is in both is ignored by the view.
	sub := mb.Subscribe()
	return &Mailbox{u: u, mb: mb, sub: sub, release: release, mailboxID: id}, nil
}

func (u *User) Append(ctx context.Context, name string, r io.Reader, size int64, flags []string, date time.Time) (uint32, uint32, error) {
	mb, release, err := u.open(name)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	f, err := toLetters(ctx, mb, flags)
	if err != nil {
		return 0, 0, mapErr(err)
	}
	if mb.UIDValidity() == 0 {
		if _, err := mb.Sync(ctx); err != nil {
			return 0, 0, mapErr(err)
		}
	}
	msg, err := u.acct.Append(ctx, mb, r, size, f, date, nil)
	if err != nil {
		return 0, 0, mapErr(err)
	}
	if msg.UIDValidity == 0 {
		return mb.UIDValidity(), msg.UID, nil
	}
	return msg.UIDValidity, msg.UID, nil
}

// Mailbox implements imap.Mailbox: one session's handle.
type Mailbox struct {
	u       *User
	mb      *store.Mailbox
	sub     *store.Subscription
	release func()
	// mailboxID is the MAILBOXID (objectid.go), read at SELECT: a
	// mailbox keeps it for its life.
	mailboxID string
}

var (
	_ imap.Mailbox = (*Mailbox)(nil)
	_ imap.Mover   = (*Mailbox)(nil)
)

func (m *Mailbox) UIDValidity() uint32            { return m.mb.UIDValidity() }
func (m *Mailbox) UIDNext() uint32                { return max(m.mb.NextUID(), 1) }
func (m *Mailbox) Notify() <-chan struct{}        { return m.sub.Notify() }
func (m *Mailbox) Sync(ctx context.Context) error { _, err := m.mb.Sync(ctx); return m.selErr(err) }

func (m *Mailbox) Recent(upTo uint32, claim bool) uint32 {
	if claim {
		return m.mb.ClaimRecent(upTo)
	}
	return m.mb.FirstRecent()
}

func (m *Mailbox) Close() error {
	m.sub.Close()
	m.release()
	return nil
}

// keywordNames are the mailbox's keyword names by letter. A name in
// dovecot-keywords that is no IMAP atom ("a b", "x)y": another program
// wrote it) would break every FLAGS and FETCH it appeared in: its letter
// is left unnamed, as a letter without a name is, and kept on disk.
func (m *Mailbox) keywordNames() [26]string {
	k, err := m.mb.Keywords()
	if err != nil || k == nil {
		return [26]string{}
	}
	names := k.Names
	for i, n := range names {
		if n != "" && !wire.IsAtom(n) {
			names[i] = ""
		}
	}
	return names
}

func (m *Mailbox) Keywords() []string {
	var out []string
	for _, n := range m.keywordNames() {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (m *Mailbox) info(msg store.Message, names *[26]string) imap.MessageInfo {
	return imap.MessageInfo{UID: msg.UID, Flags: toIMAP(msg.Flags, names), ModSeq: msg.ModSeq}
}

func (m *Mailbox) infos(msgs []store.Message) []imap.MessageInfo {
	if len(msgs) == 0 {
		return nil
	}
	names := m.keywordNames()
	out := make([]imap.MessageInfo, len(msgs))
	for i, msg := range msgs {
		out[i] = m.info(msg, &names)
	}
	return out
}

func (m *Mailbox) Messages() []imap.MessageInfo { return m.infos(m.mb.Messages()) }

func (m *Mailbox) UIDs() ([]uint32, uint32) { return m.mb.UIDs() }

func (m *Mailbox) Deleted() []uint32 {
	var out []uint32
	for _, msg := range m.mb.Messages() {
		if msg.Flags.Has(maildir.FlagTrashed) {
			out = append(out, msg.UID)
		}
	}
	return out
}

func (m *Mailbox) Take() imap.Update {
	p := m.sub.Take()
	return imap.Update{Expunged: p.Expunged, New: m.infos(p.New), Flags: m.infos(p.Flags), Void: p.UIDValidityChanged, Gone: p.Gone, HighestModSeq: p.HighestModSeq}
}

func (m *Mailbox) HighestModSeq() uint64 { return m.mb.HighestModSeq() }

func (m *Mailbox) ChangedSince(modseq uint64) []imap.MessageInfo {
	return m.infos(m.mb.ChangedSince(modseq))
}

func (m *Mailbox) ExpungedSince(modseq uint64) []imap.UIDRange {
	rs := m.mb.ExpungedSince(modseq)
	out := make([]imap.UIDRange, len(rs))
	for i, r := range rs {
		out[i] = imap.UIDRange{Lo: r.Lo, Hi: r.Hi}
	}
	return out
}

func (m *Mailbox) StoreUnchangedSince(ctx context.Context, uids []uint32, op flagop.Op, flags []string, since uint64) ([]imap.MessageInfo, []uint32, error) {
	f, err := toLetters(ctx, m.mb, flags)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	msgs, modified, err := m.mb.SetFlagsUnchangedSince(ctx, uids, op, f, since, m.sub)
	return m.infos(msgs), modified, m.selErr(err)
}

func (m *Mailbox) Store(ctx context.Context, uids []uint32, op flagop.Op, flags []string) ([]imap.MessageInfo, error) {
	f, err := toLetters(ctx, m.mb, flags)
	if err != nil {
		return nil, mapErr(err)
	}
	msgs, err := m.mb.SetFlags(ctx, uids, op, f, m.sub)
	return m.infos(msgs), m.selErr(err)
}

func (m *Mailbox) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	gone, err := m.u.acct.Expunge(ctx, m.mb, uids, m.sub)
	out := make([]uint32, len(gone))
	for i, g := range gone {
		out[i] = g.UID
	}
	return out, m.selErr(err)
}

func (m *Mailbox) Copy(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	return m.copy(ctx, uids, dest, false)
}

// Move implements imap.Mover.
func (m *Mailbox) Move(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, []uint32, error) {
	dst, release, err := m.u.open(dest)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	defer release()
	if dst.UIDValidity() == 0 {
		if _, err := dst.Sync(ctx); err != nil {
			return 0, nil, nil, nil, mapErr(err)
		}
	}
	validity, src, dstUIDs, err := m.u.acct.Move(ctx, m.mb, uids, dst, m.sub)
	if errors.Is(err, store.ErrMoveNeedsCopy) {
		return m.moveByCopy(ctx, uids, dest)
	}
	if err != nil {
		return 0, nil, nil, nil, m.selErr(err)
	}
	return validity, src, dstUIDs, src, nil
}

// moveByCopy moves where no rename can: it copies, then expunges the
// originals. When the expunge fails, the copies of the originals it did
// not remove are expunged again, so that what the answer names is what
// moved: a NO, when none did.
func (m *Mailbox) moveByCopy(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, []uint32, error) {
	validity, src, dstUIDs, err := m.copy(ctx, uids, dest, true)
	if err != nil || len(src) == 0 {
		return validity, src, dstUIDs, nil, err
	}
	gone, err := m.Expunge(ctx, src)
	if err == nil {
		return validity, src, dstUIDs, gone, nil
	}
	var movedSrc, movedDst, undo []uint32
	for i, uid := range src {
		if slices.Contains(gone, uid) {
			movedSrc, movedDst = append(movedSrc, uid), append(movedDst, dstUIDs[i])
		} else {
			undo = append(undo, dstUIDs[i])
		}
	}
	if dst, release, oerr := m.u.open(dest); oerr == nil {
		m.u.acct.Expunge(ctx, dst, undo, nil)
		release()
	}
	if len(gone) == 0 {
		return 0, nil, nil, nil, err
	}
	return validity, movedSrc, movedDst, gone, nil
}

func (m *Mailbox) copy(ctx context.Context, uids []uint32, dest string, move bool) (uint32, []uint32, []uint32, error) {
	dst, release, err := m.u.open(dest)
	if err != nil {
		return 0, nil, nil, err
	}
	defer release()
	if dst.UIDValidity() == 0 {
		if _, err := dst.Sync(ctx); err != nil {
			return 0, nil, nil, mapErr(err)
		}
	}
	// Keywords are per mailbox in Maildir: the store gives the copies
	// the target's letters for their names.
	// A message expunged meanwhile: the store copies none (RFC 2180
	// §4.4.1), ErrNoSuchMessage.
	validity, src, dstUIDs, err := m.u.acct.Copy(ctx, m.mb, uids, dst, move, nil)
	if err != nil {
		return 0, nil, nil, m.selErr(err)
	}
	return validity, src, dstUIDs, nil
}

func (m *Mailbox) Stat(ctx context.Context, uid uint32) (imap.MessageInfo, error) {
	msg, ok := m.mb.LookupUID(uid)
	if !ok {
		return imap.MessageInfo{}, imap.ErrNoSuchMessageErr
	}
	names := m.keywordNames()
	if e, ok := m.mb.Cached(msg); ok {
		info := m.info(msg, &names)
		info.Size, info.InternalDate = e.CRLFSize, e.MTime
		return info, nil
	}
	body, info, err := m.OpenBody(ctx, uid, false) // fills the index
	if err != nil {
		return imap.MessageInfo{}, err
	}
	body.File.Close()
	return info, nil
}

// Structure returns the parsed structure of a message (ENVELOPE and
// BODYSTRUCTURE), from the index when it has it.
func (m *Mailbox) Structure(ctx context.Context, uid uint32) (*message.Structure, imap.MessageInfo, error) {
	msg, ok := m.mb.LookupUID(uid)
	if !ok {
		return nil, imap.MessageInfo{}, imap.ErrNoSuchMessageErr
	}
	if e, ok := m.mb.Cached(msg); ok && currentStructure(e) {
		if st, err := message.UnmarshalStructure(e.Structure); err == nil {
			names := m.keywordNames()
			info := m.info(msg, &names)
			info.Size, info.InternalDate = e.CRLFSize, e.MTime
			return st, info, nil
		}
	}
	data, info, st, err := m.open(ctx, uid)
	if err != nil {
		return nil, imap.MessageInfo{}, err
	}
	if st == nil {
		st = message.Parse(data).Structure() // an index entry whose structure could not be read
	}
	return st, info, nil
}

// ReadSize implements imap.ReadSizer: Open holds the file and, when its
// lines end in bare LF, its CRLF copy; a Structure in the index costs
// nothing. Without an index entry the CRLF copy is counted at its
// largest, twice the file.
func (m *Mailbox) ReadSize(ctx context.Context, uid uint32, structure bool) (int64, error) {
	msg, ok := m.mb.LookupUID(uid)
	if !ok {
		return 0, imap.ErrNoSuchMessageErr
	}
	if e, ok := m.mb.Cached(msg); ok {
		if structure && len(e.Structure) > 0 && e.Structure[0] == message.StructureVersion {
			return 0, nil
		}
		cost := e.FileSize
		if e.CRLFSize != e.FileSize {
			cost += e.CRLFSize
		}
		return cost, nil
	}
	if size, _ := maildir.SizeFields(msg.Base); size >= 0 {
		return 3 * size, nil // the S= of the file name: no open before the read
	}
	f, _, err := m.mb.OpenMessage(ctx, uid)
	if err != nil {
		return 0, m.selErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return 3 * fi.Size(), nil
}

func (m *Mailbox) Open(ctx context.Context, uid uint32) ([]byte, imap.MessageInfo, error) {
	data, info, _, err := m.open(ctx, uid)
	return data, info, err
}

// open reads a message, and parses it for the index when the index has
// no current structure for it: then st is its structure (nil otherwise),
// so that Structure does not parse it twice.
func (m *Mailbox) open(ctx context.Context, uid uint32) (data []byte, info imap.MessageInfo, st *message.Structure, err error) {
	f, msg, err := m.mb.OpenMessage(ctx, uid)
	if err != nil {
		return nil, imap.MessageInfo{}, nil, m.selErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, imap.MessageInfo{}, nil, err
	}
	data, err = readFile(f, fi.Size())
	if err != nil {
		return nil, imap.MessageInfo{}, nil, err
	}
	names := m.keywordNames()
	info = m.info(msg, &names)
	info.InternalDate = fi.ModTime()
	if e, ok := m.mb.Cached(msg); ok && currentStructure(e) {
		data = message.ToCRLF(data)
		info.Size = int64(len(data))
		return data, info, nil, nil
	}
	parsed := m.parse(ctx, uid, msg, data, info.InternalDate)
	data = parsed.Raw()
	info.Size = int64(len(data))
	return data, info, parsed.Structure(), nil
}

// readFile reads the open file f of size bytes into a buffer of its
// size: io.ReadAll's doubling would hold up to twice a big message.
func readFile(f io.Reader, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// currentStructure reports whether the index entry holds a structure of
// this version of package message (an older one has no file offsets).
func currentStructure(e store.IndexEntry) bool {
	return len(e.Structure) > 0 && e.Structure[0] == message.StructureVersion
}

// parse parses the message file for the index and fills its entry.
func (m *Mailbox) parse(ctx context.Context, uid uint32, msg store.Message, file []byte, mtime time.Time) *message.Message {
	parsed := message.ParseFile(file)
	st := parsed.Structure()
	if st.Limited != 0 {
		// Once per parse: the structure is cached, and later FETCHes
		// read it from the index.
		logctx.Or(ctx, slog.Default()).Warn("message over the structure limits; ENVELOPE and BODYSTRUCTURE are cut",
			"mailbox", m.mb.Dir(), "uid", uid, "file", msg.Filename, "limits", st.Limited.String(), "size", len(file))
	}
	m.mb.Cache(msg, store.IndexEntry{FileSize: int64(len(file)), CRLFSize: st.Size, MTime: mtime, Structure: st.Marshal()})
	return parsed
}

// countBuffers are the buffers of OpenBody's counting passes.
var countBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// OpenBody implements imap.Mailbox. The index entry counts only when it
// describes the file held open (its size): a file another program
// rewrote is counted or parsed again, and its entry replaced.
func (m *Mailbox) OpenBody(ctx context.Context, uid uint32, structure bool) (imap.Body, imap.MessageInfo, error) {
	f, msg, err := m.mb.OpenMessage(ctx, uid)
	if err != nil {
		return imap.Body{}, imap.MessageInfo{}, m.selErr(err)
	}
	body, info, err := m.openBody(ctx, uid, f, msg, structure)
	if err != nil {
		f.Close()
		return imap.Body{}, imap.MessageInfo{}, err
	}
	return body, info, nil
}

func (m *Mailbox) openBody(ctx context.Context, uid uint32, f *os.File, msg store.Message, structure bool) (imap.Body, imap.MessageInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return imap.Body{}, imap.MessageInfo{}, err
	}
	names := m.keywordNames()
	info := m.info(msg, &names)
	info.InternalDate = fi.ModTime()
	body := imap.Body{File: f}
	e, ok := m.mb.Cached(msg)
	ok = ok && e.FileSize == fi.Size()
	if ok && structure && currentStructure(e) {
		if st, err := message.UnmarshalStructure(e.Structure); err == nil && st.Size == e.CRLFSize {
			body.Size, body.Structure = e.CRLFSize, st
			info.Size = body.Size
			return body, info, nil
		}
	}
	if ok && !structure {
		body.Size, info.Size = e.CRLFSize, e.CRLFSize
		return body, info, nil
	}
	if structure {
		data, err := readFile(io.NewSectionReader(f, 0, fi.Size()), fi.Size())
		if err != nil {
			return imap.Body{}, imap.MessageInfo{}, err
		}
		st := m.parse(ctx, uid, msg, data, info.InternalDate).Structure()
		body.Size, body.Structure = st.Size, st
		info.Size = body.Size
		return body, info, nil
	}
	buf := countBuffers.Get().(*[]byte)
	size, crlfSize, err := message.CountCRLF(io.NewSectionReader(f, 0, fi.Size()+1), *buf)
	countBuffers.Put(buf)
	if err != nil {
		return imap.Body{}, imap.MessageInfo{}, err
	}
	// The structure waits for the first FETCH that needs it.
	m.mb.Cache(msg, store.IndexEntry{FileSize: size, CRLFSize: crlfSize, MTime: info.InternalDate})
	body.Size, info.Size = crlfSize, crlfSize
	return body, info, nil
}

var systemFlags = []struct {
	name   string
	letter byte
}{
	{`\Draft`, maildir.FlagDraft},
	{`\Flagged`, maildir.FlagFlagged},
	{`\Answered`, maildir.FlagReplied},
	{`\Seen`, maildir.FlagSeen},
	{`\Deleted`, maildir.FlagTrashed},
}

// toIMAP lists the IMAP flags of a set of letters.
func toIMAP(f maildir.Flags, names *[26]string) []string {
	var out []string
	for _, s := range systemFlags {
		if f.Has(s.letter) {
			out = append(out, s.name)
		}
	}
	for i := 0; i < 26; i++ {
		if f.Has('a'+byte(i)) && names[i] != "" {
			out = append(out, names[i])
		}
	}
	return out
}

// toLetters maps IMAP flags to letters, defining new keywords.
// \Recent cannot be set (RFC 9051 §2.3.2) and is ignored.
func toLetters(ctx context.Context, mb *store.Mailbox, flags []string) (maildir.Flags, error) {
	var f maildir.Flags
	var keywords []string
next:
	for _, fl := range flags {
		for _, s := range systemFlags {
			if strings.EqualFold(fl, s.name) {
				f = f.With(s.letter)
				continue next
			}
		}
		if strings.HasPrefix(fl, `\`) {
			continue // \Recent and unknown system flags
		}
		keywords = append(keywords, fl)
	}
	if len(keywords) > 0 {
		k, missing, err := mb.KeywordFlags(ctx, keywords, true)
		if err != nil {
			return 0, mapErr(err)
		}
		if len(missing) > 0 {
			return 0, imap.ErrKeywordsFull
		}
		f |= k
	}
	return f, nil
}
