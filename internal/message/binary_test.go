package message

import (
	"bytes"
	"strings"
	"testing"
)

// leafPaths returns the section path of every leaf part of m, in order
// (the numbering of the package documentation).
func leafPaths(m *Message) [][]int {
	var out [][]int
	with := func(path []int, n int) []int { return append(append([]int(nil), path...), n) }
	var part func(p *Part, path []int)
	// message numbers the parts of a message (the root or an embedded
	// one) at path: a non-multipart message's part 1 is itself.
	message := func(p *Part, path []int) {
		if len(p.Children) == 0 {
			part(p, with(path, 1))
			return
		}
		for i, ch := range p.Children {
			part(ch, with(path, i+1))
		}
	}
	part = func(p *Part, path []int) {
		switch {
		case len(p.Children) > 0:
			for i, ch := range p.Children {
				part(ch, with(path, i+1))
			}
		case p.Embedded != nil:
			message(p.Embedded, path)
		default:
			out = append(out, path)
		}
	}
	message(m.root, nil)
	return out
}

// checkBinaryParts checks what EncodeBinaryParts must keep for any
// input: the same leaf parts, each with the same BINARY content (text
// bodies put in canonical CRLF form when re-encoded), only parts that
// needed it re-encoded, and no NUL left in the body of those. (Which
// parts must be re-encoded is for TestEncodeBinaryParts to pin.)
func checkBinaryParts(t *testing.T, in, out []byte) {
	t.Helper()
	mi, mo := Parse(in), Parse(out)
	pi, po := leafPaths(mi), leafPaths(mo)
	if len(pi) != len(po) {
		t.Fatalf("leaf parts %v became %v\nout %q", pi, po, out)
	}
	for i, path := range pi {
		bi, erri := mi.Binary(path)
		bo, erro := mo.Binary(path)
		p, _ := mi.Part(path)
		q, _ := mo.Part(path)
		if erri != nil {
			if erro == nil {
				t.Errorf("part %v: BINARY failed (%v) before, not after", path, erri)
			}
			continue
		}
		if erro != nil {
			t.Errorf("part %v: BINARY: %v", path, erro)
			continue
		}
		if !equalInts(path, po[i]) {
			t.Errorf("leaf %d: path %v became %v", i, path, po[i])
		}
		if q.Encoding == "base64" && p.Encoding != "base64" {
			if !needsBase64(p, in) {
				t.Errorf("part %v: re-encoded %s part needed no base64", path, p.Encoding)
			}
			if bytes.IndexByte(out[q.BodyStart:q.BodyEnd], 0) >= 0 {
				t.Errorf("part %v: NUL left in the body %q", path, out[q.BodyStart:q.BodyEnd])
			}
			if p.Type == "text" {
				bi = ToCRLF(bi)
			}
		}
		if !bytes.Equal(bi, bo) {
			t.Errorf("part %v: BINARY %q became %q", path, bi, bo)
		}
		if n, err := mo.BinarySize(path); err != nil || n != int64(len(bo)) {
			t.Errorf("part %v: BINARY.SIZE %d, %v; BINARY has %d", path, n, err, len(bo))
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncodeBinaryParts(t *testing.T) {
	long := strings.Repeat("\x00\x01\x02\xff", 40) // 160 octets: three base64 lines
	tests := []struct {
		name string
		in   string
		want string // "" means: unchanged, and the very same slice
	}{
		{
			// imaptest's append-binary message.
			name: "single part binary",
			in:   "From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\n\r\n\n",
			want: "From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==",
		},
		{
			name: "multipart: only the binary part",
			in:   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Transfer-Encoding: BINARY\r\nContent-Type: image/png\r\n\r\n" + long + "\r\n--b--\r\n",
			want: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Transfer-Encoding: base64\r\nContent-Type: image/png\r\n\r\n" +
				"AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8A\r\n" +
				"AQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wAB\r\n" +
				"Av8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/wABAv8AAQL/AAEC/w==\r\n--b--\r\n",
		},
		{
			name: "text made canonical before encoding",
			in:   "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\na\nb\r\n",
			want: "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nYQ0KYg0K",
		},
		{
			name: "8bit with a NUL",
			in:   "Content-Transfer-Encoding: 8bit\r\n\r\nx\x00y",
			want: "Content-Transfer-Encoding: base64\r\n\r\neAB5",
		},
		{
			name: "8bit without NUL",
			in:   "Content-Transfer-Encoding: 8bit\r\n\r\n\xe4\xf6\r\n",
		},
		{
			name: "no encoding field, NUL: one is added",
			in:   "Subject: x\r\nContent-Type: application/x-thing\r\n\r\na\x00",
			want: "Subject: x\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: base64\r\n\r\nYQA=",
		},
		{
			name: "part without a header gets one",
			in:   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno header\x00here\r\n--b--\r\n",
			want: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nbm8gaGVhZGVyAGhlcmU=\r\n--b--\r\n",
		},
		{
			name: "bare LF message keeps bare LF",
			in:   "Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n\x00\x00\x00",
			want: "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA",
		},
		{
			name: "later encoding fields dropped",
			in:   "Content-Transfer-Encoding: binary\r\nX-A: 1\r\nContent-Transfer-Encoding:\r\n 7bit\r\n\r\n\x00",
			want: "Content-Transfer-Encoding: base64\r\nX-A: 1\r\n\r\nAA==",
		},
		{
			name: "binary multipart is not re-encoded, its parts are",
			in:   "Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: binary\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\r\n--b--\r\n",
			want: "Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: binary\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAA==\r\n--b--\r\n",
		},
		{
			name: "inside message/rfc822",
			in:   "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nSubject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01",
			want: "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nSubject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\nAAE=",
		},
		{
			name: "empty binary body",
			in:   "Content-Transfer-Encoding: binary\r\n\r\n",
		},
		{
			name: "base64 already",
			in:   "Content-Transfer-Encoding: base64\r\n\r\nAAE=\r\n",
		},
		{
			name: "unknown encoding kept",
			in:   "Content-Transfer-Encoding: x-uuencode\r\n\r\n\x00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			out := EncodeBinaryParts(in)
			if tt.want == "" {
				if !bytes.Equal(out, in) || &out[0] != &in[0] {
					t.Fatalf("changed: %q", out)
				}
			} else if string(out) != tt.want {
				t.Fatalf("got  %q\nwant %q", out, tt.want)
			}
			checkBinaryParts(t, in, out)
		})
	}
}

// TestEncodeBinaryPartsOverLimits: a message whose structure is cut at
// MaxDepth is stored as it came.
func TestEncodeBinaryPartsOverLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxDepth; i++ {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Content-Transfer-Encoding: binary\r\n\r\n\x00")
	in := []byte(b.String())
	if out := EncodeBinaryParts(in); !bytes.Equal(out, in) {
		t.Fatalf("changed a message over the limits: %q", out)
	}
}

// FuzzEncodeBinaryParts: whatever the input, the re-encoded message has
// the same leaf parts with the same BINARY content, and no NUL in a body
// it re-encoded.
func FuzzEncodeBinaryParts(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\n\r\n--b\r\n\r\nx\x00\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Transfer-Encoding: binary\n\n\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkBinaryParts(t, raw, EncodeBinaryParts(raw))
	})
}
