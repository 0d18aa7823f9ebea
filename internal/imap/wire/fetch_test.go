package wire

import (
	"fmt"
	"strings"
	"testing"
)

func dumpItems(items []FetchItem) string {
	var parts []string
	for _, it := range items {
		s := it.ResponseName()
		if it.Peek {
			s += "/peek"
		}
		if it.Partial != nil {
			s += fmt.Sprintf("/%d.%d", it.Partial.Offset, it.Partial.Count)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestFetchItems(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ALL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE"},
		{"fast", "FLAGS INTERNALDATE RFC822.SIZE"},
		{"FULL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY"},
		{"FLAGS", "FLAGS"},
		{"(FLAGS UID)", "FLAGS UID"},
		{"(uid flags internaldate rfc822.size envelope bodystructure body modseq)",
			"UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY MODSEQ"},
		{"(RFC822 RFC822.HEADER RFC822.TEXT)", "RFC822 RFC822.HEADER RFC822.TEXT"},
		{"BODY[]", "BODY[]"},
		{"BODY.PEEK[]", "BODY[]/peek"},
		{"body.peek[header.fields (date from)]", "BODY[HEADER.FIELDS (date from)]/peek"},
		{`BODY.PEEK[HEADER.FIELDS.NOT ("X-TUID" Received)]`, "BODY[HEADER.FIELDS.NOT (X-TUID Received)]/peek"},
		{"BODY[1.2.3]", "BODY[1.2.3]"},
		{"BODY[1.2.MIME]", "BODY[1.2.MIME]"},
		{"BODY[4.2.HEADER]", "BODY[4.2.HEADER]"},
		{"BODY[3.TEXT]", "BODY[3.TEXT]"},
		{"BODY[TEXT]", "BODY[TEXT]"},
		{"BODY[]<0.2048>", "BODY[]<0>/0.2048"},
		{"BODY.PEEK[HEADER]<10.20>", "BODY[HEADER]<10>/peek/10.20"},
		{"BINARY[]", "BINARY[]"},
		{"BINARY.PEEK[1.2]<0.100>", "BINARY[1.2]<0>/peek/0.100"},
		{"BINARY.SIZE[1]", "BINARY.SIZE[1]"},
		{"(UID BODY.PEEK[HEADER.FIELDS (X-TUID)] FLAGS)", "UID BODY[HEADER.FIELDS (X-TUID)]/peek FLAGS"},
		{`BODY[HEADER.FIELDS ("a b" "q\"" {2}` + "\r\nx\n)]", `BODY[HEADER.FIELDS ("a b" "q\"" {2}` + "\r\nx\n)]"},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		items, err := d.FetchItems()
		if err == nil {
			err = d.CRLF()
		}
		if err != nil {
			t.Errorf("FetchItems(%q): %v", tt.in, err)
			continue
		}
		if got := dumpItems(items); got != tt.want {
			t.Errorf("FetchItems(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFetchItemFields(t *testing.T) {
	d, _ := args(t, "BINARY.PEEK[2.1]<5.6>\r\n", Limits{})
	items, err := d.FetchItems()
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	if it.Name != "BINARY" || !it.Peek || !it.Binary || !it.Sectioned ||
		fmt.Sprint(it.Section.Path) != "[2 1]" || *it.Partial != (Partial{5, 6}) {
		t.Errorf("item = %+v", it)
	}
	d, _ = args(t, "BODY\r\n", Limits{})
	items, _ = d.FetchItems()
	if items[0].Name != "BODY" || items[0].Sectioned {
		t.Errorf("BODY = %+v", items[0])
	}
}

func TestFetchItemsInvalid(t *testing.T) {
	for _, in := range []string{
		"", "()", "(ALL)", "(FLAGS FAST)", "FOO", "(FLAGS  UID)", "( FLAGS)",
		"BODY.PEEK", "BINARY", "BINARY.SIZE", "FLAGS[]", "ENVELOPE[1]",
		"BODY[0]", "BODY[1.]", "BODY[.1]", "BODY[1..2]", "BODY[MIME]", "BODY[FOO]",
		"BODY[HEADER.FIELDS]", "BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS (a]",
		"BODY[TEXT", "BODY[]<0.0>", "BODY[]<0>", "BODY[]<x.1>", "BODY[]<1.2",
		"BINARY[HEADER]", "BINARY[1.TEXT]", "BODY[1.2.3.4.5.6]",
		"BODY[]<4294967296.1>",
	} {
		d, _ := args(t, in+"\r\n", Limits{MaxDepth: 5})
		items, err := d.FetchItems()
		if err == nil {
			err = d.CRLF()
		}
		if err == nil {
			t.Errorf("FetchItems(%q) = %s, want error", in, dumpItems(items))
		}
	}
}
