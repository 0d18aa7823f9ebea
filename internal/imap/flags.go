package imap

import "strings"

// The defined flags (RFC 9051 §7.3.5, RFC 3501 §7.2.6): the client learns
// the mailbox's keywords from FLAGS (and PERMANENTFLAGS) and may refuse a
// keyword it was never told of. A keyword comes into use from anywhere:
// this session's STORE, another session, APPEND or COPY with keywords,
// another program's rename that added a letter to dovecot-keywords. So
// the session remembers what it announced, and before any response that
// carries a keyword outside it, announces the flags again.

var systemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// sendFlags sends FLAGS and PERMANENTFLAGS with the mailbox's keywords
// and extra (keywords in use that the keywords file did not list when
// read), and remembers them as announced. Keywords are compared as
// spelled: the client is told each in the spelling it will see.
func (c *conn) sendFlags(extra []string) {
	s := c.sel
	kws := s.mb.Keywords()
	s.keywords = make(map[string]bool, len(kws)+len(extra))
	for _, k := range kws {
		s.keywords[k] = true
	}
	for _, k := range extra {
		if !s.keywords[k] {
			s.keywords[k] = true
			kws = append(kws, k)
		}
	}
	flags := append(append([]string(nil), systemFlags...), kws...)
	c.bw.WriteString("* FLAGS ")
	c.enc.Flags(flags)
	c.bw.WriteString("\r\n")
	if s.readOnly {
		c.bw.WriteString("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n")
	} else {
		c.bw.WriteString("* OK [PERMANENTFLAGS ")
		c.enc.Flags(append(flags, `\*`))
		c.bw.WriteString("] Flags permitted\r\n")
	}
}

// announce sends FLAGS first when flags hold a keyword the client was
// not told of. It is called before the response that carries flags is
// begun.
func (c *conn) announce(flags []string) {
	var extra []string
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) && !c.sel.keywords[f] {
			extra = append(extra, f)
		}
	}
	if extra != nil {
		c.sendFlags(extra)
	}
}
