package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/delivery"
)

const deliverHelp = `usage: cistern deliver -u USER [-m FOLDER] [--create] [-f SENDER] [--config PATH]

Delivers the message on standard input into USER's Maildir and exits:
the local delivery agent (LDA) for an MTA that runs a command per
message, e.g. Postfix's

  mailbox_command = /usr/local/bin/cistern deliver -u "$USER" -f "$SENDER"

It delivers exactly as the daemon's LMTP does (the same Maildir, name
rules, quota and limits, from the configuration of 'cistern serve'),
with or without the daemon running: they share only the files. The
message gets "Return-Path: <SENDER>" and "Delivered-To: USER" header
lines, and CRLF line endings; a first line "From ..." (the mbox
envelope line some MTAs add, e.g. Postfix's pipe with flags=F) is
dropped, as dovecot-lda does; a message with NUL bytes, or none at all,
is refused.

It never writes a Maildir as root. Started as root, it becomes the
recipient before it touches their Maildir: the uid and gid fields of
their passwd-file line (numbers, or names of the system's users and
groups), or the configuration's user and group for a line without
them; with neither, or when that is root, it refuses (status 75). An
MTA that runs it as the recipient (Postfix's mailbox_command for local
users) needs neither.

flags:
  -u USER        the recipient: a user of passwd_file, or an address
                 resolved as LMTP resolves RCPT TO (user+folder@domain;
                 the folder only with lmtp.save_to_detail_mailbox)
  -m FOLDER      deliver into FOLDER (its IMAP name, '.' between levels);
                 into INBOX when it does not exist, unless --create, and
                 always when its special use is \Sent, \Drafts or \Trash
  --create       create FOLDER when it does not exist
  -f SENDER      the envelope sender ("" or "<>": the null sender)
  --config PATH  the configuration file (default ` + config.DefaultPath + `)

Exit status (sysexits.h, which MTAs act on), with a one-line reason on
standard error:
  0   delivered
  64  usage error (EX_USAGE)
  65  the message cannot be stored: empty, NUL bytes, larger than
      lmtp.max_message_size (EX_DATAERR)
  67  unknown user (EX_NOUSER)
  73  the Maildir or the folder cannot be created (EX_CANTCREAT)
  75  temporary failure, try again later (EX_TEMPFAIL): a full disk, a
      folder or Maildir that exists but cannot be used (it is never
      filed elsewhere), disk, lock or I/O trouble, a configuration or
      passwd-file that cannot be read, started as root with nobody but
      root to deliver as
  77  the mailbox is full (EX_NOPERM); 75 with lmtp.quota_full_tempfail
`

// Exit codes of sysexits.h.
const (
	exUsage     = 64
	exDataErr   = 65
	exNoUser    = 67
	exCantCreat = 73
	exTempFail  = 75
	exNoPerm    = 77
)

func runDeliver(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {}
	user := fs.String("u", "", "")
	folder := fs.String("m", "", "")
	create := fs.Bool("create", false, "")
	sender := fs.String("f", "", "")
	configPath := fs.String("config", config.DefaultPath, "")
	usage := func(format string, a ...any) error {
		fmt.Fprint(stdio.Err, deliverHelp)
		return &exitError{code: exUsage, err: fmt.Errorf("deliver: "+format, a...)}
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdio.Out, deliverHelp)
			return nil
		}
		return usage("%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments %q", fs.Args())
	case *user == "":
		return usage("-u USER is required")
	case *create && *folder == "":
		return usage("--create needs -m FOLDER")
	}
	from := strings.TrimSuffix(strings.TrimPrefix(*sender, "<"), ">")
	if err := delivery.ValidAddress(from); err != nil {
		return usage("-f: %v", err)
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		// A broken configuration must not bounce mail: the MTA keeps it
		// until the operator fixes the file (EX_CONFIG would bounce).
		return &exitError{code: exTempFail, err: fmt.Errorf("deliver: %w", err)}
	}
	tempfailQuota := cfg.LMTP.QuotaFullTempfail
	// stderr carries the one-line reason only; the daemon's log is not
	// this process's to write.
	logger := slog.New(slog.DiscardHandler)
	users := auth.NewAuthenticator(cfg.PasswdFile, logger)
	d := newDeliverer(cfg, users, logger)
	id := "lda." + strconv.Itoa(os.Getpid())

	r, err := d.Resolve(id, *user)
	if err != nil {
		return deliverExit(err, tempfailQuota)
	}
	// Root never touches a Maildir (privilege.go): become the recipient.
	if err := deliverAsRecipient(cfg, users, r.User.Name); err != nil {
		return &exitError{code: exTempFail, err: fmt.Errorf("deliver: %s", oneLine(err.Error()))}
	}
	if *folder != "" {
		p, err := delivery.FolderPath(*folder)
		if err != nil {
			// As for a folder that does not exist: INBOX. Creating a
			// folder of that name is impossible.
			if *create {
				return &exitError{code: exCantCreat, err: fmt.Errorf("deliver: folder %q: %w", *folder, err)}
			}
			p = nil
		}
		r.Folder, r.CreateFolder = p, *create
	}
	msg, err := skipFromLine(bufio.NewReader(stdio.In))
	if err != nil {
		return deliverExit(fmt.Errorf("reading the message: %w", err), tempfailQuota)
	}
	res := d.Deliver(delivery.Envelope{From: from, ID: id}, []*delivery.Recipient{r}, msg)
	return deliverExit(res[0].Err, tempfailQuota)
}

// deliverAsRecipient makes the process the user called name, as
// deliverIdentity says, when it runs as root. A refusal is a temporary
// failure: the MTA keeps the message until the operator sets uid and gid
// in the passwd-file, or user in the configuration.
func deliverAsRecipient(cfg *config.Config, users *auth.Authenticator, name string) error {
	euid := effectiveUID()
	if euid != 0 {
		return nil
	}
	u, err := users.Lookup(name)
	if err != nil {
		return err
	}
	id, err := deliverIdentity(euid, u, cfg, lookupIdentity)
	if err != nil {
		return err
	}
	return become(id)
}

// skipFromLine drops a first line starting "From " (an mbox envelope
// line, not a header field: a header name has no space before its ':').
func skipFromLine(r *bufio.Reader) (io.Reader, error) {
	head, err := r.Peek(len("From "))
	if err != nil && err != io.EOF {
		return nil, err
	}
	for string(head) == "From " {
		_, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: read on
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		break
	}
	return r, nil
}

// deliverExit is the one place where delivery outcomes become exit codes
// (see deliverHelp).
func deliverExit(err error, tempfailQuota bool) error {
	if err == nil {
		return nil
	}
	var code int
	switch delivery.KindOf(err) {
	case delivery.UnknownUser:
		code = exNoUser
	case delivery.BadAddress:
		code = exUsage
	case delivery.OverQuota:
		code = exNoPerm
		if tempfailQuota {
			code = exTempFail
		}
	case delivery.TooBig, delivery.BadMessage:
		code = exDataErr
	case delivery.CannotCreate:
		code = exCantCreat
	case delivery.DiskFull, delivery.NoAccess:
		code = exTempFail
	default:
		code = exTempFail
	}
	return &exitError{code: code, err: fmt.Errorf("deliver: %s", oneLine(err.Error()))}
}

// oneLine keeps a reason on one line of standard error, which an MTA
// copies into its log or bounce.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
