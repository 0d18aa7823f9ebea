package imaptorture

import (
	"bytes"
	"testing"
	"time"
)

// TestContentModel: checkSections judges whole sections, the text,
// partials and RFC822.SIZE against the bytes the run wrote, and says
// nothing where it does not know them.
func TestContentModel(t *testing.T) {
	rec := newRecorder(time.Now())
	r := &run{rec: rec, led: newLedger(rec, "test")}
	s := &session{name: "imap-1", r: r}
	msg := []byte("Message-ID: <a>\r\nSubject: x\r\n\r\nline one\r\nline two\r\n")
	text := msg[bytes.Index(msg, []byte("\r\n\r\n"))+4:]
	made := func(id string, uid uint32, body []byte, whole bool) {
		r.led.created(id, "APPEND", 0)
		r.led.wrote(id, body, whole)
		r.led.acked(id, uid, 1, 0, nil)
	}
	made("<a>", 1, msg, true)
	made("<b>", 2, bytes.Replace(msg, []byte("<a>"), []byte("<b>"), 1), false) // LMTP: text only
	count := func() int { return rec.counts[BodyWrong] }
	check := func(name string, uid uint32, f FetchData, partial int, want int) {
		t.Helper()
		before := count()
		s.cur = curCmd{partial: partial}
		s.checkSections(uid, &f, time.Second, "* FETCH")
		if got := count() - before; got != want {
			t.Errorf("%s: %d reports, want %d", name, got, want)
		}
	}
	whole := func(data []byte) []Section { return []Section{{Name: "BODY[]", Origin: -1, Data: data}} }
	check("BODY[] right", 1, FetchData{Sections: whole(msg)}, 0, 0)
	check("BODY[] without CR", 1, FetchData{Sections: whole(bareLF(msg))}, 0, 1)
	check("BODY[] one octet short", 1, FetchData{Sections: whole(msg[:len(msg)-1])}, 0, 1)
	check("RFC822 right", 1, FetchData{Sections: []Section{{Name: "RFC822", Origin: -1, Data: msg}}}, 0, 0)
	check("BODY[TEXT] right", 1, FetchData{Sections: []Section{{Name: "BODY[TEXT]", Origin: -1, Data: text}}}, 0, 0)
	check("BODY[TEXT] wrong", 1, FetchData{Sections: []Section{{Name: "BODY[TEXT]", Origin: -1, Data: msg}}}, 0, 1)
	partial := func(o int, data []byte) FetchData {
		return FetchData{Sections: []Section{{Name: "BODY[]", Origin: o, Data: data}}}
	}
	check("partial right", 1, partial(3, msg[3:13]), 10, 0)
	check("partial at the end", 1, partial(40, msg[40:]), 1000, 0)
	check("partial past the end", 1, partial(1000, nil), 5, 0)
	check("partial off by one", 1, partial(3, msg[4:14]), 10, 1)
	check("partial too long", 1, partial(3, msg[3:14]), 10, 1)
	check("RFC822.SIZE right", 1, FetchData{Size: int64(len(msg)), HasSize: true}, 0, 0)
	check("RFC822.SIZE wrong", 1, FetchData{Size: int64(len(bareLF(msg))), HasSize: true}, 0, 1)
	// LMTP: the server adds trace fields; only the text is known.
	check("LMTP BODY[]", 2, FetchData{Sections: whole([]byte("Received: x\r\n" + string(msg)))}, 0, 0)
	check("LMTP RFC822.SIZE", 2, FetchData{Size: 1, HasSize: true}, 0, 0)
	check("LMTP BODY[TEXT] wrong", 2, FetchData{Sections: []Section{{Name: "BODY[TEXT]", Origin: -1, Data: bareLF(text)}}}, 0, 1)
	// Another message's body is a uid_change, not body_wrong.
	check("another message", 1, FetchData{MessageID: "<b>", Sections: whole(msg[1:])}, 0, 0)
	// A message the run did not write.
	check("unknown UID", 9, FetchData{Sections: whole(nil)}, 0, 0)
}
