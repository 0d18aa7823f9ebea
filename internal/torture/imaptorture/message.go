package imaptorture

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// words fill message bodies.
var words = strings.Fields("cistern maildir readdir rename expunge phantom unique identifier flag keyword session mailbox delivery guarantee torture")

// newMessage returns a message with Message-ID id: RFC 5322 headers, a
// text body of a few lines to a few KiB, CRLF line ends.
func newMessage(id, source string, rng *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Torture <torture@example.org>\r\n")
	fmt.Fprintf(&b, "To: Mailbox <mailbox@example.org>\r\n")
	fmt.Fprintf(&b, "Subject: torture %s via %s\r\n", strings.Trim(id, "<>"), source)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", id)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	lines := 2 + rng.IntN(60)
	for i := range lines {
		for j := range 8 {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[(i*8+j+rng.IntN(len(words)))%len(words)])
		}
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
