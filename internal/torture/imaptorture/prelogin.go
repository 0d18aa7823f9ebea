package imaptorture

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"
)

// The pre-login actor: Config.PreLogin connections that never log in,
// held open against the server while the other actors work (issue 11:
// connections that never log in must not fill every slot). Half of them
// send nothing; the other half are slowloris clients that send a LOGIN
// line a byte at a time and never finish it. A connection the server
// closes is opened again at once, as an attacker would. Against an IPv4
// loopback server they come from many addresses of 127.0.0.0/8 (Linux
// routes all of it to lo), so that per-address limits do not stop them.
//
// Meanwhile the actor logs in itself, a connection at a time, every
// probeInterval: a probe that gets no greeting, a BYE instead of one, or
// no tagged OK to its LOGIN is a LoginStarved violation. The probes are
// the torture's own sessions: a server that lets strangers starve its
// users breaks its service even when it loses no mail.
const (
	// probeInterval paces the login probes.
	probeInterval = 250 * time.Millisecond
	// preLoginPerAddr is the number of held connections per source
	// address.
	preLoginPerAddr = 10
	// slowlorisEvery is the pause between two bytes of a slowloris
	// connection.
	slowlorisEvery = time.Second
	// redialPause is the pause before a closed connection is opened
	// again: the churn of an attacker that reconnects, bounded so that
	// the torture's own load stays the server's main work.
	redialPause = 500 * time.Millisecond
	// maxPreLogin bounds Config.PreLogin (each is a file descriptor here
	// and one at the server).
	maxPreLogin = 20_000
)

// slowlorisLine is what a slowloris connection sends, a byte at a time.
const slowlorisLine = "a1 LOGIN attacker {1000000}\r\n"

type preLoginActor struct {
	r     *run
	rng   *rand.Rand // the probes' choices; used by loop only
	local func(i int) net.Addr

	wg sync.WaitGroup
}

func (r *run) newPreLoginActor() *preLoginActor {
	a := &preLoginActor{r: r, rng: rand.New(rand.NewPCG(r.rng.Uint64(), 3)), local: func(int) net.Addr { return nil }}
	host, _, _ := net.SplitHostPort(r.cfg.IMAP)
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil && ip.IsLoopback() {
		a.local = func(i int) net.Addr {
			n := i / preLoginPerAddr
			return &net.TCPAddr{IP: net.IPv4(127, 77, byte(n>>8), byte(n))}
		}
	}
	return a
}

// loop holds the connections and probes until the run stops.
func (a *preLoginActor) loop() {
	ctx, cancel := context.WithCancel(a.r.ctx)
	defer cancel()
	for i := range a.r.cfg.PreLogin {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.hold(ctx, i, i%2 == 1)
		}()
	}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for !a.r.stopping() {
		select {
		case <-ctx.Done():
		case <-tick.C:
			a.probe()
		}
	}
	cancel()
	a.wg.Wait()
}

// hold keeps connection i open, sending nothing or, when slow, a
// slowloris line; it opens it again when the server closes it.
func (a *preLoginActor) hold(ctx context.Context, i int, slow bool) {
	d := net.Dialer{Timeout: a.r.cfg.Timeout, LocalAddr: a.local(i)}
	for !a.r.stopping() && ctx.Err() == nil {
		start := time.Now()
		nc, err := d.DialContext(ctx, "tcp", a.r.cfg.IMAP)
		if err != nil {
			a.r.opDone("pre-login connect", start, nil, err)
			sleepCtx(ctx, redialPause)
			continue
		}
		a.r.opDone("pre-login connect", start, &Response{Type: "OK"}, nil)
		stop := context.AfterFunc(ctx, func() { nc.Close() })
		done := make(chan struct{})
		if slow {
			go func() {
				defer close(done)
				for j := 0; ; j = (j + 1) % len(slowlorisLine) {
					if !sleepCtx(ctx, slowlorisEvery) {
						return
					}
					if _, err := nc.Write([]byte{slowlorisLine[j]}); err != nil {
						return
					}
				}
			}()
		} else {
			close(done)
		}
		// Whatever the server says (its greeting, a BYE) is read and
		// dropped, until it closes the connection.
		io.Copy(io.Discard, nc)
		nc.Close()
		stop()
		<-done
		sleepCtx(ctx, redialPause)
	}
}

// probe connects and logs in as the torture's user, and reports
// LoginStarved when the server does not let it.
func (a *preLoginActor) probe() {
	start := time.Now()
	c, err := a.r.dial()
	if err != nil {
		a.r.opDone("LOGIN probe", start, nil, err)
		a.starved(start, "no greeting", err.Error())
		return
	}
	defer func() {
		c.logout()
		a.r.forget(c)
	}()
	resp, err := c.command("LOGIN "+quote(a.r.cfg.User)+" "+quote(a.r.cfg.Password), nil)
	a.r.opDone("LOGIN probe", start, resp, err)
	switch {
	case err != nil:
		a.starved(start, "LOGIN got no answer", err.Error())
	case resp.Type != "OK":
		a.starved(start, "LOGIN refused", resp.Line)
	}
}

func (a *preLoginActor) starved(start time.Time, detail, evidence string) {
	if a.r.stopping() || a.r.finishing.Load() {
		return
	}
	a.r.rec.violation("", Violation{Kind: LoginStarved, At: a.r.rec.since(start).Seconds(), Session: "prelogin",
		Command: "LOGIN", Detail: fmt.Sprintf("a login of the torture's own with %d connections held open that never log in: %s", a.r.cfg.PreLogin, detail),
		Evidence: []string{strings.TrimSpace(evidence)}})
}

// sleepCtx waits d or until ctx is done, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
