package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// walkCommand reads one command the way a server would: tag, command
// name, then the arguments of the commands it knows, then whatever
// remains, guessing each argument's type from its first byte.
func walkCommand(d *Decoder) error {
	if _, err := d.Tag(); err != nil {
		return err
	}
	if err := d.SP(); err != nil {
		return err
	}
	name, err := d.Atom()
	if err != nil {
		return err
	}
	name = strings.ToUpper(name)
	if name == "UID" {
		if err := d.SP(); err != nil {
			return err
		}
		if name, err = d.Atom(); err != nil {
			return err
		}
		name = strings.ToUpper(name)
	}
	utf8mode := len(name)%2 == 0
	sp := func(fs ...func() error) error {
		for _, f := range fs {
			if err := d.SP(); err != nil {
				return err
			}
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	// A name that is no valid encoding is answered NO after the whole
	// command is read: the walk goes on.
	validName := func(err error) error {
		var ne *NameError
		if errors.As(err, &ne) {
			return nil
		}
		return err
	}
	mailbox := func() error { _, err := d.Mailbox(utf8mode); return validName(err) }
	seq := func() error { _, err := d.SeqSet(); return err }
	switch name {
	case "FETCH":
		err = sp(seq, func() error { _, err := d.FetchItems(); return err })
	case "STORE":
		err = sp(seq, func() error { _, err := d.StoreAction(); return err })
	case "SEARCH":
		err = sp(func() error { _, err := d.Search(utf8mode); return err })
	case "STATUS":
		err = sp(mailbox, func() error { _, err := d.StatusItems(); return err })
	case "LIST":
		err = sp(mailbox, func() error { _, err := d.ListMailbox(utf8mode); return validName(err) })
	case "SELECT", "EXAMINE", "CREATE", "DELETE":
		err = sp(mailbox)
	case "COPY", "MOVE":
		err = sp(seq, mailbox)
	case "LOGIN":
		err = sp(func() error { _, err := d.AString(); return err },
			func() error { _, err := d.AString(); return err })
	case "APPEND":
		err = sp(mailbox)
		for err == nil {
			var c byte
			if c, err = d.Peek(); err != nil || c != ' ' {
				break
			}
			d.SP()
			if c, err = d.Peek(); err != nil {
				break
			}
			switch c {
			case '(':
				_, err = d.FlagList()
			case '"':
				_, err = d.DateTime()
			default:
				var r *LiteralReader
				if r, _, err = d.Literal(0); err == nil {
					_, err = io.Copy(io.Discard, r)
				}
			}
		}
	case "IDLE":
		if err = d.CRLF(); err == nil {
			_, err = d.Line()
		}
		return err
	}
	if err != nil {
		return err
	}
	return walkRest(d)
}

// walkRest reads the arguments left on the line by type guessing.
func walkRest(d *Decoder) error {
	var item func() error
	item = func() error {
		c, err := d.Peek()
		if err != nil {
			return err
		}
		switch {
		case c == '(':
			return d.List(item)
		case c == '"' || c == '{':
			_, _, err := d.NString()
			return err
		case c == '~':
			r, _, err := d.Literal(0)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			return err
		case c == '\\':
			_, err := d.Flag()
			return err
		case '0' <= c && c <= '9' || c == '*' || c == '$':
			_, err := d.SeqSet()
			return err
		}
		_, err = d.AString()
		return err
	}
	for {
		c, err := d.Peek()
		if err != nil {
			return err
		}
		switch c {
		case '\r':
			return d.CRLF()
		case ' ':
			err = d.SP()
		default:
			err = item()
		}
		if err != nil {
			return err
		}
	}
}

// fuzzLimits are small so that the fuzzer reaches every limit.
func fuzzLimits(b byte) Limits {
	return Limits{
		MaxLine:               256,
		MaxLiteral:            512,
		MaxString:             64,
		MaxDepth:              4,
		MaxLiteralsPerCommand: 3,
		NonSyncMax:            int64(b%3) - 1, // refuse all, LITERAL+, or 1 byte
	}
}

// walkSession decodes commands until the input ends, recovering from
// errors as the server does. It fails if the decoder stops making
// progress or breaks its recovery contract.
func walkSession(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	br := bufio.NewReaderSize(bytes.NewReader(data[1:]), 16)
	d := NewDecoder(br, func(n int64) error {
		if n > 100 {
			return &Error{Code: CodeTooBig, Msg: "refused"}
		}
		return nil
	}, fuzzLimits(data[0]))
	for i := 0; ; i++ {
		if i > len(data)+1 {
			t.Fatalf("no progress after %d commands", i)
		}
		err := walkCommand(d)
		if err == nil {
			if d.inLine {
				t.Fatal("command read but decoder still in line")
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			return // io.EOF or io.ErrUnexpectedEOF
		}
		if e.Msg == "" {
			t.Fatalf("error without a message: %#v", e)
		}
		if err := d.Discard(); err != nil {
			if err != ErrUnrecoverable && err != io.ErrUnexpectedEOF && err != io.EOF {
				t.Fatalf("Discard: %v", err)
			}
			return
		}
		if d.inLine || d.skip != 0 || d.lit != nil {
			t.Fatal("Discard left the decoder mid-command")
		}
	}
}

// seedCommands returns the command lines of testdata/commands.txt: one
// seed per paragraph, "\n" turned into CRLF.
func seedCommands(f *testing.F) [][]byte {
	b, err := os.ReadFile("testdata/commands.txt")
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for para := range strings.SplitSeq(string(b), "\n\n") {
		if strings.HasPrefix(para, "#") || strings.TrimSpace(para) == "" {
			continue
		}
		para = strings.TrimSuffix(para, "\n") + "\n"
		seeds = append(seeds, []byte(strings.ReplaceAll(para, "\n", "\r\n")))
	}
	return seeds
}

func FuzzDecodeCommand(f *testing.F) {
	for i, s := range seedCommands(f) {
		f.Add(append([]byte{byte(i)}, s...))
	}
	f.Fuzz(walkSession)
}

func TestWalkSeeds(t *testing.T) {
	b, err := os.ReadFile("testdata/commands.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Every seed parses without error with default limits.
	for para := range strings.SplitSeq(string(b), "\n\n") {
		if strings.HasPrefix(para, "#") || strings.TrimSpace(para) == "" {
			continue
		}
		in := strings.ReplaceAll(strings.TrimSuffix(para, "\n")+"\n", "\n", "\r\n")
		d := NewDecoder(bufio.NewReader(strings.NewReader(in)), func(int64) error { return nil }, Limits{})
		for {
			err := walkCommand(d)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("seed %q: %v", in, err)
				break
			}
		}
	}
}

func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:*", "*", "$", "1,3:5,*", "4294967295", "0", "2:1,7,5:6", "1:4294967295,*:3"} {
		f.Add(s, uint32(10))
	}
	f.Fuzz(func(t *testing.T, s string, max uint32) {
		set, err := ParseSeqSet(s)
		if err != nil {
			return
		}
		str := set.String()
		again, err := ParseSeqSet(str)
		if err != nil || again.String() != str {
			t.Fatalf("String of %q = %q does not reparse: %v", s, str, err)
		}
		if set.IsSaved() {
			return
		}
		r := set.Resolve(max)
		for i, rg := range r {
			if rg.Start == 0 || rg.Start > rg.Stop {
				t.Fatalf("Resolve(%q, %d) = %v: bad range", s, max, r)
			}
			if i > 0 && uint64(r[i-1].Stop)+1 >= uint64(rg.Start) {
				t.Fatalf("Resolve(%q, %d) = %v: not sorted and merged", s, max, r)
			}
		}
		if rr := r.Resolve(max); rr.String() != r.String() {
			t.Fatalf("Resolve not idempotent: %v then %v", r, rr)
		}
		// Contains agrees with Resolve at the edges of every range.
		for _, rg := range r {
			for _, n := range []uint32{rg.Start - 1, rg.Start, rg.Stop, rg.Stop + 1} {
				if set.Contains(n, max) != r.Contains(n, max) {
					t.Fatalf("Contains(%d) differs between %q and %v (max %d)", n, s, r, max)
				}
			}
		}
	})
}
