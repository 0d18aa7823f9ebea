package imap

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// FETCH and UID FETCH — RFC 9051 §6.4.5, RFC 3501 §6.4.5 (RFC822.*),
// RFC 3516 (BINARY). State: selected. UID FETCH always returns UID.
// A body section fetched without .PEEK sets \Seen (not in a read-only
// mailbox) and returns the new FLAGS. A message expunged by someone else
// meanwhile is left out and the command ends OK [EXPUNGEISSUED] (RFC
// 5530; RFC 2180 §4.1.2 allows either).
func cmdFetch(c *conn, tag string, uid bool) error {
	uids, err := c.setArg(uid)
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	items, err := c.dec.FetchItems()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	needBody, needStruct, needStat, setSeen := false, false, false, false
	for _, it := range items {
		switch {
		case it.Name == "UID", it.Name == "FLAGS", it.Name == "MODSEQ":
		case it.Name == "INTERNALDATE", it.Name == "RFC822.SIZE":
			needStat = true
		case it.Name == "ENVELOPE", it.Name == "BODYSTRUCTURE", it.Name == "BODY" && !it.Sectioned:
			needStruct = true
		default:
			needBody = true
			if (it.Name == "BODY" && it.Sectioned || it.Name == "BINARY" || it.Name == "RFC822" || it.Name == "RFC822.TEXT") && !it.Peek {
				setSeen = true
			}
		}
	}
	if s.readOnly {
		setSeen = false
	}
	flags := map[uint32][]string{}
	if setSeen {
		msgs, err := s.mb.Store(c.ctx, uids, FlagsAdd, []string{`\Seen`})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			flags[m.UID] = m.Flags
		}
	}
	var current flagSnapshot
	issued, unknownCTE := false, false
	release := func() {}
	defer func() { release() }()
	for _, u := range uids {
		seq := s.view.Seq(u)
		if seq == 0 {
			continue
		}
		var info MessageInfo
		var raw []byte
		var msg *message.Message
		var st *message.Structure
		// The bytes read are taken from the response memory budget
		// until this message's response is written (budget.go); the
		// deferred call gives them back on a panic too.
		release = func() {}
		if needBody || needStruct {
			n, err := c.readCost(u, !needBody)
			if errors.Is(err, ErrNoSuchMessageErr) {
				issued = true
				continue
			}
			if err != nil {
				return err
			}
			if release, err = c.reserve(n); err != nil {
				return err
			}
		}
		switch {
		case needBody:
			raw, info, err = s.mb.Open(c.ctx, u)
		case needStruct:
			st, info, err = s.mb.Structure(c.ctx, u)
		case needStat:
			info, err = s.mb.Stat(c.ctx, u)
		}
		if errors.Is(err, ErrNoSuchMessageErr) {
			release()
			issued = true
			continue
		}
		if err != nil {
			release()
			return err
		}
		if f, ok := flags[u]; ok {
			info.Flags = f
		} else if !needBody && !needStruct && !needStat || info.Flags == nil {
			if current == nil {
				current = currentFlags(s.mb)
			}
			f, ok := current.get(u)
			if !ok {
				// Expunged by someone else meanwhile: "FLAGS ()" would
				// tell the client its flags were cleared.
				release()
				issued = true
				continue
			}
			info.Flags = f
		}
		if raw != nil {
			msg = message.Parse(raw)
			st = msg.Structure()
		}
		if setSeen || hasItem(items, "FLAGS") {
			c.announce(info.Flags)
		}
		fmt.Fprintf(c.bw, "* %d FETCH (", seq)
		first := true
		sep := func() {
			if !first {
				c.bw.WriteByte(' ')
			}
			first = false
		}
		wroteUID := false
		for _, it := range items {
			if (it.Name == "BINARY" || it.Name == "BINARY.SIZE") && msg.UnknownCTE(it.Section.Path) {
				// Left out of the response; the command ends NO
				// [UNKNOWN-CTE] (RFC 3516 §4.3), as Dovecot's does.
				unknownCTE = true
				continue
			}
			sep()
			if err := c.fetchItem(it, u, info, msg, st); err != nil {
				release()
				return err
			}
			wroteUID = wroteUID || it.Name == "UID"
		}
		if first {
			// Every item was left out: "FETCH ()" is not allowed
			// (RFC 9051 §7.5.2: msg-att has one item at least).
			sep()
			fmt.Fprintf(c.bw, "UID %d", u)
			wroteUID = true
		}
		if setSeen && !hasItem(items, "FLAGS") {
			sep()
			c.bw.WriteString("FLAGS ")
			c.flags(u, info.Flags)
		}
		if (uid || setSeen) && !wroteUID {
			sep()
			fmt.Fprintf(c.bw, "UID %d", u)
		}
		c.bw.WriteString(")\r\n")
		// What is still buffered is at most the writer's size.
		raw, msg, st = nil, nil, nil
		release()
		if c.bw.Buffered() > 64<<10 {
			if err := c.flush(); err != nil {
				return errWrap(err)
			}
		}
	}
	if err := c.updates(uid); err != nil {
		return err
	}
	if unknownCTE {
		return no("UNKNOWN-CTE", "Unknown content transfer encoding")
	}
	if issued {
		return c.ok(tag, "EXPUNGEISSUED", "Some messages were expunged meanwhile")
	}
	return c.ok(tag, "", "FETCH completed")
}

func hasItem(items []wire.FetchItem, name string) bool {
	for _, it := range items {
		if it.Name == name {
			return true
		}
	}
	return false
}

// flagSnapshot is the flags of every message at one moment, in UID
// order (as Mailbox.Messages returns them): looked up by binary search,
// without building a map of the whole mailbox per command.
type flagSnapshot []MessageInfo

func currentFlags(mb Mailbox) flagSnapshot { return mb.Messages() }

// get returns the flags of uid, false when the mailbox no longer has it.
func (fs flagSnapshot) get(uid uint32) ([]string, bool) {
	i, ok := slices.BinarySearchFunc(fs, uid, func(m MessageInfo, u uint32) int { return cmp.Compare(m.UID, u) })
	if !ok {
		return nil, false
	}
	return fs[i].Flags, true
}

func (c *conn) fetchItem(it wire.FetchItem, uid uint32, info MessageInfo, msg *message.Message, st *message.Structure) error {
	e := c.enc
	switch it.Name {
	case "UID":
		fmt.Fprintf(c.bw, "UID %d", uid)
	case "FLAGS":
		c.bw.WriteString("FLAGS ")
		c.flags(uid, info.Flags)
	case "INTERNALDATE":
		c.bw.WriteString("INTERNALDATE ")
		e.DateTime(info.InternalDate)
	case "RFC822.SIZE":
		fmt.Fprintf(c.bw, "RFC822.SIZE %d", info.Size)
	case "ENVELOPE":
		c.bw.WriteString("ENVELOPE ")
		c.envelope(st.Envelope)
	case "BODYSTRUCTURE":
		c.bw.WriteString("BODYSTRUCTURE ")
		c.bodyStructure(st.Root, true)
	case "BODY":
		if !it.Sectioned {
			c.bw.WriteString("BODY ")
			c.bodyStructure(st.Root, false)
			return nil
		}
		data, _ := msg.Section(message.Section{Path: it.Section.Path, Specifier: it.Section.Specifier, Fields: it.Section.Fields})
		c.bw.WriteString("BODY[" + it.Section.String() + "]")
		c.partial(it.Partial, data, false)
	case "RFC822":
		c.bw.WriteString("RFC822 ")
		e.Literal(msg.Raw())
	case "RFC822.HEADER":
		data, _ := msg.Section(message.Section{Specifier: "HEADER"})
		c.bw.WriteString("RFC822.HEADER ")
		e.Literal(data)
	case "RFC822.TEXT":
		data, _ := msg.Section(message.Section{Specifier: "TEXT"})
		c.bw.WriteString("RFC822.TEXT ")
		e.Literal(data)
	case "BINARY":
		// UnknownCTE was asked before; a part that does not exist is
		// empty, as in BODY[].
		data, _ := msg.Binary(it.Section.Path)
		c.bw.WriteString("BINARY[" + it.Section.String() + "]")
		c.partial(it.Partial, data, bytes.IndexByte(data, 0) >= 0)
	case "BINARY.SIZE":
		n, _ := msg.BinarySize(it.Section.Path)
		fmt.Fprintf(c.bw, "BINARY.SIZE[%s] %d", it.Section.String(), n)
	default:
		return &wire.Error{Msg: "unsupported FETCH item " + it.Name}
	}
	return nil
}

// partial writes " <origin> literal" for a partial fetch (RFC 9051
// §6.4.5: "<" origin ">" is returned, the data cut to it). With binary
// the literal is a literal8: BINARY's data when the section holds a NUL
// (RFC 9051 §7.5.2: a string otherwise, so that the client knows it has
// none without scanning). A NUL in a plain literal is sent as 0x80
// (wire.Encoder.Literal).
func (c *conn) partial(p *wire.Partial, data []byte, binary bool) {
	if p != nil {
		off := min(int(p.Offset), len(data))
		end := min(off+int(p.Count), len(data))
		data = data[off:end]
		c.bw.WriteString("<" + strconv.FormatUint(uint64(p.Offset), 10) + ">")
	}
	c.bw.WriteByte(' ')
	if binary {
		c.enc.Literal8(data)
		return
	}
	c.enc.Literal(data)
}

// envelope writes an ENVELOPE (RFC 9051 §7.5.2).
func (c *conn) envelope(env message.Envelope) {
	e := c.enc
	c.bw.WriteByte('(')
	e.NString(env.Date, env.Date == "")
	c.bw.WriteByte(' ')
	e.NString(env.Subject, env.Subject == "")
	for _, list := range [][]message.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		c.bw.WriteByte(' ')
		c.addresses(list)
	}
	c.bw.WriteByte(' ')
	e.NString(env.InReplyTo, env.InReplyTo == "")
	c.bw.WriteByte(' ')
	e.NString(env.MessageID, env.MessageID == "")
	c.bw.WriteByte(')')
}

func (c *conn) addresses(list []message.Address) {
	if len(list) == 0 {
		c.enc.NIL()
		return
	}
	e := c.enc
	c.bw.WriteByte('(')
	for _, a := range list {
		c.bw.WriteByte('(')
		switch {
		case a.GroupEnd:
			c.bw.WriteString("NIL NIL NIL NIL")
		case a.GroupStart:
			c.bw.WriteString("NIL NIL ")
			e.NString(a.Mailbox, false)
			c.bw.WriteString(" NIL")
		default:
			e.NString(a.Name, a.Name == "")
			c.bw.WriteByte(' ')
			e.NString(a.Route, a.Route == "")
			c.bw.WriteByte(' ')
			e.NString(a.Mailbox, a.Mailbox == "")
			c.bw.WriteByte(' ')
			e.NString(a.Host, a.Host == "")
		}
		c.bw.WriteByte(')')
	}
	c.bw.WriteByte(')')
}

// bodyStructure writes BODYSTRUCTURE (ext) or BODY (RFC 9051 §7.5.2).
func (c *conn) bodyStructure(p *message.Part, ext bool) {
	e := c.enc
	c.bw.WriteByte('(')
	if len(p.Children) > 0 {
		for _, ch := range p.Children {
			c.bodyStructure(ch, ext)
		}
		c.bw.WriteByte(' ')
		e.String(strings.ToUpper(p.Subtype))
		if ext {
			c.bw.WriteByte(' ')
			c.params(p.Params)
			c.bw.WriteByte(' ')
			c.dispositionEtc(p)
		}
		c.bw.WriteByte(')')
		return
	}
	e.String(strings.ToUpper(p.Type))
	c.bw.WriteByte(' ')
	e.String(strings.ToUpper(p.Subtype))
	c.bw.WriteByte(' ')
	c.params(p.Params)
	c.bw.WriteByte(' ')
	e.NString(p.ID, p.ID == "")
	c.bw.WriteByte(' ')
	e.NString(p.Description, p.Description == "")
	c.bw.WriteByte(' ')
	e.String(strings.ToUpper(p.Encoding))
	fmt.Fprintf(c.bw, " %d", p.Size)
	isMessage := p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && p.Embedded != nil
	if isMessage {
		c.bw.WriteByte(' ')
		c.envelope(p.Envelope())
		c.bw.WriteByte(' ')
		c.bodyStructure(p.Embedded, ext)
		fmt.Fprintf(c.bw, " %d", p.Lines)
	} else if p.Type == "text" {
		fmt.Fprintf(c.bw, " %d", p.Lines)
	}
	if ext {
		c.bw.WriteByte(' ')
		e.NString(p.MD5, p.MD5 == "")
		c.bw.WriteByte(' ')
		c.dispositionEtc(p)
	}
	c.bw.WriteByte(')')
}

func (c *conn) params(ps []message.Param) {
	if len(ps) == 0 {
		c.enc.NIL()
		return
	}
	c.bw.WriteByte('(')
	for i, p := range ps {
		if i > 0 {
			c.bw.WriteByte(' ')
		}
		c.enc.String(strings.ToUpper(p.Name))
		c.bw.WriteByte(' ')
		c.enc.String(p.Value)
	}
	c.bw.WriteByte(')')
}

// dispositionEtc writes body-fld-dsp SP body-fld-lang SP body-fld-loc.
func (c *conn) dispositionEtc(p *message.Part) {
	e := c.enc
	if p.Disposition == "" {
		e.NIL()
	} else {
		c.bw.WriteByte('(')
		e.String(strings.ToUpper(p.Disposition))
		c.bw.WriteByte(' ')
		c.params(p.DispositionParams)
		c.bw.WriteByte(')')
	}
	c.bw.WriteByte(' ')
	switch len(p.Language) {
	case 0:
		e.NIL()
	case 1:
		e.String(p.Language[0])
	default:
		c.bw.WriteByte('(')
		for i, l := range p.Language {
			if i > 0 {
				c.bw.WriteByte(' ')
			}
			e.String(l)
		}
		c.bw.WriteByte(')')
	}
	c.bw.WriteByte(' ')
	e.NString(p.Location, p.Location == "")
}

func init() { register("FETCH", selected_, true, cmdFetch) }
