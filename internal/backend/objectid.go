package backend

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/message"
)

// Object identifiers (RFC 8474) on Maildir:
//
//	id         made from                           form
//	MAILBOXID  dovecot-uidlist's mailbox GUID       32 lowercase hex digits, as Dovecot prints it (STATUS X-GUID)
//	EMAILID    the message's base name              "M" + 32 hex digits of SHA-256("emailid\x00" + base name)
//	THREADID   Structure.ThreadRoot, else the base  "T" + 32 hex digits of SHA-256("thread\x00" + root), or of ("thread-alone\x00" + base name)
//
// The base name is the message's identity in Maildir (DESIGN.md §3):
// COPY and MOVE keep it (a hard link or a copy under the same name)
// where the target has no other message or file of that name (a second
// copy into one mailbox gets a fresh name, and its own EMAILID), a
// message APPENDed or delivered twice gets two. Dovecot's own message
// GUID on Maildir is the base name itself, which has '.', ',' and more
// and so is no objectid: it is hashed, 128 bits of it, so that two base
// names of one account share an id with odds of about n²/2¹²⁹.
// A message without Message-ID, In-Reply-To and References is a thread
// of its own, named by its base name so that its copies share it.

func hashID(prefix, domain, s string) string {
	sum := sha256.Sum256([]byte(domain + "\x00" + s))
	return prefix + hex.EncodeToString(sum[:16])
}

func emailID(base string) string { return hashID("M", "emailid", base) }

func threadID(root, base string) string {
	if root == "" {
		return hashID("T", "thread-alone", base)
	}
	return hashID("T", "thread", root)
}

func (m *Mailbox) MailboxID() string { return m.mailboxID }

func (m *Mailbox) EmailID(uid uint32) (string, error) {
	msg, ok := m.mb.LookupUID(uid)
	if !ok {
		return "", imap.ErrNoSuchMessageErr
	}
	return emailID(msg.Base), nil
}

func (m *Mailbox) ThreadID(uid uint32, st *message.Structure) (string, error) {
	msg, ok := m.mb.LookupUID(uid)
	if !ok {
		return "", imap.ErrNoSuchMessageErr
	}
	return threadID(st.ThreadRoot, msg.Base), nil
}
