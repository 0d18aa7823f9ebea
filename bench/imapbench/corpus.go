package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"strings"
	"time"
)

// searchWord is what SEARCH TEXT looks for. It is planted in about
// searchShare of the messages (in the body text, or in the Subject of
// some), and no other word of the corpus contains it.
const (
	searchWord  = "quokka"
	searchShare = 0.01
)

// corpusSeed makes the corpus the same on every machine: message i is
// drawn from its own PCG stream, whatever the number of writers.
const corpusSeed = 0x63697374657216

// Body sizes: 1–8 KiB of text, as the issue asks.
const (
	minBodySize = 1 << 10
	maxBodySize = 8 << 10
)

// The corpus's span of dates: messages arrive in order over three years.
var (
	corpusStart = time.Date(2022, time.March, 1, 8, 0, 0, 0, time.UTC)
	corpusSpan  = 3 * 365 * 24 * time.Hour
)

var firstNames = []string{
	"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
	"Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil",
	"Trent", "Victor", "Walter", "Yvonne", "Amara", "Bjorn", "Chen", "Dmitri",
	"Esther", "Farid", "Gabriela", "Hiroshi", "Ingrid", "Jamal", "Keiko", "Lars",
	"Maria", "Nikolai", "Oona", "Priya", "Rafael", "Sofia", "Tomasz", "Ursula",
}

var lastNames = []string{
	"Anderson", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia",
	"Hoffmann", "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau",
	"Nakamura", "O'Brien", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka",
	"Umarov", "Virtanen", "Weber", "Xu", "Yamamoto", "Zielinski",
}

// Names that need RFC 2047 encoded words in a header.
var unicodeNames = []string{
	"Jürgen Müller", "Zoë Brontë", "Søren Kierkegård", "François Lefèvre",
	"José Núñez", "Łukasz Żółw", "Åsa Ängström", "Dvořák Antonín",
}

var domains = []string{
	"example.com", "example.org", "example.net", "mail.example.com",
	"lists.example.org", "corp.example.net", "research.example.edu",
	"shop.example.co.uk", "news.example.de", "support.example.io",
}

// words is the text vocabulary; none contains searchWord.
var words = strings.Fields(`
the of and to in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all would
their we him can has more when will no if out so said what up its about
into than them only other new some could time these two may then do first
any my now such like our over man me even most made after also did many
before must through back years where much your way well down should because
each just those people how too little state good very make world still own
see men work long get here between both life being under never day same
another know while last might us great old year off come since against go
came right used take three meeting report budget quarter schedule review
draft invoice deadline project release server database backup migration
customer contract proposal agenda minutes travel expense approval ticket
incident outage latency throughput benchmark storage network cluster deploy
rollback patch kernel driver firmware laptop printer calendar holiday
weekend lunch coffee garden bicycle train airport hotel museum concert
library chapter manuscript editor reviewer conference workshop keynote
slides poster abstract dataset experiment hypothesis results figure table
appendix summary feedback question answer thanks regards cheers hello
`)

var subjectStarts = []string{
	"", "", "", "", "Re: ", "Re: ", "Fwd: ", "[team] ", "[announce] ", "RE: ",
}

// generated is one message of the corpus.
type generated struct {
	name string // file name in cur/
	data []byte
	date time.Time
	hit  bool // contains searchWord
}

// generate makes message i (0-based) of an n-message corpus.
func generate(i, n int) generated {
	r := rand.New(rand.NewPCG(corpusSeed, uint64(i)))
	step := corpusSpan / time.Duration(n)
	date := corpusStart.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(step)+1)))
	zone := time.FixedZone("", []int{0, -5 * 3600, -8 * 3600, 3600, 2 * 3600, 19800, 9 * 3600}[r.IntN(7)])

	hit := r.Float64() < searchShare
	hitInSubject := hit && r.IntN(5) == 0

	var b bytes.Buffer
	from := address(r)
	fromDomain := strings.TrimSuffix(from[strings.LastIndexByte(from, '@')+1:], ">")
	relay := domains[r.IntN(len(domains))]
	fmt.Fprintf(&b, "Return-Path: <bounce-%d@%s>\n", r.IntN(1e6), fromDomain)
	fmt.Fprintf(&b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby imap.example.com with ESMTPS id %08X\n\tfor <me@example.com>; %s\n",
		r.IntN(9), relay, r.IntN(9), relay, 1+r.IntN(254), r.Uint32(), date.In(zone).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Date: %s\n", date.In(zone).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s\n", from)
	fmt.Fprintf(&b, "To: %s", address(r))
	for range r.IntN(3) {
		fmt.Fprintf(&b, ",\n %s", address(r))
	}
	b.WriteByte('\n')
	if r.IntN(5) == 0 {
		fmt.Fprintf(&b, "Cc: %s\n", address(r))
	}
	subject := subjectStarts[r.IntN(len(subjectStarts))] + phrase(r, 3+r.IntN(8))
	if hitInSubject {
		subject += " " + searchWord
	}
	if !hitInSubject && r.IntN(30) == 0 {
		subject = mime.QEncoding.Encode("UTF-8", subject+" – "+unicodeNames[r.IntN(len(unicodeNames))])
	}
	fmt.Fprintf(&b, "Subject: %s\n", subject)
	fmt.Fprintf(&b, "Message-ID: <%d.%016x@%s>\n", date.Unix(), r.Uint64(), fromDomain)
	if strings.HasPrefix(subject, "Re:") || strings.HasPrefix(subject, "RE:") {
		fmt.Fprintf(&b, "In-Reply-To: <%d.%016x@%s>\n", date.Unix()-r.Int64N(1e6), r.Uint64(), domains[r.IntN(len(domains))])
	}
	b.WriteString("MIME-Version: 1.0\n")

	text := bodyText(r, minBodySize+r.IntN(maxBodySize-minBodySize+1), hit && !hitInSubject)
	if r.IntN(10) == 0 {
		boundary := fmt.Sprintf("=_boundary_%016x", r.Uint64())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", boundary)
		b.WriteString("This is a multi-part message in MIME format.\n\n")
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n", boundary)
		b.Write(text)
		att := make([]byte, 512+r.IntN(3*1024))
		for j := range att {
			att[j] = byte(r.Uint32())
		}
		fmt.Fprintf(&b, "\n--%s\nContent-Type: application/pdf; name=\"report-%d.pdf\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"report-%d.pdf\"\n\n", boundary, i, i)
		enc := base64.StdEncoding.EncodeToString(att)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteByte('\n')
			enc = enc[76:]
		}
		b.WriteString(enc)
		fmt.Fprintf(&b, "\n--%s--\n", boundary)
	} else {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n")
		b.Write(text)
	}

	// Flags on about half: \Seen, some of those \Answered or \Flagged.
	flags := ""
	if r.IntN(2) == 0 {
		if r.IntN(8) == 0 {
			flags += "F"
		}
		if r.IntN(5) == 0 {
			flags += "R"
		}
		flags += "S"
	}
	data := b.Bytes()
	crlfSize := len(data) + bytes.Count(data, []byte{'\n'})
	name := fmt.Sprintf("%d.M%dP%dQ%d.imapbench,S=%d,W=%d:2,%s",
		date.Unix(), date.Nanosecond()/1000, 4000+i%30000, i+1, len(data), crlfSize, flags)
	return generated{name: name, data: data, date: date, hit: hit}
}

// address is one mailbox in one of the shapes found in real mail.
func address(r *rand.Rand) string {
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	local := strings.ToLower(first + "." + strings.ReplaceAll(last, "'", ""))
	domain := domains[r.IntN(len(domains))]
	switch r.IntN(20) {
	case 0, 1:
		return local + "@" + domain
	case 2:
		return fmt.Sprintf("%q <%s@%s>", last+", "+first, local, domain)
	case 3:
		name := unicodeNames[r.IntN(len(unicodeNames))]
		return fmt.Sprintf("%s <%s@%s>", mime.QEncoding.Encode("UTF-8", name), local, domain)
	}
	if strings.ContainsRune(last, '\'') {
		return fmt.Sprintf("%q <%s@%s>", first+" "+last, local, domain)
	}
	return fmt.Sprintf("%s %s <%s@%s>", first, last, local, domain)
}

func phrase(r *rand.Rand, n int) string {
	ws := make([]string, n)
	for j := range ws {
		ws[j] = words[r.IntN(len(words))]
	}
	ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
	return strings.Join(ws, " ")
}

// bodyText is about size bytes of paragraphs wrapped at 72 columns, with
// searchWord in it once when plant is set.
func bodyText(r *rand.Rand, size int, plant bool) []byte {
	var b bytes.Buffer
	b.Grow(size + 80)
	b.WriteString("Hello,\n\n")
	plantAt := -1
	if plant {
		plantAt = r.IntN(size)
	}
	col := 0
	for b.Len() < size {
		w := words[r.IntN(len(words))]
		if plantAt >= 0 && b.Len() >= plantAt {
			w, plantAt = searchWord, -1
		}
		if col+1+len(w) > 72 {
			b.WriteByte('\n')
			col = 0
			if r.IntN(8) == 0 {
				b.WriteByte('\n')
			}
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	if plantAt >= 0 {
		b.WriteString(" " + searchWord)
	}
	b.WriteString("\n\n-- \nSent from the imapbench corpus\n")
	return b.Bytes()
}
