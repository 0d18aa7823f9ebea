package imaptorture

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// maxLinks bounds the links the symlink actor keeps planted at once.
const maxLinks = 8

// foreignLinks plants symbolic links in the Maildir under test, as a
// user who can write into it would (issue 11): folder links
// (".<Aux>-link-<run>-<n>") to a decoy Maildir outside the account, and
// message links in the mailbox's cur/ and new/ to a decoy message file.
// Every decoy holds a marker string. A server must follow none of them:
// any response that carries the marker, or a LIST that names a link
// folder, is a FollowedSymlink violation (checked on every connection,
// watchResponse), and so is a decoy renamed or changed (checked at the
// end, finish). Between plantings the actor asks for the link folders
// (LIST, SELECT, STATUS, FETCH, STORE \Seen) so that a server that
// follows them shows it.
type foreignLinks struct {
	r      *run
	root   string
	rng    *rand.Rand
	decoy  string // directory outside the account holding the decoys
	marker string
	prefix string // of link folder names, after the dot
	before string // the decoys' digest at the start
	n      int

	mu      sync.Mutex // guards folders
	folders []string   // link folder names planted and not removed
	c       *imapConn  // the actor's own connection, for its probes
}

func newForeignLinks(r *run, root string, seed uint64) (*foreignLinks, error) {
	l := &foreignLinks{r: r, root: root, rng: rand.New(rand.NewPCG(seed, 11)),
		marker: "CISTERN-TORTURE-DECOY-" + r.led.runID,
		prefix: r.cfg.Aux + "-link-" + r.led.runID + "-"}
	dir, err := os.MkdirTemp("", "cistern-torture-decoy-")
	if err != nil {
		return nil, err
	}
	l.decoy = dir
	box := filepath.Join(dir, "Maildir")
	if err := maildir.Create(box, 0o700); err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("From: decoy@example.org\r\nSubject: %s\r\nMessage-ID: <%s@decoy>\r\n\r\n%s\r\n", l.marker, l.marker, l.marker)
	for _, p := range []string{filepath.Join(box, maildir.Cur, "1700000000.M1P1.decoy:2,"), filepath.Join(box, maildir.New, "1700000001.M1P1.decoy"), filepath.Join(dir, "message")} {
		if err := os.WriteFile(p, []byte(msg), 0o644); err != nil {
			return nil, err
		}
	}
	l.before = digest(dir)
	return l, nil
}

// digest is every entry under dir (links not followed) with its content.
func digest(dir string) string {
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+" "+err.Error())
			return nil
		}
		line := p + " " + d.Type().String()
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			line += fmt.Sprintf(" %x %v", sha256.Sum256(data), err)
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// watchResponse is every connection's check: a response that carries
// the marker, or names a link folder, shows a server that followed a link.
func (l *foreignLinks) watchResponse(raw rawResponse) {
	parts := append([][]byte{raw.line}, raw.lits...)
	for _, p := range parts {
		if bytes.Contains(p, []byte(l.marker)) {
			l.violation("a response carries the decoy's marker: the server read a file through a symbolic link", raw)
			return
		}
	}
	if bytes.Contains(raw.line, []byte(l.prefix)) && bytes.HasPrefix(raw.line, []byte("* ")) {
		l.violation("a response names a folder that is a symbolic link", raw)
	}
}

func (l *foreignLinks) violation(what string, raw rawResponse) {
	line := raw.line
	if len(line) > evidenceBytes {
		line = line[:evidenceBytes]
	}
	l.r.rec.violation(what, Violation{Kind: FollowedSymlink, At: l.r.rec.since(time.Now()).Seconds(), Session: "links",
		Detail: what + ": " + string(line)})
}

// run plants or removes a link, and probes the link folders, rate times
// a second until the run stops.
func (l *foreignLinks) run(rate int) error {
	c, err := l.r.dial()
	if err != nil {
		return err
	}
	l.c = c
	resp, err := c.command("LOGIN "+quote(l.r.cfg.User)+" "+quote(l.r.cfg.Password), nil)
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("LOGIN: %s", resp.Line)
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for !l.r.stopping() {
		<-tick.C
		if err := l.step(); err != nil {
			return err
		}
	}
	return nil
}

func (l *foreignLinks) step() error {
	start := time.Now()
	switch l.rng.IntN(3) {
	case 0:
		l.mu.Lock()
		n := len(l.folders)
		l.mu.Unlock()
		if n >= maxLinks {
			return l.removeFolder()
		}
		err := l.plantFolder()
		l.done("foreign folder link", start, err)
		return err
	case 1:
		err := l.plantMessage()
		l.done("foreign message link", start, err)
		return err
	}
	err := l.probe()
	l.done("link probe", start, err)
	return err
}

func (l *foreignLinks) plantFolder() error {
	l.n++
	name := fmt.Sprintf("%s%d", l.prefix, l.n)
	dir, err := folderDir(l.root, name)
	if err != nil {
		return err
	}
	if err := os.Symlink(filepath.Join(l.decoy, "Maildir"), dir); err != nil {
		return err
	}
	l.mu.Lock()
	l.folders = append(l.folders, name)
	l.mu.Unlock()
	return nil
}

func (l *foreignLinks) removeFolder() error {
	l.mu.Lock()
	name := l.folders[0]
	l.folders = l.folders[1:]
	l.mu.Unlock()
	dir, err := folderDir(l.root, name)
	if err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// plantMessage puts a link named like a message into new/ or cur/ of the
// mailbox under test, and removes old ones beyond maxLinks.
func (l *foreignLinks) plantMessage() error {
	l.n++
	dir := l.r.cfg.Maildir
	name := fmt.Sprintf("%d.M%dP1.decoy-link-%s", time.Now().Unix(), l.n, l.r.led.runID)
	sub := maildir.New
	if l.rng.IntN(2) == 0 {
		sub, name = maildir.Cur, name+":2,"
	}
	if err := os.Symlink(filepath.Join(l.decoy, "message"), filepath.Join(dir, sub, name)); err != nil {
		return err
	}
	if links := l.messageLinks(); len(links) > maxLinks {
		os.Remove(links[l.rng.IntN(len(links))])
	}
	return nil
}

// messageLinks are the links to the decoy in new/ and cur/ (under
// whatever name a foreign renamer gave them).
func (l *foreignLinks) messageLinks() []string {
	var out []string
	for _, sub := range []string{maildir.New, maildir.Cur} {
		es, _ := os.ReadDir(filepath.Join(l.r.cfg.Maildir, sub))
		for _, e := range es {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			p := filepath.Join(l.r.cfg.Maildir, sub, e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, l.decoy) {
				out = append(out, p)
			}
		}
	}
	return out
}

// probe asks the server for the link folders: a server that follows
// them answers with the decoy's messages (watchResponse sees the marker)
// or renames the decoy (finish sees it).
func (l *foreignLinks) probe() error {
	l.mu.Lock()
	var name string
	if len(l.folders) > 0 {
		name = l.folders[l.rng.IntN(len(l.folders))]
	}
	l.mu.Unlock()
	c := l.c
	if _, err := c.command(`LIST "" `+quote(l.r.cfg.Aux+"*"), nil); err != nil {
		return err
	}
	if name == "" {
		return nil
	}
	if _, err := c.command("STATUS "+quote(name)+" (MESSAGES)", nil); err != nil {
		return err
	}
	resp, err := c.command("SELECT "+quote(name), nil)
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return nil
	}
	for _, line := range []string{"FETCH 1:* (BODY.PEEK[])", `STORE 1:* +FLAGS (\Seen)`, "CLOSE"} {
		if _, err := c.command(line, nil); err != nil {
			return err
		}
	}
	return nil
}

// finish removes every link the actor planted (so that the final check
// compares real messages only), and reports a decoy that changed.
func (l *foreignLinks) finish() {
	l.mu.Lock()
	folders := l.folders
	l.folders = nil
	l.mu.Unlock()
	for _, name := range folders {
		if dir, err := folderDir(l.root, name); err == nil {
			os.Remove(dir)
		}
	}
	for _, p := range l.messageLinks() {
		os.Remove(p)
	}
	if l.c != nil {
		l.c.logout()
	}
	if after := digest(l.decoy); after != l.before {
		l.r.rec.violation("decoy changed", Violation{Kind: FollowedSymlink, At: l.r.rec.since(time.Now()).Seconds(), Session: "disk",
			Detail: "a file reached only through a symbolic link was renamed or changed:\nbefore\n" + l.before + "\nafter\n" + after})
	}
	os.RemoveAll(l.decoy)
}

// done records one step, unless the final check runs.
func (l *foreignLinks) done(label string, start time.Time, err error) {
	if !l.r.finishing.Load() {
		l.r.rec.op(label, start, time.Since(start), fsOutcome(err))
	}
}
