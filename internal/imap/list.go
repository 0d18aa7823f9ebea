package imap

import (
	"errors"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"

	"github.com/cistern-mail/cistern/internal/mailboxname"
)

// LIST and LSUB — RFC 9051 §6.3.9, RFC 3501 §6.3.9 (LSUB), with
// CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes, the
// extended LIST syntax (LIST-EXTENDED, RFC 5258) and RETURN (STATUS)
// (LIST-STATUS, RFC 5819). Hierarchy separator '.'. State:
// authenticated.
//
// \HasChildren/\HasNoChildren and special-use attributes are sent on
// every LIST, asked for or not (RFC 5258 §4 and RFC 6154 §2 allow it).
// A subscribed name without a mailbox is listed by LSUB (without
// attributes) and by LIST (SUBSCRIBED) as \NonExistent (RFC 5258 §3.4),
// never by a plain LIST. The unsubscribed parent of a subscribed name
// is listed by LSUB with a pattern ending in "%" as \Noselect (RFC 3501
// §6.3.9) and by RECURSIVEMATCH with CHILDINFO (RFC 5258 §3.5), mailbox
// or not (withParents).
func cmdList(c *conn, tag string, _ bool) error { return c.list(tag, false) }
func cmdLsub(c *conn, tag string, _ bool) error { return c.list(tag, true) }

// listOpts are the selection and return options of an extended LIST
// (RFC 5258 §3, RFC 5819 §2, RFC 6154 §3).
type listOpts struct {
	extended bool // selection options or several patterns were given

	subscribed     bool // selection SUBSCRIBED: subscribed names only
	recursiveMatch bool // selection RECURSIVEMATCH: CHILDINFO for parents
	specialUseOnly bool // selection SPECIAL-USE: special-use mailboxes only

	retSubscribed bool     // return SUBSCRIBED: \Subscribed attribute
	retStatus     []string // return STATUS (items): a STATUS per mailbox
}

// listSelectOpts reads list-select-opts (RFC 5258 §6): a list of
// option atoms; RECURSIVEMATCH needs a base option; unknown options are
// a syntax error (BAD).
func (c *conn) listSelectOpts(o *listOpts) error {
	o.extended = true
	err := c.dec.List(func() error {
		opt, err := c.dec.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(opt) {
		case "SUBSCRIBED":
			o.subscribed = true
		case "RECURSIVEMATCH":
			o.recursiveMatch = true
		case "SPECIAL-USE":
			o.specialUseOnly = true
		case "REMOTE":
			// No remote mailboxes: nothing more to list (RFC 5258 §3.1).
		default:
			return &wire.Error{Msg: "unknown LIST selection option " + opt}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if o.recursiveMatch && !o.subscribed && !o.specialUseOnly {
		return &wire.Error{Msg: "RECURSIVEMATCH needs another selection option"}
	}
	return nil
}

// listReturnOpts reads list-return-opts after "RETURN SP" (RFC 5258 §6,
// RFC 5819 §4, RFC 6154 §6).
func (c *conn) listReturnOpts(o *listOpts) error {
	return c.dec.List(func() error {
		opt, err := c.dec.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(opt) {
		case "SUBSCRIBED":
			o.retSubscribed = true
		case "CHILDREN", "SPECIAL-USE":
			// Always sent.
		case "STATUS":
			if err := c.dec.SP(); err != nil {
				return err
			}
			items, err := c.dec.StatusItems()
			if err != nil {
				return err
			}
			o.retStatus = items
		default:
			return &wire.Error{Msg: "unknown LIST return option " + opt}
		}
		return nil
	})
}

func (c *conn) list(tag string, lsub bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	var o listOpts
	b, err := c.dec.Peek()
	if err != nil {
		return err
	}
	if b == '(' && !lsub {
		if err := c.listSelectOpts(&o); err != nil {
			return err
		}
		if err := c.dec.SP(); err != nil {
			return err
		}
	}
	// A reference or a pattern that is no valid encoding matches
	// nothing (names.go), as Dovecot's: the LIST answers OK.
	var ne *wire.NameError
	ref, err := c.dec.Mailbox(c.utf8)
	badRef := errors.As(err, &ne)
	if err != nil && !badRef {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	var patterns []string
	pattern := func() error {
		p, err := c.dec.ListMailbox(c.utf8)
		if err == nil {
			patterns = append(patterns, p)
		} else if errors.As(err, &ne) {
			err = nil
		}
		return err
	}
	if b, err = c.dec.Peek(); err != nil {
		return err
	}
	if b == '(' && !lsub {
		o.extended = true
		err = c.dec.List(pattern)
	} else {
		err = pattern()
	}
	if err != nil {
		return err
	}
	if b, err = c.dec.Peek(); err != nil {
		return err
	}
	if b == ' ' && !lsub {
		c.dec.SP()
		kw, err := c.dec.Atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(kw, "RETURN") {
			return &wire.Error{Msg: "expected RETURN"}
		}
		if err := c.dec.SP(); err != nil {
			return err
		}
		if err := c.listReturnOpts(&o); err != nil {
			return err
		}
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	resp := "LIST"
	if lsub {
		resp = "LSUB"
	}
	if badRef || len(patterns) == 0 {
		return c.ok(tag, "", resp+" completed")
	}
	// RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter;
	// RFC 5258 §3 keeps that meaning for the basic syntax only.
	// The root is the reference's first level with its separator
	// ("#news.comp" gives "#news.", RFC 3501 §6.3.8's example), or ""
	// when it has none, as Dovecot (and UW-IMAP) answer.
	if len(patterns) == 1 && patterns[0] == "" && !lsub && !o.extended {
		root := ""
		if i := strings.IndexByte(ref, '.'); i >= 0 {
			root = ref[:i+1]
		}
		c.bw.WriteString(`* LIST (\Noselect) "." `)
		c.enc.Mailbox(root, c.utf8)
		c.bw.WriteString("\r\n")
		return c.ok(tag, "", "LIST completed")
	}
	folders, err := c.user.Folders(c.ctx)
	if err != nil {
		return err
	}
	// RFC 9051 §6.3.9: the reference and the pattern make one name,
	// the reference's text followed by the pattern's (its examples:
	// "#news." and "comp.mail.*" are "#news.comp.mail.*"); nothing is
	// put between them, as Dovecot does: "INBOX" and "*" are "INBOX*".
	for i, p := range patterns {
		patterns[i] = ref + p
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if matchPattern(p, name) {
				return true
			}
		}
		return false
	}
	// LSUB with a pattern ending in "%" lists an unsubscribed parent of
	// a subscribed name the pattern does not reach, \Noselect (RFC 3501
	// §6.3.9: "foo" for "foo/bar"); Dovecot does so only for such a
	// pattern. RECURSIVEMATCH lists it with CHILDINFO (RFC 5258 §3.5).
	// Either way the parent may be no mailbox at all.
	lsubParents := lsub && strings.HasSuffix(patterns[0], "%")
	if lsubParents || (o.recursiveMatch && o.subscribed) {
		folders = withParents(folders)
	}
	// selectedBy reports whether f meets the selection options.
	selectedBy := func(f FolderInfo) bool {
		return (!o.subscribed || f.Subscribed) && (!o.specialUseOnly || f.SpecialUse != "")
	}
	// hasChild reports whether a descendant of f that the pattern does
	// not match meets sel.
	hasChild := func(f FolderInfo, sel func(FolderInfo) bool) bool {
		for _, d := range folders {
			if strings.HasPrefix(d.Name, f.Name+".") && sel(d) && !matches(d.Name) && !mailboxname.HasControl(d.Name) {
				return true
			}
		}
		return false
	}
	type listed struct {
		f          FolderInfo
		childInfo  []string // CHILDINFO (RFC 5258 §3.5)
		lsubParent bool     // LSUB of an unsubscribed parent: \Noselect
	}
	var out []listed
	for _, f := range folders {
		if !matches(f.Name) {
			continue
		}
		if mailboxname.HasControl(f.Name) {
			// Made by another program (names.go): never sent.
			c.log.Warn("LIST: a mailbox whose name holds a control character is not listed", "mailbox", f.Name)
			continue
		}
		if lsub && !f.Subscribed {
			if lsubParents && hasChild(f, func(d FolderInfo) bool { return d.Subscribed }) {
				out = append(out, listed{f: f, lsubParent: true})
			}
			continue
		}
		if f.NonExistent && !lsub && !o.subscribed {
			continue
		}
		var childInfo []string
		if o.recursiveMatch && hasChild(f, selectedBy) {
			// A descendant meeting the selection but not the pattern is
			// announced on its listed ancestor (RFC 5258 §3.5).
			if o.subscribed {
				childInfo = append(childInfo, "SUBSCRIBED")
			}
			if o.specialUseOnly {
				childInfo = append(childInfo, "SPECIAL-USE")
			}
		}
		if !selectedBy(f) && childInfo == nil {
			continue
		}
		out = append(out, listed{f: f, childInfo: childInfo})
	}
	for _, l := range out {
		f := l.f
		var attrs []string
		switch {
		case l.lsubParent:
			// Nothing else: \Noselect here says "not subscribed".
			c.bw.WriteString(`* LSUB (\Noselect) "." `)
			c.enc.Mailbox(f.Name, c.utf8)
			c.bw.WriteString("\r\n")
			continue
		case f.NonExistent && lsub:
		case f.NonExistent:
			attrs = append(attrs, `\NonExistent`) // implies \Noselect
		case f.NoSelect:
			attrs = append(attrs, `\Noselect`)
		}
		switch {
		case f.NonExistent:
		case f.HasChildren:
			attrs = append(attrs, `\HasChildren`)
		default:
			attrs = append(attrs, `\HasNoChildren`)
		}
		if f.Subscribed && (o.subscribed || o.retSubscribed) {
			attrs = append(attrs, `\Subscribed`)
		}
		if f.SpecialUse != "" && !lsub {
			attrs = append(attrs, f.SpecialUse)
		}
		c.bw.WriteString("* " + resp + " (" + strings.Join(attrs, " ") + `) "." `)
		c.enc.Mailbox(f.Name, c.utf8)
		if l.childInfo != nil {
			c.bw.WriteString(` ("CHILDINFO" (`)
			for i, ci := range l.childInfo {
				if i > 0 {
					c.bw.WriteString(" ")
				}
				c.enc.String(ci)
			}
			c.bw.WriteString("))")
		}
		c.bw.WriteString("\r\n")
		if o.retStatus != nil && !f.NoSelect {
			// RFC 5819 §2: STATUS after the LIST of each selectable
			// mailbox; one that vanished meanwhile is left out, and so
			// is one whose status cannot be had for a reason of its
			// own (the server may not read it, or it would need disk
			// space), which would otherwise fail the whole LIST.
			st, err := c.user.Status(c.ctx, f.Name)
			switch {
			case err == nil:
				c.writeStatus(f.Name, o.retStatus, st)
			case errors.Is(err, ErrNoSuchMailbox), errors.Is(err, ErrNotSelectable):
			case errors.Is(err, ErrNoPerm), errors.Is(err, ErrNoSpace):
				c.log.Warn("LIST: no STATUS for a mailbox", "tag", tag, "mailbox", f.Name, "err", err)
			default:
				return err
			}
		}
	}
	return c.ok(tag, "", resp+" completed")
}

// withParents adds to folders every parent of a subscribed name that
// folders lacks, as a name without a mailbox (NonExistent, not
// subscribed): "a" and "a.b" for a subscribed "a.b.c" when neither a
// mailbox nor a subscription has them.
func withParents(folders []FolderInfo) []FolderInfo {
	known := make(map[string]bool, len(folders))
	for _, f := range folders {
		known[f.Name] = true
	}
	n := len(folders)
	for _, f := range folders[:n] {
		if !f.Subscribed {
			continue
		}
		for i := strings.LastIndexByte(f.Name, '.'); i > 0; i = strings.LastIndexByte(f.Name[:i], '.') {
			parent := f.Name[:i]
			if known[parent] {
				continue
			}
			known[parent] = true
			folders = append(folders, FolderInfo{Name: parent, NonExistent: true, NoSelect: true})
		}
	}
	return folders
}

// matchPattern matches a mailbox name against a LIST pattern: '*' is any
// text, '%' any text without the separator; INBOX matches
// case-insensitively.
func matchPattern(pattern, name string) bool {
	if strings.EqualFold(name, "INBOX") && len(pattern) >= 5 && strings.EqualFold(pattern[:5], "INBOX") {
		pattern, name = "INBOX"+pattern[5:], "INBOX"
	}
	return match(pattern, name)
}

func match(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*', '%':
			rest := p[1:]
			for i := 0; i <= len(s); i++ {
				if match(rest, s[i:]) {
					return true
				}
				if i < len(s) && p[0] == '%' && s[i] == '.' {
					return false
				}
			}
			return false
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

func init() {
	register("LIST", authed, false, cmdList)
	register("LSUB", authed, false, cmdLsub)
}
