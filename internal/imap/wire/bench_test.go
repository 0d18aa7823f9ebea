package wire

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func BenchmarkDecodeFetch(b *testing.B) {
	const line = "A123 UID FETCH 1:* (FLAGS UID)\r\n"
	sr := strings.NewReader(line)
	br := bufio.NewReader(sr)
	d := NewDecoder(br, nil, Limits{})
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		sr.Reset(line)
		br.Reset(sr)
		if _, err := d.Tag(); err != nil {
			b.Fatal(err)
		}
		d.SP()
		d.Atom()
		d.SP()
		d.Atom()
		d.SP()
		if _, err := d.SeqSet(); err != nil {
			b.Fatal(err)
		}
		d.SP()
		if _, err := d.FetchItems(); err != nil {
			b.Fatal(err)
		}
		if err := d.CRLF(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeFetchResponse(b *testing.B) {
	w := bufio.NewWriter(io.Discard)
	e := NewEncoder(w)
	flags := []string{`\Seen`, "$Forwarded"}
	b.ReportAllocs()
	for b.Loop() {
		// * 12 FETCH (UID 34 FLAGS (\Seen $Forwarded))
		e.Untagged().Number(12).SP().Atom("FETCH").SP().Special('(').
			Atom("UID").SP().Number(34).SP().Atom("FLAGS").SP().Flags(flags).
			Special(')').CRLF()
	}
	if err := e.Flush(); err != nil {
		b.Fatal(err)
	}
}
