package imap

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// FETCH and UID FETCH — RFC 9051 §6.4.5, RFC 3501 §6.4.5 (RFC822.*),
// RFC 3516 (BINARY). State: selected. UID FETCH always returns UID.
// A body section fetched without .PEEK sets \Seen (not in a read-only
// mailbox) and returns the new FLAGS. A message expunged by someone else
// meanwhile is left out and the command ends OK [EXPUNGEISSUED] (RFC
// 5530; RFC 2180 §4.1.2 allows either).
//
// RFC 7162: MODSEQ (§3.1.4.1), and the modifiers CHANGEDSINCE (§3.1.4.1:
// only the messages changed since, MODSEQ implied) and, with QRESYNC
// enabled and UID FETCH only, VANISHED (§3.2.6: the UIDs of the set
// expunged since, before the FETCHes). With CONDSTORE enabled, FLAGS
// brings MODSEQ along.
func cmdFetch(c *conn, tag string, uid bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	set, err := c.dec.SeqSet()
	if err != nil {
		return err
	}
	uids, err := c.uids(set, uid)
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
	mods, err := c.fetchModifiers(uid)
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	if hasItem(items, "MODSEQ") || mods.changedSince != nil {
		c.enableCondstore()
	}
	if c.condstore && (hasItem(items, "FLAGS") || mods.changedSince != nil) && !hasItem(items, "MODSEQ") {
		items = append(items, wire.FetchItem{Name: "MODSEQ"})
	}
	var current flagSnapshot
	if mods.changedSince != nil {
		since := *mods.changedSince
		if mods.vanished {
			if set.IsSaved() {
				set = uidSeqSet(uids)
			}
			c.vanishedEarlier(clipRanges(s.mb.ExpungedSince(since), set, max(s.mb.UIDNext(), 2)-1, s.view))
		}
		current = s.mb.ChangedSince(since)
		uids = slices.DeleteFunc(uids, func(u uint32) bool {
			m, ok := current.get(u)
			return !ok || m.ModSeq <= since
		})
	}
	// needParts: a body item needs the structure (a part, the header,
	// the text); BODY[], RFC822 and BINARY[] need the size only.
	needBody, needParts, needStruct, needStat, setSeen := false, false, false, false, false
	for _, it := range items {
		switch {
		case it.Name == "EMAILID": // from what the backend holds, no I/O
		case it.Name == "THREADID":
			needStruct = true // the thread root is in the structure
		case it.Name == "UID", it.Name == "FLAGS", it.Name == "MODSEQ":
		case it.Name == "INTERNALDATE", it.Name == "RFC822.SIZE":
			needStat = true
		case it.Name == "ENVELOPE", it.Name == "BODYSTRUCTURE", it.Name == "BODY" && !it.Sectioned:
			needStruct = true
		default:
			needBody = true
			needParts = needParts || !wholeMessage(it)
			if (it.Name == "BODY" && it.Sectioned || it.Name == "BINARY" || it.Name == "RFC822" || it.Name == "RFC822.TEXT") && !it.Peek {
				setSeen = true
			}
		}
	}
	if s.readOnly {
		setSeen = false
	}
	flags := map[uint32]MessageInfo{}
	if setSeen {
		msgs, err := s.mb.Store(c.ctx, uids, flagop.Add, []string{`\Seen`})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			flags[m.UID] = m
		}
	}
	issued, unknownCTE := false, false
	release := func() {}
	defer func() { release() }()
	for _, u := range uids {
		seq := s.view.Seq(u)
		if seq == 0 {
			continue
		}
		var info MessageInfo
		var body Body
		var st *message.Structure
		// What a structure's parse holds is taken from the response
		// memory budget until this message's response is written
		// (budget.go); the deferred call gives it back on a panic too.
		// A streamed body holds one buffer, below smallResponse.
		release = func() {}
		if needStruct || needParts {
			n, err := c.readCost(u, true)
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
			body, info, err = s.mb.OpenBody(c.ctx, u, needStruct || needParts)
			st = body.Structure
		case needStruct:
			st, info, err = s.mb.Structure(c.ctx, u)
		case needStat:
			info, err = s.mb.Stat(c.ctx, u)
		}
		if err != nil {
			if gone(err, release, &issued) {
				continue
			}
			return err
		}
		if body.File != nil {
			// The parse, if any, is over: what a streamed body holds
			// is its buffer, and a header or a quoted-printable part
			// read into memory takes its own share (reserving it on
			// top of this one could wait for this session itself).
			release()
			release = func() { body.File.Close() }
		}
		if m, ok := flags[u]; ok {
			info.Flags, info.ModSeq = m.Flags, m.ModSeq
		} else if !needBody && !needStruct && !needStat || info.Flags == nil {
			if current == nil {
				current = currentFlags(s.mb)
			}
			m, ok := current.get(u)
			if !ok {
				// Expunged by someone else meanwhile: "FLAGS ()" would
				// tell the client its flags were cleared.
				release()
				issued = true
				continue
			}
			info.Flags, info.ModSeq = m.Flags, m.ModSeq
		}
		ids, err := c.objectIDs(items, u, st)
		if err != nil {
			if gone(err, release, &issued) {
				continue
			}
			return err
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
			if (it.Name == "BINARY" || it.Name == "BINARY.SIZE") && len(it.Section.Path) > 0 && st.UnknownCTE(it.Section.Path) {
				// Left out of the response; the command ends NO
				// [UNKNOWN-CTE] (RFC 3516 §4.3), as Dovecot's does.
				unknownCTE = true
				continue
			}
			sep()
			if id, ok := ids[it.Name]; ok {
				c.writeObjectID(it.Name, id)
				continue
			}
			if err := c.fetchItem(it, u, info, &body, st); err != nil {
				release()
				if errors.Is(err, message.ErrShortFile) {
					// The literal is announced and cannot be finished
					// truthfully: the session ends, as Dovecot's does
					// ("got too little data"); the client keeps no
					// half body, and the next FETCH counts the file
					// again (OpenBody checks its size).
					c.log.Warn("message file shorter than announced (changed underneath); closing the connection", "uid", u, "err", err)
					return errWrap(err)
				}
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
			if !hasItem(items, "MODSEQ") {
				c.modseqIfEnabled(info.ModSeq)
			}
		}
		if (uid || setSeen) && !wroteUID {
			sep()
			fmt.Fprintf(c.bw, "UID %d", u)
		}
		c.bw.WriteString(")\r\n")
		// What is still buffered is at most the writer's size.
		st = nil
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

// gone handles the error of a read for one message of a FETCH, after
// releasing what the message held: true when the message was expunged
// meanwhile, to be left out (the command ends OK [EXPUNGEISSUED]); false
// for any other error, which ends the command.
func gone(err error, release func(), issued *bool) bool {
	release()
	if errors.Is(err, ErrNoSuchMessageErr) {
		*issued = true
		return true
	}
	return false
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

// get returns the flags and modseq of uid, false when the mailbox no
// longer has it.
func (fs flagSnapshot) get(uid uint32) (MessageInfo, bool) {
	i, ok := slices.BinarySearchFunc(fs, uid, func(m MessageInfo, u uint32) int { return cmp.Compare(m.UID, u) })
	if !ok {
		return MessageInfo{}, false
	}
	return fs[i], true
}

// fetchMods are the fetch modifiers of RFC 7162 §3.1.4.1, §3.2.6.
type fetchMods struct {
	changedSince *uint64
	vanished     bool
}

// fetchModifiers reads " (" fetch-modifier *(SP fetch-modifier) ")" if
// there. VANISHED needs UID FETCH, QRESYNC enabled and CHANGEDSINCE
// (RFC 7162 §3.2.6): BAD otherwise.
func (c *conn) fetchModifiers(uid bool) (fetchMods, error) {
	var mods fetchMods
	if b, err := c.dec.Peek(); err != nil || b != ' ' {
		return mods, err
	}
	if err := c.dec.SP(); err != nil {
		return mods, err
	}
	err := c.dec.List(func() error {
		name, err := c.dec.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if mods.changedSince != nil {
				return &wire.Error{Msg: "CHANGEDSINCE given twice"}
			}
			if err := c.dec.SP(); err != nil {
				return err
			}
			n, err := c.modSeqValue()
			mods.changedSince = &n
			return err
		case "VANISHED":
			switch {
			case !c.qresync:
				return &wire.Error{Msg: "VANISHED needs ENABLE QRESYNC"}
			case !uid:
				return &wire.Error{Msg: "VANISHED is for UID FETCH only"}
			}
			mods.vanished = true
			return nil
		}
		return &wire.Error{Msg: "unknown FETCH modifier " + name}
	})
	if err == nil && mods.vanished && mods.changedSince == nil {
		err = &wire.Error{Msg: "VANISHED needs CHANGEDSINCE"}
	}
	return mods, err
}

// wholeMessage reports whether a body item is the whole message, which
// is streamed without the structure.
func wholeMessage(it wire.FetchItem) bool {
	switch it.Name {
	case "RFC822":
		return true
	case "BODY":
		return len(it.Section.Path) == 0 && it.Section.Specifier == ""
	case "BINARY", "BINARY.SIZE":
		return len(it.Section.Path) == 0
	}
	return false
}

// fetchBuffers are the buffers FETCH streams message files through:
// two per body item at most (BINARY of base64 reads and decodes).
var fetchBuffers = sync.Pool{New: func() any { b := make([]byte, fetchBufferSize); return &b }}

// fetchBufferSize: a file is read in chunks of this size.
const fetchBufferSize = 16 << 10

func (c *conn) fetchItem(it wire.FetchItem, uid uint32, info MessageInfo, body *Body, st *message.Structure) error {
	e := c.enc
	whole := message.Span{Size: body.Size}
	sec := message.Section{Path: it.Section.Path, Specifier: it.Section.Specifier, Fields: it.Section.Fields}
	switch it.Name {
	case "MODSEQ":
		c.modseq(info.ModSeq)
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
		sp, ok := whole, true
		if !wholeMessage(it) {
			sp, ok = st.Span(sec)
		}
		if !ok {
			sp = message.Span{}
		}
		spec := strings.ToUpper(sec.Specifier)
		if ok && (spec == message.SpecHeaderFields || spec == message.SpecHeaderNot) {
			// The header is filtered in memory, whatever its size:
			// the budget holds it.
			release, err := c.reserve(sp.Size)
			if err != nil {
				return err
			}
			defer release()
			h, err := c.readSpan(body.File, sp)
			if err != nil {
				return err
			}
			data := message.HeaderFields(h, sec.Fields, spec == message.SpecHeaderNot)
			c.bw.WriteString("BODY[" + it.Section.String() + "]")
			c.partial(it.Partial, data, false)
			return nil
		}
		c.bw.WriteString("BODY[" + it.Section.String() + "]")
		return c.partialSpan(it.Partial, body.File, sp)
	case "RFC822":
		c.bw.WriteString("RFC822")
		return c.partialSpan(nil, body.File, whole)
	case "RFC822.HEADER":
		sp, _ := st.Span(message.Section{Specifier: "HEADER"})
		c.bw.WriteString("RFC822.HEADER")
		return c.partialSpan(nil, body.File, sp)
	case "RFC822.TEXT":
		sp, _ := st.Span(message.Section{Specifier: "TEXT"})
		c.bw.WriteString("RFC822.TEXT")
		return c.partialSpan(nil, body.File, sp)
	case "BINARY":
		// UnknownCTE was asked before; a part that does not exist is
		// empty, as in BODY[].
		c.bw.WriteString("BINARY[" + it.Section.String() + "]")
		return c.binary(it, body, st, false)
	case "BINARY.SIZE":
		fmt.Fprintf(c.bw, "BINARY.SIZE[%s] ", it.Section.String())
		return c.binary(it, body, st, true)
	default:
		return &wire.Error{Msg: "unsupported FETCH item " + it.Name}
	}
	return nil
}

// partialSpan writes " literal" of span sp of the file f, or
// "<origin> literal" of a partial fetch of it, streamed: see partial.
func (c *conn) partialSpan(p *wire.Partial, f io.ReaderAt, sp message.Span) error {
	off, n := int64(0), sp.Size
	if p != nil {
		off = min(int64(p.Offset), sp.Size)
		n = min(off+int64(p.Count), sp.Size) - off
		c.bw.WriteString("<" + strconv.FormatUint(uint64(p.Offset), 10) + ">")
	}
	c.bw.WriteByte(' ')
	buf := fetchBuffers.Get().(*[]byte)
	defer fetchBuffers.Put(buf)
	r := message.NewCRLFReader(f, sp, off, n, *buf)
	return c.streamLiteral(nulReplacer{r}, n, false)
}

// streamLiteral writes a literal (literal8 with binary) of the n bytes
// of r. The write deadline is set as a flush sets it: the literal
// flushes the writer as it goes.
func (c *conn) streamLiteral(r io.Reader, n int64, binary bool) error {
	c.nc.SetWriteDeadline(c.deadline(writeTimeout))
	if err := c.enc.LiteralFrom(r, n, binary).Err(); err != nil {
		return errWrap(err)
	}
	return nil
}

// nulReplacer sends a NUL as 0x80 in a plain literal, as
// wire.Encoder.Literal does.
type nulReplacer struct{ r io.Reader }

func (n nulReplacer) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	for i := bytes.IndexByte(p[:k], 0); i >= 0; i = bytes.IndexByte(p[:k], 0) {
		p[i] = 0x80
	}
	return k, err
}

// readSpan reads the converted bytes of sp into memory; the caller has
// taken them from the response memory budget.
func (c *conn) readSpan(f io.ReaderAt, sp message.Span) ([]byte, error) {
	buf := fetchBuffers.Get().(*[]byte)
	defer fetchBuffers.Put(buf)
	out := make([]byte, sp.Size)
	if _, err := io.ReadFull(message.NewCRLFReader(f, sp, 0, sp.Size, *buf), out); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = message.ErrShortFile
		}
		return nil, err
	}
	return out, nil
}

// binary writes BINARY[...] data (" literal", "<origin> literal") or,
// with size, BINARY.SIZE's number (RFC 3516). Data of a base64 part is
// decoded while it streams, after a first pass that counts it and looks
// for NUL; quoted-printable is decoded in memory (taken from the budget).
// The literal is a literal8 when the data holds a NUL (RFC 9051 §7.5.2).
func (c *conn) binary(it wire.FetchItem, body *Body, st *message.Structure, size bool) error {
	sp, enc := message.Span{Size: body.Size}, ""
	if len(it.Section.Path) > 0 {
		var err error
		if sp, enc, err = st.BinarySpan(it.Section.Path); err != nil {
			sp, enc = message.Span{}, ""
		}
	}
	buf := fetchBuffers.Get().(*[]byte)
	defer fetchBuffers.Put(buf)
	if enc == "quoted-printable" {
		// The encoded part and its decoding, at most as long.
		release, err := c.reserve(2 * sp.Size)
		if err != nil {
			return err
		}
		defer release()
		raw, err := c.readSpan(body.File, sp)
		if err != nil {
			return err
		}
		data, _ := message.DecodeCTE(enc, raw)
		if size {
			fmt.Fprintf(c.bw, "%d", len(data))
			return nil
		}
		c.partial(it.Partial, data, bytes.IndexByte(data, 0) >= 0)
		return nil
	}
	var buf2 *[]byte
	open := func() io.Reader {
		r := io.Reader(message.NewCRLFReader(body.File, sp, 0, sp.Size, *buf))
		if enc == "base64" {
			if buf2 == nil {
				buf2 = fetchBuffers.Get().(*[]byte)
			}
			r = message.NewBase64Reader(r, *buf2)
		}
		return r
	}
	defer func() {
		if buf2 != nil {
			fetchBuffers.Put(buf2)
		}
	}()
	n, hasNUL := sp.Size, false
	if enc != "" || !size {
		var err error
		if n, hasNUL, err = scanNUL(open(), size); err != nil {
			return err
		}
	}
	if size {
		fmt.Fprintf(c.bw, "%d", n)
		return nil
	}
	off, count := int64(0), n
	if p := it.Partial; p != nil {
		off = min(int64(p.Offset), n)
		count = min(off+int64(p.Count), n) - off
		c.bw.WriteString("<" + strconv.FormatUint(uint64(p.Offset), 10) + ">")
	}
	c.bw.WriteByte(' ')
	r := open()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return shortFile(err)
	}
	if hasNUL {
		return c.streamLiteral(r, count, true)
	}
	return c.streamLiteral(r, count, false)
}

// scanNUL reads r to its end and returns its length and whether it
// holds a NUL (not looked for with countOnly).
func scanNUL(r io.Reader, countOnly bool) (n int64, nul bool, err error) {
	buf := fetchBuffers.Get().(*[]byte)
	defer fetchBuffers.Put(buf)
	for {
		k, err := r.Read(*buf)
		n += int64(k)
		if !nul && !countOnly && bytes.IndexByte((*buf)[:k], 0) >= 0 {
			nul = true
		}
		if err == io.EOF {
			return n, nul, nil
		}
		if err != nil {
			return n, nul, shortFile(err)
		}
	}
}

func shortFile(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return message.ErrShortFile
	}
	return err
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
