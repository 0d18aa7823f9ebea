package delivery

import (
	"bytes"
	"fmt"
	"io"
)

// normChunk is how much of the message the normalizer reads at a time.
const normChunk = 32 << 10

// normalizer reads a message and returns it with every bare LF made
// CRLF, failing with ErrTooBig past max bytes of input (0: no limit),
// ErrNUL at a NUL byte and ErrEmpty when the input has no bytes. Errors
// of the source are wrapped. The first error is returned from then on.
type normalizer struct {
	src    io.Reader
	max    int64
	in     int64 // bytes read from src
	lastCR bool  // the last byte read was CR
	out    []byte
	outBuf []byte
	inBuf  []byte
	err    error
}

func newNormalizer(src io.Reader, max int64) *normalizer {
	return &normalizer{src: src, max: max, inBuf: make([]byte, normChunk), outBuf: make([]byte, 0, 2*normChunk)}
}

func (z *normalizer) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.fill()
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

// fill reads one chunk of the source into out.
func (z *normalizer) fill() {
	n, err := z.src.Read(z.inBuf)
	chunk := z.inBuf[:n]
	z.in += int64(n)
	switch {
	case z.max > 0 && z.in > z.max:
		z.err = fmt.Errorf("%w: more than %d bytes", ErrTooBig, z.max)
		return
	case bytes.IndexByte(chunk, 0) >= 0:
		z.err = ErrNUL
		return
	}
	out := z.outBuf[:0]
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			out = append(out, chunk...)
			z.lastCR = chunk[len(chunk)-1] == '\r'
			break
		}
		if (i > 0 && chunk[i-1] != '\r') || (i == 0 && !z.lastCR) {
			out = append(out, chunk[:i]...)
			out = append(out, '\r', '\n')
		} else {
			out = append(out, chunk[:i+1]...)
		}
		z.lastCR = false
		chunk = chunk[i+1:]
	}
	z.out = out
	switch {
	case err == io.EOF && z.in == 0:
		z.err = ErrEmpty
	case err == io.EOF:
		z.err = io.EOF
	case err != nil:
		z.err = fmt.Errorf("delivery: reading the message: %w", err)
	}
}

// maxAddressLen bounds an address that goes into a header line: RFC 5321
// §4.5.3.1.3 allows a path of 256 bytes; twice that keeps every added
// line far below RFC 5322's 998.
const maxAddressLen = 512

// ValidAddress checks an address (a sender or a recipient, without angle
// brackets) before it goes into a header line: at most 512 bytes, no
// control characters. The empty address is the null sender and valid
// here. The error wraps ErrBadAddress.
func ValidAddress(addr string) error {
	if len(addr) > maxAddressLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadAddress, maxAddressLen)
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q holds a control character", ErrBadAddress, addr)
		}
	}
	return nil
}

// header returns the lines Deliver adds above the message.
func header(from string, rcpts []*Recipient) []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <")
	b.WriteString(from)
	b.WriteString(">\r\n")
	if len(rcpts) == 1 {
		b.WriteString("Delivered-To: ")
		b.WriteString(rcpts[0].Address)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
