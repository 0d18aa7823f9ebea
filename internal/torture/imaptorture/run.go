package imaptorture

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// Config configures a run. Zero fields take the defaults of
// [Config.withDefaults].
type Config struct {
	// IMAP is the server's host:port; User and Password log in.
	IMAP     string
	User     string
	Password string
	// Mailbox is the mailbox under test; Aux receives COPY and MOVE.
	Mailbox string
	Aux     string
	// LMTP, when set, is an LMTP server's host:port that delivers to
	// Mailbox (INBOX) for Rcpt; LMTPDeliverers connections deliver.
	LMTP           string
	Rcpt           string
	LMTPDeliverers int
	// Maildir, when set, is Mailbox's Maildir directory on this machine:
	// foreign writers rename, deliver and delete there, and the final
	// check compares it with what the server says.
	Maildir string
	// RenamesPerSecond paces the foreign renamer.
	RenamesPerSecond int
	// AuxLifecycle, when above 0, runs an IMAP actor that takes that
	// many steps a second on Aux: RENAME to a fresh name and back,
	// DELETE and CREATE, APPEND, SELECT or EXAMINE and FETCH.
	AuxLifecycle int
	// FolderLifecycle, when above 0, runs an IMAP actor that takes that
	// many steps a second on sibling folders of Aux: CREATE, APPEND,
	// SELECT or EXAMINE, DELETE, CREATE again.
	FolderLifecycle int
	// ForeignFolders, when above 0 and with Maildir, renames Aux's
	// folder directory away and back, or replaces a sibling folder's
	// directory with a fresh Maildir, that many times a second.
	ForeignFolders int
	// ForeignLinks, when above 0 and with Maildir, plants symbolic links
	// in the Maildir that many times a second (foreignLinks): folder
	// links and message links to decoys outside the account, which a
	// server must never follow (FollowedSymlink).
	ForeignLinks int
	// PreLogin, when above 0, runs an actor that holds that many
	// connections open without logging in (idle and slowloris) and
	// checks that the torture can still log in (prelogin.go).
	PreLogin int
	// Hostile, when above 0, runs an IMAP actor that takes that many
	// steps a second on its own mailbox (Aux with "-hostile"): APPEND a
	// message built to make ENVELOPE or BODYSTRUCTURE huge (many
	// addresses, nested message/rfc822 parts, many parameters), FETCH
	// both (hostile.go).
	Hostile int
	// Resync is the number of resync actors (resync.go): sessions that
	// disconnect, stay away a while and come back with SELECT (QRESYNC)
	// or FETCH (CHANGEDSINCE); they run only when the server offers
	// CONDSTORE. ResyncAway is the longest they stay away (the shortest
	// is a fifth of it); 0 is DefaultResyncAway.
	Resync     int
	ResyncAway time.Duration
	// Sessions is the number of IMAP sessions; Duration how long they
	// run.
	Sessions int
	Duration time.Duration
	// Messages are appended before the start; the actors keep the
	// mailbox between half and twice that many.
	Messages int
	// Timeout bounds every read and write of every connection, and
	// every command (IDLE: beyond its idling).
	Timeout time.Duration
	// AllowRemote permits addresses that are not loopback.
	AllowRemote bool
	// Clear empties Mailbox and Aux first; otherwise a non-empty Mailbox
	// is refused.
	Clear bool
	// Seed seeds the actors' random choices; 0 picks one.
	Seed uint64
	// Progress, when set, receives a line per phase.
	Progress io.Writer
}

// Defaults and bounds of a run.
const (
	DefaultMailbox  = "INBOX"
	DefaultAux      = "Torture.Aux"
	DefaultTimeout  = 30 * time.Second
	DefaultMessages = 100
	DefaultRenames  = 200
	// DefaultResyncAway is the longest a resync actor stays away.
	DefaultResyncAway = 5 * time.Second
	maxSessions       = 256
	maxMessages       = 100_000
	maxDuration       = 24 * time.Hour
	// lmtpPerSecond paces each LMTP deliverer.
	lmtpPerSecond = 20
	// quietRounds bounds the NOOP rounds of the final check; quietPause
	// is the pause between two.
	quietRounds = 20
	quietPause  = 200 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.Mailbox == "" {
		c.Mailbox = DefaultMailbox
	}
	if c.Aux == "" {
		c.Aux = DefaultAux
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Messages == 0 {
		c.Messages = DefaultMessages
	}
	if c.RenamesPerSecond == 0 {
		c.RenamesPerSecond = DefaultRenames
	}
	if c.ResyncAway == 0 {
		c.ResyncAway = DefaultResyncAway
	}
	if c.LMTP != "" && c.LMTPDeliverers == 0 {
		c.LMTPDeliverers = 1
	}
	if c.Rcpt == "" {
		c.Rcpt = c.User
		if !strings.Contains(c.Rcpt, "@") {
			c.Rcpt += "@localhost"
		}
	}
	return c
}

// ErrRemote refuses an address that is not loopback.
var ErrRemote = errors.New("not a loopback address (pass AllowRemote / --allow-remote to torture another machine)")

func (c *Config) validate() error {
	switch {
	case c.IMAP == "":
		return errors.New("imaptorture: no IMAP address")
	case c.User == "":
		return errors.New("imaptorture: no user")
	case c.Sessions < 1 || c.Sessions > maxSessions:
		return fmt.Errorf("imaptorture: sessions must be 1..%d", maxSessions)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return fmt.Errorf("imaptorture: duration must be in (0, %v]", maxDuration)
	case c.Messages < 1 || c.Messages > maxMessages:
		return fmt.Errorf("imaptorture: messages must be 1..%d", maxMessages)
	case c.LMTPDeliverers < 0 || c.LMTPDeliverers > maxSessions:
		return fmt.Errorf("imaptorture: LMTP deliverers must be 0..%d", maxSessions)
	case c.Resync < 0 || c.Resync > maxSessions:
		return fmt.Errorf("imaptorture: resync actors must be 0..%d", maxSessions)
	case c.ResyncAway < 0 || c.ResyncAway > time.Hour:
		return errors.New("imaptorture: the resync actors' time away must be at most an hour")
	case c.PreLogin < 0 || c.PreLogin > maxPreLogin:
		return fmt.Errorf("imaptorture: pre-login connections must be 0..%d", maxPreLogin)
	case c.Timeout < 0 || c.RenamesPerSecond < 0:
		return errors.New("imaptorture: negative timeout or rate")
	case c.AuxLifecycle < 0 || c.AuxLifecycle > maxLifecycleRate || c.FolderLifecycle < 0 || c.FolderLifecycle > maxLifecycleRate ||
		c.ForeignFolders < 0 || c.ForeignFolders > maxLifecycleRate || c.ForeignLinks < 0 || c.ForeignLinks > maxLifecycleRate || c.Hostile < 0 || c.Hostile > maxLifecycleRate:
		return fmt.Errorf("imaptorture: lifecycle, link and hostile rates must be 0..%d", maxLifecycleRate)
	case strings.ContainsAny(c.Mailbox+c.Aux, "\r\n\"\\") || c.Mailbox == c.Aux:
		return errors.New("imaptorture: mailbox names must differ and hold no quotes, backslashes or line ends")
	}
	addrs := []string{c.IMAP}
	if c.LMTP != "" {
		addrs = append(addrs, c.LMTP)
	}
	for _, a := range addrs {
		if err := checkLoopback(a, c.AllowRemote); err != nil {
			return err
		}
	}
	if c.Maildir != "" {
		for _, sub := range []string{"new", "cur", "tmp"} {
			if fi, err := os.Stat(filepath.Join(c.Maildir, sub)); err != nil || !fi.IsDir() {
				return fmt.Errorf("imaptorture: %s is not a Maildir: %s/ missing", c.Maildir, sub)
			}
		}
	}
	if c.Maildir != "" && (c.ForeignFolders > 0 || c.ForeignLinks > 0) {
		root := maildirRoot(c.Mailbox, c.Maildir)
		if root == "" {
			return fmt.Errorf("imaptorture: the Maildir++ root of %s is not known from %s (set the foreign folder rate to 0)", c.Mailbox, c.Maildir)
		}
		for _, name := range append(siblingNames(c.Aux), c.Aux, c.Aux+"-away-0-f0") {
			if _, err := folderDir(root, name); err != nil {
				return fmt.Errorf("imaptorture: %q has no Maildir++ folder directory: %w", name, err)
			}
		}
	}
	return nil
}

// checkLoopback refuses a host:port whose host is not a loopback
// address, unless allowed.
func checkLoopback(addr string, allowed bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("imaptorture: address %q: %w", addr, err)
	}
	if allowed {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("imaptorture: %s: %w", addr, ErrRemote)
		}
		return nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("imaptorture: %s: %w", addr, ErrRemote)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("imaptorture: %s: %w", addr, ErrRemote)
		}
	}
	return nil
}

// run is one run's shared state.
type run struct {
	cfg Config
	ctx context.Context
	rec *recorder
	led *ledger
	rng *rand.Rand // the run's seeds; used before the actors start

	stop      atomic.Bool  // the actors' time is up
	finishing atomic.Bool  // the final check runs: operations are not counted
	size      atomic.Int64 // the mailbox size a session saw last

	mu    sync.Mutex // guards conns
	conns map[*imapConn]bool

	// recent is who was shown each message \Recent (recent.go).
	recent recentBook
	// modseqs are the MODSEQs and HIGHESTMODSEQs told (resync.go).
	modseqs modseqBook
	// emailIDs are the EMAILIDs told (objectid.go).
	emailIDs emailIDBook

	// links is the symbolic link actor, nil when off; set before the
	// first connection, every connection's responses go through its
	// check.
	links *foreignLinks

	counts struct {
		seeded, appended, lmtp, foreignDelivered, foreignDeleted   atomic.Int64
		creates, deletes, renames, foreignRenames, foreignRemovals atomic.Int64
		folderAppended, reconnects, loginRetries, resyncs          atomic.Int64
		condStores, condStale, condModified                        atomic.Int64
		recent, announced                                          int // set by the final check
	}
}

func (r *run) stopping() bool { return r.stop.Load() }

// now is the time on the run's clock.
func (r *run) now() time.Duration { return r.rec.since(time.Now()) }

// opDone records an operation that began at start, unless the final
// check runs.
func (r *run) opDone(label string, start time.Time, resp *Response, err error) {
	if !r.finishing.Load() {
		r.rec.op(label, start, time.Since(start), outcomeOf(resp, err))
	}
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "torture imap: "+format+"\n", args...)
	}
}

// dial opens an IMAP connection that a hard stop closes.
// seedName is the session that appends the first messages; they are
// made by "APPEND seed".
const seedName = "seed"

// admitTries bounds the logins retried after the server ended the
// connection before it logged in: a server short of room for
// connections not logged in closes some to admit new ones (Dovecot's
// client_destroy_oldest, Cistern's prelogin.go), which is no fault of
// the mailbox; a client logs in again, and so does the run (the result
// notes how often). A connection that logged in is never retried.
const admitTries = 5

// admitted runs login (dial and log in), again after a BYE or a closed
// connection, closing what it left with drop, up to admitTries times.
func (r *run) admitted(login func() error, drop func()) error {
	for try := 1; ; try++ {
		err := login()
		if err == nil || try == admitTries || !errors.Is(err, errBye) && !errors.Is(err, ErrClosed) {
			return err
		}
		drop()
		r.counts.loginRetries.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *run) dial() (*imapConn, error) {
	c, err := dialIMAP(r.ctx, r.cfg.IMAP, r.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if r.links != nil {
		c.watch = r.links.watchResponse
	}
	r.mu.Lock()
	r.conns[c] = true
	r.mu.Unlock()
	return c, nil
}

// forget drops a connection that is closed from the ones a hard stop
// closes.
func (r *run) forget(c *imapConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

func (r *run) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.close()
	}
}

func (r *run) newSession(name string) *session {
	return &session{name: name, r: r, rng: rand.New(rand.NewPCG(r.rng.Uint64(), r.rng.Uint64()))}
}

// badAppendShare: one APPEND in this many is malformed after its
// literal.
const badAppendShare = 25

// appendMessage appends a new message with flags and records it.
func (r *run) appendMessage(s *session, flags []string) (string, error) {
	id := r.led.newMessageID()
	msg := newMessage(id, "APPEND "+s.name, s.rng)
	start := time.Now()
	r.led.created(id, "APPEND "+s.name, r.rec.since(start))
	r.led.wrote(id, msg, true)
	// One in badAppendShare goes on after its literal: a command that
	// does not parse, whose BAD must leave nothing behind.
	suffix := ""
	if s.name != seedName && s.rng.IntN(badAppendShare) == 0 {
		suffix = " x-trailing"
	}
	s.cur = curCmd{line: "APPEND " + quote(r.cfg.Mailbox) + " (" + strings.Join(flags, " ") + ") {" + strconv.Itoa(len(msg)) + "}" + suffix, sent: r.rec.since(start)}
	x := r.led.transferSent("APPEND", s.name, s.cur.line, r.cfg.Mailbox, []string{id}, nil, s.cur.sent)
	resp, err := s.c.commandLiteral("APPEND "+quote(r.cfg.Mailbox)+" ("+strings.Join(flags, " ")+") ", msg, suffix, s.onUntagged)
	if !r.finishing.Load() && !s.quiet {
		r.rec.op("APPEND", start, time.Since(start), outcomeOf(resp, err))
	}
	r.led.transferAnswered(x, resp, err, r.now())
	if err != nil {
		return id, s.wrap(err)
	}
	if resp.Type != "OK" {
		return id, nil
	}
	at := r.rec.since(time.Now())
	validity, uid, ok := appendUID(resp)
	if ok {
		r.led.uidValidityIs(validity, at, s, resp.Line)
		r.led.transferMade(x, id, validity, uid)
	}
	r.led.acked(id, uid, validity, at, s)
	if s.name == seedName {
		r.counts.seeded.Add(1)
	} else {
		r.counts.appended.Add(1)
	}
	return id, nil
}

// Run tortures the server and checks what every session was told. The
// error is for a run that could not be made (bad configuration, no
// server, a mailbox that is not empty); broken guarantees are in the
// result, and so are errors of single actors.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		for _, c := range b {
			seed = seed<<8 | uint64(c)
		}
	}
	var idb [4]byte
	crand.Read(idb[:])
	began := time.Now()
	rec := newRecorder(began)
	r := &run{cfg: cfg, ctx: ctx, rec: rec, led: newLedger(rec, hex.EncodeToString(idb[:])), rng: rand.New(rand.NewPCG(seed, 0x1a9)), conns: make(map[*imapConn]bool)}
	r.led.mailbox = cfg.Mailbox
	defer r.closeAll()
	r.progress("seed %d", seed)

	res := &Result{Target: cfg.IMAP, Mailbox: cfg.Mailbox, LMTP: cfg.LMTP, Maildir: cfg.Maildir, Sessions: cfg.Sessions, Started: began.UTC(),
		Actors: map[string]int{"imap": cfg.Sessions, "lmtp": cfg.LMTPDeliverers}}
	if cfg.Maildir != "" {
		res.Actors["foreign"] = 3
		if cfg.ForeignFolders > 0 {
			res.Actors["foreign folders"] = 1
		}
		if cfg.ForeignLinks > 0 {
			res.Actors["foreign links"] = 1
		}
	}
	if cfg.AuxLifecycle > 0 {
		res.Actors["aux lifecycle"] = 1
	}
	if cfg.FolderLifecycle > 0 {
		res.Actors["folder lifecycle"] = 1
	}
	if cfg.Maildir != "" && cfg.ForeignLinks > 0 {
		links, err := newForeignLinks(r, maildirRoot(cfg.Mailbox, cfg.Maildir), r.rng.Uint64())
		if err != nil {
			return nil, fmt.Errorf("imaptorture: the symbolic link actor's decoys: %w", err)
		}
		r.links = links
		defer os.RemoveAll(links.decoy)
	}
	if cfg.PreLogin > 0 {
		res.Actors["pre-login"] = cfg.PreLogin
	}
	if cfg.Hostile > 0 {
		res.Actors["hostile"] = 1
	}
	greeting, caps, err := r.setup()
	if err != nil {
		return nil, err
	}
	res.Greeting, res.Capabilities = greeting, caps

	offered := make(map[string]bool, len(caps))
	for _, c := range caps {
		offered[strings.ToUpper(c)] = true
	}
	resyncs, note := r.newResyncActors(cfg.Resync, offered)
	if note != "" {
		r.progress("%s", note)
		res.Notes = append(res.Notes, note)
	}
	if len(resyncs) > 0 {
		res.Actors["resync"] = len(resyncs)
	}
	if !offered["CONDSTORE"] {
		r.progress("%s", condNote)
		res.Notes = append(res.Notes, condNote)
	}

	r.progress("%d sessions for %v", cfg.Sessions, cfg.Duration)
	loadStart := time.Now()
	sessions := make([]*session, cfg.Sessions)
	for i := range sessions {
		sessions[i] = r.newSession("imap-" + strconv.Itoa(i+1))
		// Half the sessions fetch MODSEQ with FLAGS, which enables
		// CONDSTORE for them (RFC 7162 §3.1).
		sessions[i].condstore = offered["CONDSTORE"] && sessions[i].rng.IntN(2) == 0
		sessions[i].objectid = offered["OBJECTID"]
	}
	var wg sync.WaitGroup
	dead := make([]bool, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.open()
			if err == nil {
				err = s.loop()
			}
			if err != nil {
				dead[i] = true
				rec.failure(s.name, err)
			}
		}()
	}
	for _, a := range resyncs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.loop(); err != nil {
				rec.failure(a.name, err)
			}
		}()
	}
	for i := range cfg.LMTPDeliverers {
		d := &lmtpDeliverer{name: "lmtp-" + strconv.Itoa(i+1), r: r, rng: rand.New(rand.NewPCG(r.rng.Uint64(), 2))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.loop()
		}()
	}
	var fw *foreignWriters
	if cfg.Maildir != "" {
		fw = newForeignWriters(r, r.rng.Uint64())
		wg.Add(1)
		go func() {
			defer wg.Done()
			fw.run()
		}()
	}
	var lives []*lifeActor
	if cfg.AuxLifecycle > 0 {
		lives = append(lives, r.newLifeActor("life-aux", cfg.AuxLifecycle, auxSteps, []string{cfg.Aux}))
	}
	if cfg.FolderLifecycle > 0 {
		lives = append(lives, r.newLifeActor("life-folders", cfg.FolderLifecycle, folderSteps, siblingNames(cfg.Aux)))
	}
	for _, a := range lives {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.loop(); err != nil {
				rec.failure(a.name, err)
			}
		}()
	}
	if r.links != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.links.run(cfg.ForeignLinks); err != nil {
				rec.failure("foreign links", err)
			}
		}()
	}
	if cfg.Hostile > 0 {
		h := r.newHostileActor()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.loop(); err != nil {
				rec.failure(h.name, err)
			}
		}()
	}
	if cfg.Maildir != "" && cfg.ForeignFolders > 0 {
		ff := newForeignFolders(r, maildirRoot(cfg.Mailbox, cfg.Maildir), r.rng.Uint64())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ff.run(); err != nil {
				rec.failure("foreign folders", err)
			}
		}()
	}

	if cfg.PreLogin > 0 {
		pl := r.newPreLoginActor()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pl.loop()
		}()
	}

	timer := time.NewTimer(cfg.Duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	r.stop.Store(true)
	res.Seconds = time.Since(loadStart).Seconds()
	r.progress("time is up; waiting for the actors")
	actorsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(actorsDone)
	}()
	select {
	case <-actorsDone:
	case <-time.After(3*cfg.Timeout + 10*time.Second):
		rec.failure("run", errors.New("actors did not stop in time; connections closed"))
		r.closeAll()
		<-actorsDone
	}

	r.finishing.Store(true)
	r.progress("final check")
	for _, a := range lives {
		a.finish()
	}
	if r.links != nil {
		r.links.finish()
	}
	var live []*session
	for i, s := range sessions {
		if !dead[i] && s.c != nil {
			live = append(live, s)
		} else {
			s.endSelection()
		}
	}
	r.finalCheck(live, fw, res)
	if n := r.counts.loginRetries.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d logins were tried again: the server ended the connection before it logged in (making room for others)", n))
	}
	rec.fill(res, res.Seconds)
	res.Messages.Seeded = int(r.counts.seeded.Load())
	res.Messages.Appended = int(r.counts.appended.Load())
	res.Messages.LMTPDelivered = int(r.counts.lmtp.Load())
	res.Messages.ForeignDelivered = int(r.counts.foreignDelivered.Load())
	res.Messages.ForeignDeleted = int(r.counts.foreignDeleted.Load())
	res.Messages.Recent, res.Messages.FlagsAnnounced = r.counts.recent, r.counts.announced
	res.Messages.Resyncs = int(r.counts.resyncs.Load())
	res.Messages.CondStores = int(r.counts.condStores.Load())
	res.Messages.CondStale = int(r.counts.condStale.Load())
	res.Messages.CondModified = int(r.counts.condModified.Load())
	res.Lifecycle = LifecycleStats{
		Creates: int(r.counts.creates.Load()), Deletes: int(r.counts.deletes.Load()), Renames: int(r.counts.renames.Load()),
		ForeignRenames: int(r.counts.foreignRenames.Load()), ForeignRemovals: int(r.counts.foreignRemovals.Load()),
		Appended: int(r.counts.folderAppended.Load()), Reconnects: int(r.counts.reconnects.Load()),
	}
	r.led.lifeStats(&res.Lifecycle)
	r.led.mu.Lock()
	res.Messages.ToldExpunged = len(r.led.told) - r.led.unjudged
	res.Messages.Unattributed = r.led.unattributed + r.led.unjudged
	r.led.mu.Unlock()
	res.Elapsed = time.Since(began).Seconds()
	return res, nil
}

// setup logs in once, makes Aux, checks (or clears) the mailbox, and
// appends the first messages.
func (r *run) setup() (greeting string, caps []string, err error) {
	s := r.newSession(seedName)
	s.quiet = true
	s.c, err = r.dial()
	if err != nil {
		return "", nil, fmt.Errorf("imaptorture: %w", err)
	}
	defer s.c.logout()
	greeting = s.c.greeting
	if err := s.login(); err != nil {
		return "", nil, fmt.Errorf("imaptorture: %w", err)
	}
	for c := range s.c.caps {
		caps = append(caps, c)
	}
	if _, err := s.c.command("CREATE "+quote(r.cfg.Aux), nil); err != nil {
		return "", nil, fmt.Errorf("imaptorture: CREATE: %w", err)
	}
	for _, box := range []string{r.cfg.Aux, r.cfg.Mailbox} {
		n, err := s.count(box)
		if err != nil {
			return "", nil, err
		}
		if n == 0 {
			continue
		}
		if !r.cfg.Clear {
			if box == r.cfg.Aux {
				continue
			}
			return "", nil, fmt.Errorf("imaptorture: %s holds %d messages; the run deletes mail, so it wants an empty mailbox (or --clear to empty it)", box, n)
		}
		for _, line := range []string{"SELECT " + quote(box), `STORE 1:* +FLAGS.SILENT (\Deleted)`, "EXPUNGE", "CLOSE"} {
			if resp, err := s.c.command(line, nil); err != nil || resp.Type != "OK" {
				return "", nil, fmt.Errorf("imaptorture: clearing %s: %s: %v %v", box, line, err, resp)
			}
		}
	}
	if r.cfg.Maildir != "" && r.cfg.ForeignFolders > 0 {
		dir, _ := folderDir(maildirRoot(r.cfg.Mailbox, r.cfg.Maildir), r.cfg.Aux)
		if !maildir.IsMaildir(dir) {
			return "", nil, fmt.Errorf("imaptorture: %s is not the Maildir of %s: is the server's layout Maildir++ with '.' between levels? (a foreign folder rate of 0 runs without it)", dir, r.cfg.Aux)
		}
	}
	if r.cfg.Maildir != "" {
		if n := len(readMaildir(r.cfg.Maildir)); n > 0 {
			return "", nil, fmt.Errorf("imaptorture: %s holds %d messages while %s is empty: is it the mailbox's directory?", r.cfg.Maildir, n, r.cfg.Mailbox)
		}
	}
	if _, err := s.c.command("SELECT "+quote(r.cfg.Mailbox), nil); err != nil {
		return "", nil, err
	}
	r.progress("appending %d messages", r.cfg.Messages)
	var first string
	for i := range r.cfg.Messages {
		id, err := r.appendMessage(s, nil)
		if err != nil {
			return "", nil, fmt.Errorf("imaptorture: seeding: %w", err)
		}
		if i == 0 {
			first = id
		}
	}
	if r.cfg.Maildir != "" {
		found := false
		for _, f := range readMaildir(r.cfg.Maildir) {
			found = found || f.id == first
		}
		if !found {
			return "", nil, fmt.Errorf("imaptorture: the appended message %s is not in %s: is it the directory of %s?", first, r.cfg.Maildir, r.cfg.Mailbox)
		}
	}
	return greeting, caps, nil
}

// count returns the number of messages in box (STATUS MESSAGES).
func (s *session) count(box string) (uint32, error) {
	var n uint32
	resp, err := s.c.command("STATUS "+quote(box)+" (MESSAGES)", func(resp *Response, _ time.Time) error {
		if resp.Type == "STATUS" && len(resp.Data) == 2 && resp.Data[1].Kind == listValue {
			l := resp.Data[1].List
			for i := 0; i+1 < len(l); i += 2 {
				if strings.EqualFold(l[i].Text, "MESSAGES") {
					n, _ = l[i+1].Number()
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("imaptorture: STATUS %s: %w", box, err)
	}
	if resp.Type != "OK" {
		return 0, fmt.Errorf("imaptorture: STATUS %s: %s", box, resp.Line)
	}
	return n, nil
}
