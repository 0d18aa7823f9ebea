package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWriteDotStuffed(t *testing.T) {
	tests := []struct {
		name      string
		parts     []string
		want      string
		lineStart bool // after the last part
	}{
		{"plain", []string{"a\r\nb\r\n"}, "a\r\nb\r\n", true},
		{"leading dot", []string{".a\r\n"}, "..a\r\n", true},
		{"dot after a line end", []string{"a\r\n.b\r\n"}, "a\r\n..b\r\n", true},
		{"lone dot line", []string{"a\r\n.\r\nb\r\n"}, "a\r\n..\r\nb\r\n", true},
		{"dots in a line", []string{"a.b\r\n"}, "a.b\r\n", true},
		{"split before the dot", []string{"a\r\n", ".b\r\n"}, "a\r\n..b\r\n", true},
		{"split after the dot", []string{"a\r\n.", "b\r\n"}, "a\r\n..b\r\n", true},
		{"no final line end", []string{"a\r\n.b"}, "a\r\n..b", false},
		{"empty part", []string{"a\r\n", "", ".b\r\n"}, "a\r\n..b\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			lineStart := true
			for _, p := range tt.parts {
				lineStart = writeDotStuffed(w, []byte(p), lineStart)
			}
			w.Flush()
			if out.String() != tt.want || lineStart != tt.lineStart {
				t.Errorf("got %q, line start %v; want %q, %v", out.String(), lineStart, tt.want, tt.lineStart)
			}
		})
	}
}

// fakeServer answers one LMTP session on c from a script: for each
// command it reads (the data up to "." counts as one), the next reply.
func fakeServer(t *testing.T, c net.Conn, greeting string, replies map[string]string) <-chan []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		defer c.Close()
		var seen []string
		defer func() { got <- seen }()
		r := bufio.NewReader(c)
		fmt.Fprint(c, greeting)
		inData := false
		var data strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if inData {
				if line == ".\r\n" {
					inData = false
					seen = append(seen, "DATA:"+data.String())
					fmt.Fprint(c, replies["."])
					continue
				}
				data.WriteString(line)
				continue
			}
			cmd := strings.TrimRight(line, "\r\n")
			seen = append(seen, cmd)
			verb, _, _ := strings.Cut(cmd, ":")
			verb, _, _ = strings.Cut(verb, " ")
			if rep, ok := replies[cmd]; ok {
				fmt.Fprint(c, rep)
			} else {
				fmt.Fprint(c, replies[verb])
			}
			if verb == "DATA" {
				inData = true
			}
			if verb == "QUIT" {
				return
			}
		}
	}()
	return got
}

func TestDeliver(t *testing.T) {
	client, server := net.Pipe()
	done := fakeServer(t, server, "220 fake LMTP\r\n", map[string]string{
		"LHLO":                       "250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
		"MAIL":                       "250 2.1.0 ok\r\n",
		"RCPT TO:<a@localhost>":      "250 2.1.5 ok\r\n",
		"RCPT TO:<nobody@localhost>": "550 5.1.1 no such user\r\n",
		"RCPT TO:<b@localhost>":      "250 2.1.5 ok\r\n",
		"DATA":                       "354 go ahead\r\n",
		// One reply per accepted recipient, the second multiline.
		".":    "250 2.0.0 <a@localhost> saved\r\n452-4.2.2 <b@localhost>\r\n452 4.2.2 over quota\r\n",
		"QUIT": "221 bye\r\n",
	})
	c := &lmtpClient{nc: client, r: bufio.NewReader(client), w: bufio.NewWriter(client)}
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if rep, err := c.readReply(); err != nil || rep.code != 220 {
		t.Fatalf("greeting: %v, %v", rep, err)
	}
	if rep, err := c.command("LHLO test", 250); err != nil || rep.text != "fake\nPIPELINING\n8BITMIME" {
		t.Fatalf("LHLO: %q, %v", rep.text, err)
	}
	replies, err := c.deliver("s@example.org", []string{"a@localhost", "nobody@localhost", "b@localhost"},
		[]byte("Subject: x\r\n\r\n"), []byte(".hidden\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	want := []reply{
		{250, "2.0.0 <a@localhost> saved"},
		{550, "5.1.1 no such user"},
		{452, "4.2.2 <b@localhost>\n4.2.2 over quota"},
	}
	if fmt.Sprint(replies) != fmt.Sprint(want) {
		t.Errorf("replies %v, want %v", replies, want)
	}
	if err := c.quit(); err != nil {
		t.Fatal(err)
	}
	seen := <-done
	wantSeen := []string{"LHLO test", "MAIL FROM:<s@example.org>", "RCPT TO:<a@localhost>", "RCPT TO:<nobody@localhost>",
		"RCPT TO:<b@localhost>", "DATA", "DATA:Subject: x\r\n\r\n..hidden\r\nbody\r\n", "QUIT"}
	if strings.Join(seen, "|") != strings.Join(wantSeen, "|") {
		t.Errorf("server saw\n%q\nwant\n%q", seen, wantSeen)
	}
}

func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{"25\r\n", "abc ok\r\n", "250x\r\n", "250-a\r\n251 b\r\n", "999 x\r\n"} {
		client, server := net.Pipe()
		go func() {
			server.Write([]byte(in))
			server.Close()
		}()
		c := &lmtpClient{nc: client, r: bufio.NewReader(client)}
		if rep, err := c.readReply(); err == nil {
			t.Errorf("readReply(%q) = %v, want an error", in, rep)
		}
		client.Close()
	}
}

func TestBody(t *testing.T) {
	for _, size := range []int{4 << 10, 100 << 10, 1000} {
		b := body(size)
		if len(b) != size {
			t.Errorf("body(%d) has %d bytes", size, len(b))
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Errorf("body(%d) does not end in CRLF", size)
		}
		lines := bytes.Split(bytes.TrimSuffix(b, []byte("\r\n")), []byte("\r\n"))
		dots := 0
		for _, l := range lines {
			if bytes.ContainsAny(l, "\r\n") || len(l) > 78 {
				t.Fatalf("body(%d): bad line %q", size, l)
			}
			if bytes.HasPrefix(l, []byte(".")) {
				dots++
			}
		}
		if dots == 0 {
			t.Errorf("body(%d): no line starts with '.'", size)
		}
	}
}

func TestHeaderField(t *testing.T) {
	msg := []byte("Return-Path: <s@x>\nMessage-ID: <a@b>\n\nMessage-ID: <body@b>\n")
	if got := headerField(msg, "message-id"); got != "<a@b>" {
		t.Errorf("got %q", got)
	}
	if got := headerField([]byte("A: b\r\n\r\nMessage-ID: <x>\r\n"), "Message-ID"); got != "" {
		t.Errorf("a field of the body was taken: %q", got)
	}
}
