// Package message reads RFC 5322 messages and their MIME structure
// (RFC 2045–2047, 2183, 2231) for the IMAP server: everything FETCH and
// SEARCH need from a message's bytes. It owns the part tree and its byte
// offsets, ENVELOPE and BODYSTRUCTURE values, section and BINARY content,
// search matching, the Date: field, and the cache format of the structure.
// It returns Go values; the IMAP package formats them on the wire. It
// never touches files.
//
// Parse never fails. A Message keeps the raw bytes and every Part holds
// offsets into them, so sections are slices of the original bytes with the
// original line endings: sizes (RFC822.SIZE, body sizes) are of the raw
// bytes. Maildir files written by Unix programs have bare LF line endings;
// the IMAP layer decides whether to serve them through ToCRLF, and Part.CRLFSize
// and Message.CRLFSize give the sizes that go with that choice.
//
// Invariants of every tree Parse returns (checked by the tests and the
// fuzz target): offsets nest (HeaderStart <= HeaderEnd == BodyStart <=
// BodyEnd, children in order inside their parent's body, an Embedded part
// spanning its parent's body); Size and CRLFSize agree with the body bytes;
// Type, Subtype and Encoding are non-empty and lower case; a part is
// multipart exactly when it has children, and message/rfc822 or
// message/global exactly when Embedded is set.
//
// A Message is immutable and safe for concurrent use.
//
// # Part numbers
//
// Part paths follow RFC 3501 §6.4.5 (RFC 9051 §6.4.5). A message (the
// whole message, or one embedded in a message/rfc822 part) numbers its
// parts; so does a multipart.
//
//	entity                          | part n                      | HEADER, TEXT
//	--------------------------------+-----------------------------+-------------------------
//	message, non-multipart          | 1 = the message body only   | the message
//	message, multipart              | n = the nth body part       | the message
//	multipart body part             | n = its nth body part       | none (false)
//	message/rfc822 part             | n = part n of the embedded  | the embedded message
//	                                | message, numbered as above  |
//	other (leaf) body part          | 1 = itself                  | none (false)
//
// Section path nil is the whole message; MIME needs a path and gives that
// part's own MIME header. For example, in a multipart/mixed whose part 2
// is a message/rfc822 holding a multipart/alternative: 2 is the embedded
// message's raw bytes, 2.MIME the header of part 2 in the outer message,
// 2.HEADER the embedded message's header, 2.1 its text/plain alternative,
// 2.1.MIME that alternative's header.
//
// # Malformed input
//
// Parse makes a best-effort structure of anything:
//
//   - Line endings may be CRLF, bare LF, or mixed; offsets keep them as
//     they are.
//   - A header ends at the first empty line; without one, the whole entity
//     is header and the body is empty. Header lines that are not fields
//     (no colon, white space in the name, an mbox "From " line, an orphan
//     continuation) are skipped. 8-bit bytes in headers are kept; searching
//     reads non-UTF-8 ones as Windows-1252. A body part whose first line is
//     neither a field nor empty is taken to have an empty header.
//   - An unparseable Content-Type means text/plain; charset=us-ascii
//     (RFC 2045 §5.2), or message/rfc822 inside multipart/digest.
//     Parameters tolerate missing ';', unquoted values with spaces,
//     unterminated quotes, and RFC 2231 sections out of order.
//   - A multipart without a boundary parameter, or whose boundary never
//     occurs, has one text/plain child with an empty header spanning its
//     body. A multipart whose closing delimiter is missing ends its last
//     part at the end of its body. Delimiters must start a line and be
//     followed only by white space (or "--"), so that a boundary that is a
//     prefix of an inner one does not split inner parts.
//   - Nesting deeper than MaxDepth, or more than MaxParts parts, makes the
//     multipart or message/rfc822 part at the limit a leaf of type
//     application/octet-stream. So does a message/rfc822 or message/global
//     part with a base64 or quoted-printable encoding (forbidden for
//     message/rfc822 by RFC 2046 §5.2.1, allowed for message/global by
//     RFC 6532 §3.5): its inner message has no offsets in the raw bytes.
//   - Decoding (BINARY, search) is lenient: base64 skips bytes outside its
//     alphabet, quoted-printable keeps '=' sequences it cannot decode,
//     undecodable RFC 2047 words and unknown charsets stay as they are. Only
//     an unknown Content-Transfer-Encoding is an error (ErrUnknownCTE), for
//     BINARY, which RFC 3516 says must fail with UNKNOWN-CTE.
//
// Addresses are parsed just as leniently (see ParseAddressList), and Date:
// fields too (see ParseDate).
//
// What one message's envelope and part tree can hold is capped whatever
// the message (limits.go: MaxFieldAddresses, MaxAddresses,
// MaxStringBytes, MaxMessageParams, MaxStructureBytes): beyond a limit,
// address lists are cut, strings are cut at a UTF-8 boundary, and
// Structure.Limited records the limit, so that parsing costs memory
// linear in the header with a small factor and ENVELOPE/BODYSTRUCTURE
// stay below MaxEncodedStructure.
//
// # Structure cache
//
// MarshalStructure encodes the envelope and part tree (Structure) for the
// server's index, so that ENVELOPE and BODYSTRUCTURE do not need the file.
// The first byte is StructureVersion; UnmarshalStructure rejects any other
// with ErrStructureVersion, and the caller parses the message again. The
// second is the Limit bits. A cached structure beyond what Parse keeps
// to is ErrCorruptStructure.
package message
