package wire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testDecoder returns a decoder over input and the sizes passed to cont.
func testDecoder(input string, lim Limits) (*Decoder, *[]int64) {
	var conts []int64
	d := NewDecoder(bufio.NewReader(strings.NewReader(input)), func(n int64) error {
		conts = append(conts, n)
		return nil
	}, lim)
	return d, &conts
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error with code %q", err, code)
	}
	if e.Code != code {
		t.Fatalf("err code = %q (%v), want %q", e.Code, err, code)
	}
}

func TestTag(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"A001 NOOP", "A001", true},
		{"a.b-c NOOP", "a.b-c", true},
		{"x]1 NOOP", "x]1", true}, // resp-specials are ASTRING-CHAR
		{"+a NOOP", "", false},
		{"a+b NOOP", "a", true}, // stops at '+'; the caller's SP then fails
		{" NOOP", "", false},
		{"(a NOOP", "", false},
		{"a*b", "a", true},
		{"\r\n", "", false},
	}
	for _, tt := range tests {
		d, _ := testDecoder(tt.in, Limits{})
		got, err := d.Tag()
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("Tag(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	d, _ := testDecoder("", Limits{})
	if _, err := d.Tag(); err != io.EOF {
		t.Errorf("Tag at EOF = %v, want io.EOF", err)
	}
}

func TestSPAndCRLF(t *testing.T) {
	d, _ := testDecoder("a  b\r\n", Limits{})
	d.Tag()
	if err := d.SP(); err != nil {
		t.Fatal(err)
	}
	if err := d.SP(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Atom(); err != nil {
		t.Fatal(err)
	}
	if err := d.CRLF(); err != nil {
		t.Fatal(err)
	}
	// One SP only: "a  NOOP" fails at the atom after the first SP.
	d, _ = testDecoder("a  NOOP\r\n", Limits{})
	d.Tag()
	d.SP()
	if _, err := d.Atom(); !IsProtocolError(err) {
		t.Errorf("double SP: err = %v", err)
	}
	for _, in := range []string{"a\n", "a\rx", "a x\r\n"} {
		d, _ := testDecoder(in, Limits{})
		d.Tag()
		if err := d.CRLF(); !IsProtocolError(err) {
			t.Errorf("CRLF on %q: err = %v", in, err)
		}
	}
}

// args returns a decoder positioned after "t " of "t " + rest.
func args(t *testing.T, rest string, lim Limits) (*Decoder, *[]int64) {
	t.Helper()
	d, c := testDecoder("t "+rest, lim)
	if _, err := d.Tag(); err != nil {
		t.Fatal(err)
	}
	if err := d.SP(); err != nil {
		t.Fatal(err)
	}
	return d, c
}

func TestAtom(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"uid fetch", "uid", true},
		{"X-FOO[1 ", "X-FOO[1", true}, // "[" is an ATOM-CHAR
		{"FOO]", "FOO", true},
		{"FOO(", "FOO", true},
		{"\"x\"", "", false},
		{"(x", "", false},
		{"%", "", false},
		{"\x01", "", false},
		{"é", "", false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in, Limits{})
		got, err := d.Atom()
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("Atom(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestAString(t *testing.T) {
	tests := []struct {
		name, in, want string
		conts          int
		ok             bool
	}{
		{"atom", "user pass", "user", 0, true},
		{"atom with ]", "a]b ", "a]b", 0, true},
		{"quoted", `"hello world"`, "hello world", 0, true},
		{"empty quoted", `""`, "", 0, true},
		{"escapes", `"a\"b\\c"`, `a"b\c`, 0, true},
		{"bad escape", `"a\b"`, "", 0, false},
		{"utf8 quoted", `"Grüße"`, "Grüße", 0, true},
		{"invalid utf8 quoted", "\"\xff\xfe\"", "", 0, false},
		{"CR in quoted", "\"a\rb\"", "", 0, false},
		{"NUL in quoted", "\"a\x00b\"", "", 0, false},
		{"unterminated", `"abc`, "", 0, false},
		{"sync literal", "{5}\r\nhello", "hello", 1, true},
		{"nonsync literal", "{5+}\r\nhello", "hello", 0, true},
		{"empty literal", "{0}\r\n", "", 1, true},
		{"literal 8bit", "{2}\r\n\xff\xfe", "\xff\xfe", 1, true},
		{"literal NUL", "{3}\r\na\x00b", "", 1, false},
		{"literal8 not a string", "~{3}\r\nabc", "~", 0, true},
		{"literal no CRLF", "{5}hello", "", 0, false},
		{"literal bad size", "{5x}\r\nhello", "", 0, false},
		{"literal size overflow", "{99999999999999999999}\r\n", "", 0, false},
		{"short literal", "{5}\r\nhel", "", 1, false},
		{"nothing", " ", "", 0, false},
		{"paren", "(", "", 0, false},
		{"wildcard", "*", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, conts := args(t, tt.in, Limits{})
			got, err := d.AString()
			if tt.ok != (err == nil) || got != tt.want {
				t.Errorf("AString(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if len(*conts) != tt.conts {
				t.Errorf("cont called %d times, want %d", len(*conts), tt.conts)
			}
		})
	}
}

func TestStringAndNString(t *testing.T) {
	d, _ := args(t, "atom", Limits{})
	if _, err := d.String(); !IsProtocolError(err) {
		t.Errorf("String on atom: err = %v", err)
	}
	tests := []struct {
		in, want  string
		isNil, ok bool
	}{
		{"NIL", "", true, true},
		{"nil)", "", true, true},
		{`"NIL"`, "NIL", false, true},
		{"{3}\r\nabc", "abc", false, true},
		{"NILS", "", false, false},
		{"foo", "", false, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in, Limits{})
		got, ok, err := d.NString()
		if tt.ok != (err == nil) || got != tt.want || (err == nil && ok == tt.isNil) {
			t.Errorf("NString(%q) = %q, %v, %v", tt.in, got, ok, err)
		}
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok32 bool
		ok64 bool
	}{
		{"0", 0, true, true},
		{"007", 7, true, true},
		{"4294967295", 4294967295, true, true},
		{"4294967296", 4294967296, false, true},
		{"9223372036854775807", 9223372036854775807, false, true},
		{"9223372036854775808", 0, false, false},
		{"99999999999999999999999", 0, false, false},
		{"-1", 0, false, false},
		{"x", 0, false, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		n, err := d.Number()
		if tt.ok32 != (err == nil) || (err == nil && uint64(n) != tt.want) {
			t.Errorf("Number(%q) = %d, %v", tt.in, n, err)
		}
		d, _ = args(t, tt.in+"\r\n", Limits{})
		n64, err := d.Number64()
		if tt.ok64 != (err == nil) || (err == nil && n64 != tt.want) {
			t.Errorf("Number64(%q) = %d, %v", tt.in, n64, err)
		}
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"()", nil, true},
		{"(a)", []string{"a"}, true},
		{`(a "b c" {1}` + "\r\nd)", []string{"a", "b c", "d"}, true},
		{"(a  b)", nil, false},
		{"( a)", nil, false},
		{"(a )", nil, false},
		{"(a", nil, false},
		{"a", nil, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in, Limits{})
		var got []string
		err := d.List(func() error {
			s, err := d.AString()
			got = append(got, s)
			return err
		})
		if tt.ok != (err == nil) || (tt.ok && strings.Join(got, "|") != strings.Join(tt.want, "|")) {
			t.Errorf("List(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestMaxDepth(t *testing.T) {
	var item func(d *Decoder) func() error
	item = func(d *Decoder) func() error {
		return func() error {
			if c, _ := d.Peek(); c == '(' {
				return d.List(item(d))
			}
			_, err := d.Atom()
			return err
		}
	}
	d, _ := args(t, "(((x)))\r\n", Limits{MaxDepth: 3})
	if err := d.List(item(d)); err != nil {
		t.Errorf("depth 3: %v", err)
	}
	d, _ = args(t, "((((x))))\r\n", Limits{MaxDepth: 3})
	wantCode(t, d.List(item(d)), CodeTooBig)
}

func TestMaxLine(t *testing.T) {
	d, _ := args(t, strings.Repeat("a", 90)+"\r\n", Limits{MaxLine: 50})
	_, err := d.Atom()
	wantCode(t, err, CodeTooBig)
	// Discard recovers within 2*MaxLine bytes ...
	if err := d.Discard(); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	// ... and gives up beyond.
	d, _ = args(t, strings.Repeat("a", 200)+"\r\n", Limits{MaxLine: 50})
	d.Atom()
	if err := d.Discard(); err != ErrUnrecoverable {
		t.Fatalf("Discard = %v, want ErrUnrecoverable", err)
	}
	// Literal bytes do not count against the line.
	d, _ = args(t, "{60}\r\n"+strings.Repeat("b", 60)+" x\r\n", Limits{MaxLine: 50, MaxString: 100})
	if _, err := d.AString(); err != nil {
		t.Fatal(err)
	}
}

func TestMaxString(t *testing.T) {
	d, conts := args(t, "{11}\r\nhello world\r\n", Limits{MaxString: 10})
	_, err := d.AString()
	wantCode(t, err, CodeTooBig)
	if len(*conts) != 0 {
		t.Errorf("cont called for a refused literal")
	}
}

func TestMaxLiteralsPerCommand(t *testing.T) {
	d, _ := args(t, "{1+}\r\na {1+}\r\nb {1+}\r\nc\r\nu NOOP\r\n", Limits{MaxLiteralsPerCommand: 2})
	for i := range 2 {
		if _, err := d.AString(); err != nil {
			t.Fatal(i, err)
		}
		d.SP()
	}
	_, err := d.AString()
	wantCode(t, err, CodeTooBig)
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, err := d.Tag(); err != nil || tag != "u" {
		t.Fatalf("next Tag = %q, %v", tag, err)
	}
}

// TestContinuationOrder drives the decoder through a pipe, as a client
// would: the literal's bytes are sent only after cont was called. A
// decoder reading data before calling cont would block forever.
func TestContinuationOrder(t *testing.T) {
	pr, pw := io.Pipe()
	contCalled := make(chan int64, 1)
	var events []string
	d := NewDecoder(bufio.NewReader(pr), func(n int64) error {
		events = append(events, "cont")
		contCalled <- n
		return nil
	}, Limits{})
	go func() {
		io.WriteString(pw, "a LOGIN {4}\r\n")
		n := <-contCalled
		if n != 4 {
			pw.CloseWithError(errors.New("wrong size"))
			return
		}
		io.WriteString(pw, "user {4+}\r\npass\r\n")
		pw.Close()
	}()
	done := make(chan error, 1)
	go func() {
		if _, err := d.Tag(); err != nil {
			done <- err
			return
		}
		d.SP()
		d.Atom()
		d.SP()
		u, err := d.AString()
		if err != nil {
			done <- err
			return
		}
		events = append(events, "data:"+u)
		d.SP()
		p, err := d.AString() // LITERAL+: no cont
		if err != nil {
			done <- err
			return
		}
		events = append(events, "data:"+p)
		done <- d.CRLF()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("decoder blocked: literal read before continuation")
	}
	if got := strings.Join(events, ","); got != "cont,data:user,data:pass" {
		t.Errorf("events = %s", got)
	}
}

func TestLiteralMinus(t *testing.T) {
	lim := Limits{NonSyncMax: LiteralMinusMax, MaxString: 10000}
	ok := strings.Repeat("x", 4096)
	d, conts := args(t, "{4096+}\r\n"+ok+"\r\n", lim)
	if s, err := d.AString(); err != nil || s != ok {
		t.Fatalf("4096-byte LITERAL-: %v", err)
	}
	if len(*conts) != 0 {
		t.Error("cont called for a non-synchronizing literal")
	}
	big := strings.Repeat("y", 4097)
	d, conts = args(t, "{4097+}\r\n"+big+" more\r\nb NOOP\r\n", lim)
	_, err := d.AString()
	wantCode(t, err, CodeTooBig)
	if len(*conts) != 0 {
		t.Error("cont called for a refused literal")
	}
	// The bytes are on the way: Discard skips them and the line's rest.
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, err := d.Tag(); err != nil || tag != "b" {
		t.Fatalf("next Tag = %q, %v", tag, err)
	}
	// The same literal synchronizing is fine under LITERAL-.
	d, conts = args(t, "{4097}\r\n"+big, lim)
	if _, err := d.AString(); err != nil || len(*conts) != 1 {
		t.Fatalf("sync 4097: %v, conts %v", err, *conts)
	}
	// No non-synchronizing literals at all.
	d, _ = args(t, "{1+}\r\nx\r\nb NOOP\r\n", Limits{NonSyncMax: -1})
	if _, err := d.AString(); !IsProtocolError(err) {
		t.Fatalf("NonSyncMax<0: %v", err)
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, _ := d.Tag(); tag != "b" {
		t.Fatalf("next Tag = %q", tag)
	}
}

// failAfter fails the test if more than n bytes are read from it: the
// refused literal's bytes must never be read.
type failAfter struct {
	t    *testing.T
	data string
	n    int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	if f.n <= 0 {
		f.t.Error("read past the refused literal")
		return 0, io.EOF
	}
	k := min(len(p), len(f.data), f.n)
	copy(p, f.data[:k])
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

func TestTooBigRefusal(t *testing.T) {
	line := "a APPEND INBOX {100000000}\r\n"
	next := "b NOOP\r\n"
	// The client, refused, sends the next command instead of the data.
	r := &failAfter{t: t, data: line + next, n: len(line) + len(next)}
	var conts []int64
	d := NewDecoder(bufio.NewReaderSize(r, 16), func(n int64) error {
		conts = append(conts, n)
		return nil
	}, Limits{MaxLiteral: 1 << 20})
	d.Tag()
	d.SP()
	d.Atom()
	d.SP()
	if _, err := d.Mailbox(false); err != nil {
		t.Fatal(err)
	}
	d.SP()
	_, _, err := d.Literal(0)
	wantCode(t, err, CodeTooBig)
	if len(conts) != 0 {
		t.Fatal("cont called for a too-big literal")
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, err := d.Tag(); err != nil || tag != "b" {
		t.Fatalf("next Tag = %q, %v", tag, err)
	}
}

func TestContRefuses(t *testing.T) {
	d := NewDecoder(bufio.NewReader(strings.NewReader("a APPEND x {500}\r\nb NOOP\r\n")),
		func(n int64) error { return &Error{Code: "OVERQUOTA", Msg: "quota"} }, Limits{})
	d.Tag()
	d.SP()
	d.Atom()
	d.SP()
	d.Mailbox(false)
	d.SP()
	_, _, err := d.Literal(0)
	wantCode(t, err, "OVERQUOTA")
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, _ := d.Tag(); tag != "b" {
		t.Fatalf("next Tag = %q", tag)
	}
	// An I/O error from cont is returned as is.
	ioErr := errors.New("broken pipe")
	d = NewDecoder(bufio.NewReader(strings.NewReader("a {5}\r\n")), func(int64) error { return ioErr }, Limits{})
	d.Tag()
	d.SP()
	if _, err := d.AString(); err != ioErr {
		t.Fatalf("err = %v, want the I/O error", err)
	}
	// A nil cont refuses synchronizing literals.
	d = NewDecoder(bufio.NewReader(strings.NewReader("a {5}\r\n")), nil, Limits{})
	d.Tag()
	d.SP()
	if _, err := d.AString(); !IsProtocolError(err) {
		t.Fatalf("nil cont: %v", err)
	}
}

func TestLiteralStream(t *testing.T) {
	msg := "From: a\r\n\r\nbody\r\n"
	in := "{" + strconv.Itoa(len(msg)) + "}\r\n" + msg + "\r\n"
	d, conts := args(t, in, Limits{})
	r, binary, err := d.Literal(0)
	if err != nil || binary {
		t.Fatal(err, binary)
	}
	if r.Size() != int64(len(msg)) || len(*conts) != 1 || (*conts)[0] != int64(len(msg)) {
		t.Fatalf("size %d conts %v", r.Size(), *conts)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != msg {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if err := d.CRLF(); err != nil {
		t.Fatal(err)
	}

	// literal8 with NUL; non-synchronizing.
	d, conts = args(t, "~{3+}\r\na\x00b\r\n", Limits{})
	r, binary, err = d.Literal(0)
	if err != nil || !binary || len(*conts) != 0 {
		t.Fatal(err, binary, *conts)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "a\x00b" {
		t.Fatalf("literal8 = %q, %v", b, err)
	}

	// NUL in a plain literal is an error; Discard skips the rest.
	d, _ = args(t, "{5}\r\na\x00bcd\r\nb NOOP\r\n", Limits{})
	r, _, _ = d.Literal(0)
	if _, err := io.ReadAll(r); !IsProtocolError(err) {
		t.Fatalf("NUL: %v", err)
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if tag, _ := d.Tag(); tag != "b" {
		t.Fatalf("next Tag = %q", tag)
	}

	// An unread literal is skipped by the next call.
	d, _ = args(t, "{5}\r\nhello x\r\n", Limits{})
	d.Literal(0)
	if err := d.SP(); err != nil {
		t.Fatal(err)
	}
	if a, err := d.Atom(); err != nil || a != "x" {
		t.Fatalf("after skipped literal: %q %v", a, err)
	}

	// Literal's max is enforced before cont.
	d, conts = args(t, "{100}\r\n", Limits{})
	_, _, err = d.Literal(99)
	wantCode(t, err, CodeTooBig)
	if len(*conts) != 0 {
		t.Fatal("cont called")
	}

	// Not a literal.
	d, _ = args(t, `"abc"`, Limits{})
	if _, _, err := d.Literal(0); !IsProtocolError(err) {
		t.Fatal(err)
	}
}

func TestDiscard(t *testing.T) {
	tests := []struct {
		name, in string
		read     func(d *Decoder) error
		next     string // tag of the next command, "" for EOF
		err      error
	}{
		{"mid line", "a FOO bar baz\r\nb NOOP\r\n", func(d *Decoder) error {
			d.Tag()
			d.SP()
			d.Atom()
			d.SP()
			_, err := d.Number()
			return err
		}, "b", nil},
		{"ends in sync literal", "a FOO x {5}\r\nb NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "b", nil},
		{"ends in nonsync literal", "a FOO x {5+}\r\nb NOO\r\nc NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "c", nil},
		{"two nonsync literals", "a X {1+}\r\n\n{2+}\r\n\r\n\r\nc NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "c", nil},
		{"bare LF", "a FOO x\nb NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "b", nil},
		{"error at CR", "a NOOP x\r\nb NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); d.Atom(); return d.CRLF() }, "b", nil},
		{"huge nonsync", "a X {99999999999+}\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "", ErrUnrecoverable},
		{"nonsync size lost", "a X {" + strings.Repeat("0", 40) + "1+}\r\nx\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "", ErrUnrecoverable},
		{"sync size lost", "a X {" + strings.Repeat("0", 40) + "1}\r\nb NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); _, err := d.Number(); return err }, "b", nil},
		{"nothing to discard", "a NOOP\r\nb NOOP\r\n", func(d *Decoder) error { d.Tag(); d.SP(); d.Atom(); return d.CRLF() }, "b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, conts := testDecoder(tt.in, Limits{})
			tt.read(d)
			if err := d.Discard(); err != tt.err {
				t.Fatalf("Discard = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if len(*conts) != 0 {
				t.Errorf("cont called: %v", *conts)
			}
			tag, err := d.Tag()
			if tt.next == "" {
				if err != io.EOF {
					t.Fatalf("Tag = %q, %v; want EOF", tag, err)
				}
				return
			}
			if tag != tt.next {
				t.Fatalf("next Tag = %q, %v; want %q", tag, err, tt.next)
			}
		})
	}
}

func TestTagDiscardsUnfinishedLine(t *testing.T) {
	d, _ := testDecoder("a NOOP junk\r\nb NOOP\r\n", Limits{})
	d.Tag()
	if tag, err := d.Tag(); err != nil || tag != "b" {
		t.Fatalf("Tag = %q, %v", tag, err)
	}
}

func TestLine(t *testing.T) {
	d, _ := testDecoder("DONE\r\ndGVzdA==\nx\r\n", Limits{})
	for _, want := range []string{"DONE", "dGVzdA==", "x"} {
		if got, err := d.Line(); err != nil || got != want {
			t.Fatalf("Line = %q, %v; want %q", got, err, want)
		}
	}
	d, _ = testDecoder(strings.Repeat("a", 100)+"\r\n", Limits{MaxLine: 10})
	_, err := d.Line()
	wantCode(t, err, CodeTooBig)
}
