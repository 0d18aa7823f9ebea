package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// sender is the envelope sender of every delivery.
const sender = "newsletter@lists.example.org"

// bodySeed makes the bodies the same on every run and machine.
const bodySeed = 0x6c6d7470

// words is the text vocabulary of the bodies.
var words = strings.Fields(`
the of and to in is that for it as was with be by on not this are or from
at which but have an they you were there been one all would their we can
has more when will no if out so said what up about into than them only
other new some could time these two may then first any now such like our
over even most made after also did many before must through back years
where much your way well down should because each just those people how
too little state good very make world still own see work long get here
between both life being under never day same another know while last
might great old year off come since against go came right used take three
meeting report budget quarter schedule review draft invoice deadline
project release server database backup migration customer contract
proposal agenda minutes travel expense approval ticket incident outage
latency throughput benchmark storage network cluster deploy rollback patch
kernel driver firmware laptop printer calendar holiday weekend lunch coffee
`)

var firstNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"}
var lastNames = []string{"Anderson", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hoffmann"}

// body returns a text/plain body of exactly size bytes: lines of words
// of at most 76 characters ending in CRLF, some of them starting with a
// '.' so that dot-stuffing is exercised (a quoted ".signature", ".5 %"),
// the last one ending in CRLF.
func body(size int) []byte {
	rng := rand.New(rand.NewPCG(bodySeed, uint64(size)))
	var b bytes.Buffer
	b.Grow(size)
	line := make([]byte, 0, 80)
	for n := 0; b.Len() < size; n++ {
		line = line[:0]
		if n%17 == 5 {
			line = append(line, '.')
		}
		for {
			w := words[rng.IntN(len(words))]
			if len(line)+len(w)+1 > 76 {
				break
			}
			if len(line) > 0 && line[len(line)-1] != '.' {
				line = append(line, ' ')
			}
			line = append(line, w...)
		}
		if n%9 == 8 {
			line = line[:0] // a paragraph break
		}
		line = append(line, '\r', '\n')
		b.Write(line)
	}
	out := b.Bytes()[:size]
	// Cut in the middle of a line: end that line where the size ends.
	if size >= 2 {
		out[size-2], out[size-1] = '\r', '\n'
	}
	if size >= 3 && out[size-3] == '\r' {
		out[size-3] = 'x' // no empty "\r\r\n"
	}
	return out
}

// header returns the header section (with the empty line that ends it)
// of delivery seq of a run, to rcpt: the fields a message has when it
// reaches the mailbox server, with a Message-ID unique to the run and
// seq.
func header(runID string, seq int, rcpt string, date time.Time) []byte {
	first := firstNames[seq%len(firstNames)]
	last := lastNames[(seq/len(firstNames))%len(lastNames)]
	from := strings.ToLower(first + "." + last)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from mta.example.org (mta.example.org [192.0.2.25])\r\n"+
		"\tby mx.example.net with ESMTPS id %s%06d\r\n\tfor <%s>; %s\r\n",
		runID, seq, rcpt, date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s %s <%s@example.org>\r\n", first, last, from)
	fmt.Fprintf(&b, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&b, "Subject: Weekly report %d of %s %s\r\n", seq, first, last)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", messageID(runID, seq))
	b.WriteString("MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n")
	return b.Bytes()
}

// messageID is the Message-ID of delivery seq of a run.
func messageID(runID string, seq int) string {
	return fmt.Sprintf("<lmtpbench.%s.%06d@example.org>", runID, seq)
}
