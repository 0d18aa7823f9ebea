package message

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// addressHeader returns "To: " and n addresses, folded every 10.
func addressHeader(field string, n int) string {
	b := make([]byte, 0, n*14)
	b = append(b, field+": "...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
			if i%10 == 0 {
				b = append(b, "\r\n "...)
			}
		}
		b = append(b, 'u')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "@x.y"...)
	}
	return string(append(b, "\r\n"...))
}

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc):
// an upper bound on the extra heap it holds at its peak.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// countAddresses counts the addresses of every envelope of a structure.
func countAddresses(s *Structure) int {
	n := 0
	var walk func(p *Part)
	envN := func(e Envelope) int {
		return len(e.From) + len(e.Sender) + len(e.ReplyTo) + len(e.To) + len(e.Cc) + len(e.Bcc)
	}
	walk = func(p *Part) {
		for _, c := range p.Children {
			walk(c)
		}
		if p.Embedded != nil {
			n += envN(p.Envelope())
			walk(p.Embedded)
		}
	}
	n += envN(s.Envelope)
	walk(s.Root)
	return n
}

// The attack of issue 11: one To: field of a million addresses (about
// 10 MB) cost 598 MB for ENVELOPE and 711 MB for BODYSTRUCTURE. Now the
// list is cut at MaxFieldAddresses, parsing allocates at most three times
// the header, and the cached structure reads back the same.
func TestMillionAddressesEnvelope(t *testing.T) {
	hdr := addressHeader("To", 1_000_000) + "Subject: big\r\n\r\n"
	raw := []byte(hdr + "body\r\n")
	t.Logf("header %d bytes", len(hdr))
	limit := uint64(3*len(hdr) + 1<<20)

	var env Envelope
	n := allocated(func() { env = Parse(raw).Envelope() })
	t.Logf("Envelope allocated %d bytes", n)
	if n > limit {
		t.Errorf("Envelope allocated %d bytes, want <= %d (3x header + 1 MiB)", n, limit)
	}
	if len(env.To) != MaxFieldAddresses {
		t.Errorf("To has %d addresses, want %d", len(env.To), MaxFieldAddresses)
	}
	if env.To[0].Mailbox != "u0" || env.To[MaxFieldAddresses-1].Mailbox != fmt.Sprintf("u%d", MaxFieldAddresses-1) {
		t.Errorf("To cut wrong: first %+v last %+v", env.To[0], env.To[len(env.To)-1])
	}

	var st *Structure
	var cached []byte
	n = allocated(func() {
		m := Parse(raw)
		st = m.Structure()
		cached = st.Marshal()
	})
	t.Logf("Structure+Marshal allocated %d bytes, cache entry %d bytes", n, len(cached))
	if n > limit {
		t.Errorf("Structure allocated %d bytes, want <= %d", n, limit)
	}
	if st.Limited&LimitFieldAddresses == 0 {
		t.Errorf("Limited = %q, want addresses_per_field", st.Limited)
	}
	back, err := UnmarshalStructure(cached)
	if err != nil {
		t.Fatalf("UnmarshalStructure: %v", err)
	}
	if len(back.Envelope.To) != MaxFieldAddresses || back.Limited != st.Limited {
		t.Errorf("read back %d addresses, limited %q; want %d, %q", len(back.Envelope.To), back.Limited, MaxFieldAddresses, st.Limited)
	}
	if len(cached) > MaxEncodedStructure {
		t.Errorf("cache entry %d bytes > MaxEncodedStructure", len(cached))
	}
}

// The search path walks the same field: it must not tokenize it whole.
func TestMillionAddressesSearch(t *testing.T) {
	hdr := addressHeader("To", 1_000_000) + "\r\n"
	m := Parse([]byte(hdr))
	var found bool
	n := allocated(func() { found = m.HeaderContains("to", "nobody@nowhere") })
	t.Logf("header %d bytes, HeaderContains allocated %d bytes", len(hdr), n)
	if found {
		t.Error("found a needle that is not there")
	}
	if limit := uint64(6*len(hdr) + 1<<20); n > limit {
		t.Errorf("HeaderContains allocated %d bytes, want <= %d (6x header)", n, limit)
	}
	if !m.HeaderContains("to", "u9999@x.y") {
		t.Error("an address within the limit is not found")
	}
}

// Ten thousand-part messages whose embedded messages each carry a big
// envelope must not multiply MaxFieldAddresses: MaxAddresses holds for
// all envelopes of a Structure together.
func TestNestedEnvelopesShareTheLimit(t *testing.T) {
	const parts, perPart = 200, 3000
	inner := addressHeader("To", perPart) + addressHeader("Cc", perPart) + "Subject: inner\r\n\r\nx\r\n"
	var b strings.Builder
	b.WriteString("From: a@b\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n")
	for i := 0; i < parts; i++ {
		b.WriteString("--B\r\nContent-Type: message/rfc822\r\n\r\n")
		b.WriteString(inner)
	}
	b.WriteString("--B--\r\n")
	raw := []byte(b.String())
	var st *Structure
	n := allocated(func() { st = Parse(raw).Structure() })
	got := countAddresses(st)
	t.Logf("message %d bytes, %d addresses kept, allocated %d bytes, limited %q", len(raw), got, n, st.Limited)
	// MaxAddresses, plus From echoed as Sender and Reply-To at the root.
	if got > MaxAddresses+2 {
		t.Errorf("%d addresses over all envelopes, want <= %d", got, MaxAddresses+2)
	}
	if st.Limited&LimitAddresses == 0 {
		t.Errorf("Limited = %q, want addresses_per_message", st.Limited)
	}
	if len(st.Root.Children) != parts {
		t.Errorf("%d parts, want %d: the limit must not cut the part tree", len(st.Root.Children), parts)
	}
	if limit := uint64(3*len(raw) + 1<<20); n > limit {
		t.Errorf("allocated %d bytes, want <= %d", n, limit)
	}
	if _, err := UnmarshalStructure(st.Marshal()); err != nil {
		t.Errorf("read back: %v", err)
	}
}

// Parameters: at most 100 per field and MaxMessageParams per message.
func TestManyParams(t *testing.T) {
	const parts = 300
	var ps strings.Builder
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&ps, ";\r\n p%d=%s", i, strings.Repeat("v", 20))
	}
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=B\r\n\r\n")
	for i := 0; i < parts; i++ {
		fmt.Fprintf(&b, "--B\r\nContent-Type: text/plain%s\r\nContent-Disposition: attachment%s\r\n\r\nx\r\n", ps.String(), ps.String())
	}
	b.WriteString("--B--\r\n")
	st := Parse([]byte(b.String())).Structure()
	total := 0
	for _, c := range st.Root.Children {
		if len(c.Params) > maxParams || len(c.DispositionParams) > maxParams {
			t.Fatalf("a part kept %d+%d params, want <= %d each", len(c.Params), len(c.DispositionParams), maxParams)
		}
		total += len(c.Params) + len(c.DispositionParams)
	}
	t.Logf("%d params kept, limited %q", total, st.Limited)
	if total > MaxMessageParams {
		t.Errorf("%d params kept, want <= %d", total, MaxMessageParams)
	}
	if st.Limited&LimitParams == 0 {
		t.Errorf("Limited = %q, want params_per_message", st.Limited)
	}
	if len(st.Root.Children) != parts {
		t.Errorf("%d parts, want %d", len(st.Root.Children), parts)
	}
}

// A string is cut at a UTF-8 boundary, and the total of strings is held
// to MaxStructureBytes.
func TestLongStrings(t *testing.T) {
	subject := strings.Repeat("é", MaxStringBytes) // 2 bytes each
	raw := []byte("Subject: " + subject + "\r\nMessage-ID: <" + strings.Repeat("m", 3*MaxStringBytes) + ">\r\n" +
		"Content-Type: text/" + strings.Repeat("x", 1000) + "; name=\"" + strings.Repeat("n", 2*MaxStringBytes) + "\"\r\n\r\nbody\r\n")
	st := Parse(raw).Structure()
	if len(st.Envelope.Subject) > MaxStringBytes || !utf8.ValidString(st.Envelope.Subject) || !strings.HasPrefix(subject, st.Envelope.Subject) {
		t.Errorf("Subject cut to %d bytes, valid UTF-8 %v", len(st.Envelope.Subject), utf8.ValidString(st.Envelope.Subject))
	}
	if len(st.Envelope.MessageID) != MaxStringBytes {
		t.Errorf("Message-ID %d bytes, want %d", len(st.Envelope.MessageID), MaxStringBytes)
	}
	if len(st.Root.Subtype) != MaxTokenBytes {
		t.Errorf("subtype %d bytes, want %d", len(st.Root.Subtype), MaxTokenBytes)
	}
	if v := st.Root.Param("name"); len(v) != MaxStringBytes {
		t.Errorf("name parameter %d bytes, want %d", len(v), MaxStringBytes)
	}
	if st.Limited&LimitString == 0 {
		t.Errorf("Limited = %q, want string_bytes", st.Limited)
	}

	// Many parts each with long strings: the total is capped.
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=B\r\n\r\n")
	d := strings.Repeat("d", MaxStringBytes)
	for i := 0; i < 2*MaxStructureBytes/MaxStringBytes; i++ {
		fmt.Fprintf(&b, "--B\r\nContent-Description: %s\r\n\r\nx\r\n", d)
	}
	b.WriteString("--B--\r\n")
	st = Parse([]byte(b.String())).Structure()
	sum := 0
	for _, c := range st.Root.Children {
		sum += len(c.Description)
	}
	if sum > MaxStructureBytes || st.Limited&LimitStructureBytes == 0 {
		t.Errorf("descriptions hold %d bytes (limited %q), want <= %d and structure_bytes", sum, st.Limited, MaxStructureBytes)
	}
}

func TestCutUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},
		{"a€b", 3, "a"},
		{"a€b", 4, "a€"},
		{"\xff\xff\xff\xff\xff\xff", 3, "\xff\xff\xff"},
	} {
		if got, _ := cutUTF8(tc.s, tc.n); got != tc.want {
			t.Errorf("cutUTF8(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// A cached structure beyond the limits (damaged or forged) is corrupt:
// the caller parses the message again, under the limits.
func TestUnmarshalStructureLimits(t *testing.T) {
	big := make([]Address, MaxFieldAddresses+2)
	for i := range big {
		big[i] = Address{Mailbox: "a", Host: "b"}
	}
	root := &Part{Type: "text", Subtype: "plain", Encoding: "7bit"}
	for name, s := range map[string]*Structure{
		"addresses": {Envelope: Envelope{To: big}, Root: root},
		"string":    {Envelope: Envelope{Subject: strings.Repeat("s", MaxStringBytes+1)}, Root: root},
	} {
		_, err := UnmarshalStructure(s.Marshal())
		if !errors.Is(err, ErrCorruptStructure) {
			t.Errorf("%s: err = %v, want ErrCorruptStructure", name, err)
		}
	}
	many := make([]Param, 0, MaxMessageParams+MaxParts)
	for i := 0; i < cap(many); i++ {
		many = append(many, Param{Name: "p", Value: "v"})
	}
	mp := &Part{Type: "multipart", Subtype: "mixed", Encoding: "7bit"}
	for i := 0; i < 200; i++ {
		mp.Children = append(mp.Children, &Part{Type: "text", Subtype: "plain", Encoding: "7bit", Params: many[:100]})
	}
	if _, err := UnmarshalStructure((&Structure{Root: mp}).Marshal()); err != nil {
		t.Errorf("20,000 params in 200 parts: %v", err)
	}
	for i := 0; i < 150; i++ {
		mp.Children = append(mp.Children, &Part{Type: "text", Subtype: "plain", Encoding: "7bit", Params: many[:100]})
	}
	if _, err := UnmarshalStructure((&Structure{Root: mp}).Marshal()); !errors.Is(err, ErrCorruptStructure) {
		t.Errorf("35,000 params: err = %v, want ErrCorruptStructure", err)
	}
}

// ParseAddressList keeps its lenient results with the walking lexer.
func TestParseAddressListLimit(t *testing.T) {
	got := ParseAddressList(strings.TrimSuffix(addressHeader("X", MaxFieldAddresses+5)[3:], "\r\n"))
	if len(got) != MaxFieldAddresses {
		t.Errorf("%d addresses, want %d", len(got), MaxFieldAddresses)
	}
	// A group cut by the limit is closed.
	grp := "g: " + strings.TrimSuffix(addressHeader("X", MaxFieldAddresses+5)[3:], "\r\n") + ";"
	got = ParseAddressList(grp)
	if len(got) != MaxFieldAddresses+1 || !got[0].GroupStart || !got[len(got)-1].GroupEnd {
		t.Errorf("group: %d addresses, first %+v, last %+v", len(got), got[0], got[len(got)-1])
	}
}
