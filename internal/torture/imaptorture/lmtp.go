package imaptorture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

const (
	// maxReplyLines bounds a multiline SMTP reply (LHLO's has about ten).
	maxReplyLines = 100
	// lmtpRedials bounds reconnections of one deliverer.
	lmtpRedials = 5
)

// lmtpDeliverer delivers new messages over LMTP (RFC 2033), one
// transaction at a time, and records each 250 as an acknowledgement.
type lmtpDeliverer struct {
	name string
	r    *run
	rng  *rand.Rand

	nc net.Conn
	br *bufio.Reader
}

// loop delivers until the run stops, reconnecting after a broken
// connection a few times.
func (d *lmtpDeliverer) loop() {
	tick := time.NewTicker(time.Second / lmtpPerSecond)
	defer tick.Stop()
	redials := 0
	for !d.r.stopping() {
		if d.nc == nil {
			if err := d.dial(); err != nil {
				d.r.rec.failure(d.name, err)
				if redials++; redials > lmtpRedials {
					return
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
		}
		<-tick.C
		if d.r.size.Load() > int64(2*d.r.cfg.Messages) {
			continue
		}
		if err := d.deliver(); err != nil {
			d.r.rec.failure(d.name, err)
			d.nc.Close()
			d.nc = nil
			if redials++; redials > lmtpRedials {
				return
			}
		}
	}
	if d.nc != nil {
		d.command("QUIT")
		d.nc.Close()
	}
}

func (d *lmtpDeliverer) dial() error {
	nc, err := net.DialTimeout("tcp", d.r.cfg.LMTP, d.r.cfg.Timeout)
	if err != nil {
		return err
	}
	d.nc, d.br = nc, bufio.NewReaderSize(nc, 4<<10)
	code, text, err := d.reply()
	if err == nil && code != 220 {
		err = fmt.Errorf("greeting %d %s", code, text)
	}
	if err == nil {
		err = d.expect("LHLO torture.example.org", 250)
	}
	if err != nil {
		nc.Close()
		d.nc = nil
		return fmt.Errorf("LMTP %s: %w", d.r.cfg.LMTP, err)
	}
	return nil
}

// reply reads one SMTP reply (RFC 5321 §4.2) under the deadline.
func (d *lmtpDeliverer) reply() (int, string, error) {
	d.nc.SetReadDeadline(time.Now().Add(d.r.cfg.Timeout))
	var text []byte
	for range maxReplyLines {
		line, err := readLine(d.br, 4096)
		if err != nil {
			return 0, "", err
		}
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return 0, "", fmt.Errorf("malformed reply %q", line)
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil || code < 200 || code > 599 {
			return 0, "", fmt.Errorf("malformed reply %q", line)
		}
		text = append(text, line...)
		if len(line) == 3 || line[3] == ' ' {
			return code, string(text), nil
		}
		text = append(text, ' ')
	}
	return 0, "", errors.New("reply of too many lines")
}

func (d *lmtpDeliverer) write(b []byte) error {
	d.nc.SetWriteDeadline(time.Now().Add(d.r.cfg.Timeout))
	_, err := d.nc.Write(b)
	return err
}

func (d *lmtpDeliverer) command(line string) (int, string, error) {
	if err := d.write([]byte(line + "\r\n")); err != nil {
		return 0, "", err
	}
	return d.reply()
}

func (d *lmtpDeliverer) expect(line string, want int) error {
	code, text, err := d.command(line)
	if err == nil && code != want {
		err = fmt.Errorf("%s: %s", line, text)
	}
	return err
}

// deliver runs one transaction for one new message.
func (d *lmtpDeliverer) deliver() error {
	id := d.r.led.newMessageID()
	msg := newMessage(id, "LMTP", d.rng)
	start := time.Now()
	d.r.led.created(id, "LMTP", d.r.rec.since(start))
	d.r.led.wrote(id, msg, false)
	code, err := d.transaction(msg)
	out := outOK
	switch {
	case err != nil:
		out = outFailed
	case code/100 != 2:
		out = outNo
	}
	d.r.rec.op("LMTP", start, time.Since(start), out)
	if err != nil {
		return err
	}
	if code == 250 {
		d.r.led.acked(id, 0, 0, d.r.rec.since(time.Now()), nil)
		d.r.counts.lmtp.Add(1)
	}
	return nil
}

// transaction sends MAIL, RCPT, DATA and the message (dot-stuffed) and
// returns the code of the reply for the one recipient.
func (d *lmtpDeliverer) transaction(msg []byte) (int, error) {
	if err := d.expect("MAIL FROM:<torture@example.org>", 250); err != nil {
		return 0, err
	}
	code, _, err := d.command("RCPT TO:<" + d.r.cfg.Rcpt + ">")
	if err != nil {
		return 0, err
	}
	if code != 250 {
		return code, d.expect("RSET", 250)
	}
	if err := d.expect("DATA", 354); err != nil {
		return 0, err
	}
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(msg, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) && b.Len() > 0 {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	if err := d.write(b.Bytes()); err != nil {
		return 0, err
	}
	code, _, err = d.reply()
	return code, err
}
