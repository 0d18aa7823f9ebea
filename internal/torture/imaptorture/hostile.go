package imaptorture

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	msglimits "github.com/cistern-mail/cistern/internal/message"
)

// The hostile actor (Config.Hostile) appends messages built to make a
// server's ENVELOPE and BODYSTRUCTURE huge, to its own mailbox (Aux
// with hostileSuffix) while the other actors work, and fetches them:
//
//	kind        the message                                   the cap judged
//	addresses   a To: of 2*MaxFieldAddresses+1000 addresses   ENVELOPE: MaxFieldAddresses addresses
//	nested      hostileParts message/rfc822 parts, each with  BODYSTRUCTURE: MaxAddresses addresses
//	            a To: of hostileNestedTo addresses            over all envelopes
//	params      hostileParts*2 parts with 100 parameters each BODYSTRUCTURE: MaxMessageParams parameters
//
// Its addresses are at hostileHost and its parameter values are
// hostileValue, so that a response's share of them can be counted. The
// caps are Cistern's documented limits (internal/message/limits.go): a
// server without them (one that sends the whole list) is reported as
// oversized_response, as is one whose FETCH of such a message fails
// (NO, BAD, or a response past the reader's bounds) or whose response
// exceeds msglimits.MaxEncodedStructure.
const (
	hostileSuffix   = "-hostile"
	hostileHost     = "hostile.invalid"
	hostileValue    = "hv"
	hostileParts    = 60
	hostileNestedTo = 2 * msglimits.MaxAddresses / hostileParts
	// hostileKeep: messages beyond it are expunged, so that the mailbox
	// stays small.
	hostileKeep = 3
)

// hostileKinds are the kinds of hostile message, in the order the actor
// appends them.
var hostileKinds = []string{"addresses", "nested", "params"}

// hostileMessage builds a message of kind with Message-ID id.
func hostileMessage(kind, id string, rng *rand.Rand) []byte {
	var b strings.Builder
	addrs := func(n int) {
		b.WriteString("To: ")
		base := rng.IntN(1000)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",\r\n ")
			}
			b.WriteString("h" + strconv.Itoa(base+i) + "@" + hostileHost)
		}
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "From: Torture <torture@example.org>\r\nSubject: hostile %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n", kind, id)
	switch kind {
	case "addresses":
		addrs(2*msglimits.MaxFieldAddresses + 1000)
		b.WriteString("Content-Type: text/plain\r\n\r\nmany addresses\r\n")
	case "nested":
		b.WriteString("Content-Type: multipart/mixed; boundary=HB\r\n\r\n")
		for i := 0; i < hostileParts; i++ {
			b.WriteString("--HB\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@example.org\r\nSubject: inner\r\n")
			addrs(hostileNestedTo)
			b.WriteString("\r\ninner body\r\n")
		}
		b.WriteString("--HB--\r\n")
	case "params":
		b.WriteString("Content-Type: multipart/mixed; boundary=HB\r\n\r\n")
		for i := 0; i < 2*hostileParts; i++ {
			b.WriteString("--HB\r\nContent-Type: text/plain")
			for j := 0; j < 100; j++ {
				b.WriteString(";\r\n hp" + strconv.Itoa(j) + "=" + hostileValue)
			}
			b.WriteString("\r\n\r\npart\r\n")
		}
		b.WriteString("--HB--\r\n")
	}
	return []byte(b.String())
}

// hostileActor is the actor of Config.Hostile: one connection, its own
// mailbox.
type hostileActor struct {
	name string
	r    *run
	rng  *rand.Rand
	rate int
	box  string
	c    *imapConn
	n    int // messages appended
	// exists is the selected mailbox's size, as EXISTS and EXPUNGE told.
	exists uint32
}

// onUntagged follows the size of the selected mailbox.
func (h *hostileActor) onUntagged(r *Response, _ time.Time) error {
	switch r.Type {
	case "EXISTS":
		h.exists = r.Num
	case "EXPUNGE":
		if h.exists > 0 {
			h.exists--
		}
	}
	return nil
}

func (r *run) newHostileActor() *hostileActor {
	return &hostileActor{name: "hostile", r: r, rng: rand.New(rand.NewPCG(r.rng.Uint64(), r.rng.Uint64())), rate: r.cfg.Hostile, box: r.cfg.Aux + hostileSuffix}
}

// do runs one command as operation label and returns its tagged
// response.
func (h *hostileActor) do(label, line string) (*Response, error) {
	start := time.Now()
	resp, err := h.c.command(line, h.onUntagged)
	h.r.opDone(label, start, resp, err)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", line, err)
	}
	return resp, nil
}

func (h *hostileActor) open() error {
	c, err := h.r.dial()
	if err != nil {
		return err
	}
	h.c = c
	resp, err := h.do("LOGIN", "LOGIN "+quote(h.r.cfg.User)+" "+quote(h.r.cfg.Password))
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("LOGIN: %s", resp.Line)
	}
	if _, err := h.do("hostile CREATE", "CREATE "+quote(h.box)); err != nil {
		return err
	}
	if resp, err = h.do("hostile SELECT", "SELECT "+quote(h.box)); err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("SELECT %s: %s", h.box, resp.Line)
	}
	return h.trim(0)
}

// trim expunges all but the last keep messages.
func (h *hostileActor) trim(keep int) error {
	resp, err := h.do("hostile NOOP", "NOOP")
	if err != nil || resp.Type != "OK" || h.exists <= uint32(keep) {
		return err
	}
	set := "1:" + strconv.Itoa(int(h.exists)-keep)
	if _, err := h.do("hostile STORE", "STORE "+set+` +FLAGS.SILENT (\Deleted)`); err != nil {
		return err
	}
	_, err = h.do("hostile EXPUNGE", "EXPUNGE")
	return err
}

func (h *hostileActor) loop() error {
	if err := h.open(); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second / time.Duration(h.rate))
	defer tick.Stop()
	for !h.r.stopping() {
		<-tick.C
		if err := h.step(); err != nil {
			return err
		}
	}
	return h.trim(0)
}

// step appends one hostile message and fetches its ENVELOPE and its
// BODYSTRUCTURE, judging each response.
func (h *hostileActor) step() error {
	kind := hostileKinds[h.n%len(hostileKinds)]
	h.n++
	id := h.r.led.newMessageID()
	msg := hostileMessage(kind, id, h.rng)
	start := time.Now()
	resp, err := h.c.commandLiteral("APPEND "+quote(h.box)+" () ", msg, "", h.onUntagged)
	h.r.opDone("hostile APPEND", start, resp, err)
	if err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	if resp.Type != "OK" {
		return nil // refused (quota, size): nothing to fetch
	}
	if err := h.trim(hostileKeep); err != nil {
		return err
	}
	for _, item := range []string{"ENVELOPE", "BODYSTRUCTURE"} {
		if err := h.fetch(kind, item); err != nil {
			return err
		}
	}
	return nil
}

// fetch fetches item of the newest message (*) and judges the answer.
func (h *hostileActor) fetch(kind, item string) error {
	line := "FETCH * (" + item + ")"
	var got *Response
	start := time.Now()
	resp, err := h.c.command(line, func(r *Response, at time.Time) error {
		if r.Type == "FETCH" && r.Fetch != nil {
			got = r
		}
		return h.onUntagged(r, at)
	})
	h.r.opDone("hostile FETCH "+item, start, resp, err)
	at := h.r.now().Seconds()
	switch {
	case errors.Is(err, ErrMalformed):
		h.oversized(kind, item, at, line, "the response is past the reader's bounds: "+err.Error(), nil)
		return fmt.Errorf("%s: %w", line, err)
	case err != nil:
		return fmt.Errorf("%s: %w", line, err)
	case resp.Type != "OK":
		h.oversized(kind, item, at, line, "the FETCH failed", []string{resp.Line})
		return nil
	case got == nil:
		h.oversized(kind, item, at, line, "no FETCH response", []string{resp.Line})
		return nil
	}
	if got.Size > msglimits.MaxEncodedStructure {
		h.oversized(kind, item, at, line, fmt.Sprintf("a response of %d bytes, over %d", got.Size, msglimits.MaxEncodedStructure), []string{got.Line})
	}
	var v *Value
	if item == "ENVELOPE" {
		v = got.Fetch.Envelope
	} else {
		v = got.Fetch.BodyStructure
	}
	if v == nil {
		h.oversized(kind, item, at, line, "no "+item+" in the response", []string{got.Line})
		return nil
	}
	addrs, params := countHostile(*v)
	switch {
	case item == "ENVELOPE" && addrs > msglimits.MaxFieldAddresses:
		h.oversized(kind, item, at, line, fmt.Sprintf("%d addresses in one field, over %d", addrs, msglimits.MaxFieldAddresses), []string{got.Line})
	case item == "BODYSTRUCTURE" && addrs > msglimits.MaxAddresses:
		h.oversized(kind, item, at, line, fmt.Sprintf("%d addresses, over %d", addrs, msglimits.MaxAddresses), []string{got.Line})
	case params > msglimits.MaxMessageParams:
		h.oversized(kind, item, at, line, fmt.Sprintf("%d parameters, over %d", params, msglimits.MaxMessageParams), []string{got.Line})
	}
	return nil
}

func (h *hostileActor) oversized(kind, item string, at float64, line, detail string, evidence []string) {
	h.r.rec.violation(kind+"|"+item, Violation{Kind: OversizedResponse, At: at, Session: h.name, Command: line,
		Detail: fmt.Sprintf("%s of the %s message: %s", item, kind, detail), Evidence: evidence})
}

// countHostile counts the hostile addresses (host hostileHost) and
// parameter values (hostileValue) in v.
func countHostile(v Value) (addrs, params int) {
	switch v.Kind {
	case listValue:
		for _, c := range v.List {
			a, p := countHostile(c)
			addrs, params = addrs+a, params+p
		}
	case stringValue:
		switch {
		case strings.EqualFold(v.Text, hostileHost):
			addrs++
		case v.Text == hostileValue:
			params++
		}
	}
	return addrs, params
}
