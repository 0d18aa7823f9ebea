package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// cmdTimeout bounds one check or migrate command in these tests.
const cmdTimeout = 60 * time.Second

// runCisternCmd runs "cistern args..." and returns the exit code, stdout and
// stderr.
func runCisternCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	err := Run(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	code := exitCode(err, &errOut)
	t.Logf("cistern %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func writeFixtureFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func makeMaildir(t *testing.T, root string) {
	t.Helper()
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
}

// lines returns the lines of out that start with prefix.
func linesWithPrefix(out, prefix string) []string {
	var res []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			res = append(res, l)
		}
	}
	return res
}

// A Maildir given by path: every finding on its own line, exit 1;
// --repair fixes what it can and prints what is left; a clean Maildir
// exits 0.
func TestCheckPath(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	makeMaildir(t, root)
	const (
		a = "1700000001.M1P1Q1.test"
		b = "1700000002.M2P1Q2.test"
		c = "1700000003.M3P1Q3.test"
	)
	writeFixtureFile(t, filepath.Join(root, "cur", a+":2,Sb"), "Subject: a\n\nbody\n")
	writeFixtureFile(t, filepath.Join(root, "new", b), "Subject: b\n\nbody\n")
	writeFixtureFile(t, filepath.Join(root, "new", c), "Subject: c\n\nbody\n")
	writeFixtureFile(t, filepath.Join(root, uidlist.FileName), "3 V77 N4\n1 :"+a+"\n2 :gone\n3 :"+b+"\n3 :"+c+"\n")

	code, out, errOut := runCisternCmd(t, "check", root)
	if code != 1 {
		t.Fatalf("check of a damaged Maildir: exit %d, want 1", code)
	}
	for _, want := range []string{
		"INBOX: stale-record: UID 2 (gone): no file in new/ or cur/",
		"INBOX: duplicate-uid: UID 3 on line 5 (" + c + ") is also on line 4 (" + b + ")",
		"INBOX: missing-uid: new/" + c + " has no UID in dovecot-uidlist",
		"INBOX: unnamed-keyword: keyword letter b on 1 file(s) (cur/" + a + ":2,Sb) has no name in dovecot-keywords",
		"summary: 1 mailbox(es), 3 message(s): 4 problem(s): duplicate-uid 1, stale-record 1, missing-uid 1, unnamed-keyword 1",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q", want)
		}
	}
	if len(linesWithPrefix(out, "info: filesystem ")) != 1 {
		t.Errorf("no info line on the filesystem's proofs")
	}
	if !strings.Contains(errOut, "check: 1/1 INBOX\n") {
		t.Errorf("no progress line on stderr")
	}

	code, out, _ = runCisternCmd(t, "check", "--repair", root)
	if code != 1 {
		t.Fatalf("check --repair with a keyword letter left: exit %d, want 1", code)
	}
	_, after, ok := strings.Cut(out, "after repair:\n")
	if !ok || len(linesWithPrefix(out, "repair: INBOX: ")) < 3 {
		t.Fatalf("no repair actions or no second check in the output")
	}
	if got := linesWithPrefix(after, "INBOX: "); len(got) != 1 || !strings.Contains(got[0], "unnamed-keyword") {
		t.Errorf("after repair: %q, want only the keyword letter left", got)
	}
	data, err := os.ReadFile(filepath.Join(root, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := uidlist.Parse("uidlist", data)
	if err != nil || f.Header.UIDValidity != 77 {
		t.Fatalf("uidlist after repair: %v\n%s", err, data)
	}
	got := map[string]uint32{}
	for _, r := range f.Records {
		got[r.Base()] = r.UID
	}
	if got[a] != 1 || got[b] != 3 || got[c] < 4 || len(got) != 3 {
		t.Errorf("UIDs after repair %v: want %s 1, %s 3, %s new, nothing of \"gone\"", got, a, b, c)
	}

	writeFixtureFile(t, filepath.Join(root, uidlist.KeywordsFileName), "1 $Label2\n")
	code, out, _ = runCisternCmd(t, "check", root)
	if code != 0 || !strings.Contains(out, "summary: 1 mailbox(es), 3 message(s): clean\n") {
		t.Errorf("check after the name was added: exit %d, want 0 and a clean summary", code)
	}
}

// A user of the configuration: the Maildir from mail_location, the quota
// from the configuration, the index under data_dir.
func TestCheckUser(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := auth.Add(passwd, auth.User{Name: "alice", Password: "{PLAIN}secret"}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cistern.toml")
	writeFixtureFile(t, cfg, "data_dir = \""+dir+"/data\"\n"+
		"mail_location = \""+dir+"/mail/%u/Maildir\"\n"+
		"passwd_file = \""+passwd+"\"\n"+
		"[quota]\nstorage = 1000\n")
	root := filepath.Join(dir, "mail", "alice", "Maildir")
	makeMaildir(t, root)
	const a = "1700000001.M1P1Q1.test,S=20,W=22"
	writeFixtureFile(t, filepath.Join(root, "cur", a+":2,S"), "Subject: a\n\nbody..\n")
	writeFixtureFile(t, filepath.Join(root, uidlist.FileName), "3 V5 N2\n1 :"+a+"\n")
	writeFixtureFile(t, filepath.Join(root, store.QuotaFile), "1000S\n999 9\n")
	ix, err := store.OpenIndex(filepath.Join(dir, "data", indexFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	ix.Put(root, "1700000009.M9P1Q9.test", store.IndexEntry{FileSize: 10})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, _ := runCisternCmd(t, "check", "--config", cfg, "alice")
	if code != 1 || len(linesWithPrefix(out, "INBOX: quota: ")) != 1 || len(linesWithPrefix(out, "INBOX: index-stale: ")) != 1 {
		t.Fatalf("exit %d; want 1 with a quota and an index finding", code)
	}
	code, out, _ = runCisternCmd(t, "check", "alice", "--repair", "--config", cfg)
	if code != 0 || !strings.HasSuffix(out, "summary: 1 mailbox(es), 1 message(s): clean\n") {
		t.Fatalf("check --repair: exit %d, want 0 and a clean second check", code)
	}
	if limit, used, err := store.RecordedQuota(root); err != nil || used != (store.QuotaUsage{Bytes: 20, Messages: 1}) || limit.Bytes != 1000 {
		t.Errorf("maildirsize after repair: %+v %+v %v", limit, used, err)
	}

	// The same Maildir by path, without the user's quota and index.
	if code, _, _ := runCisternCmd(t, "check", root); code != 0 {
		t.Errorf("check by path: exit %d, want 0", code)
	}

	// Errors are exit status 2.
	for _, args := range [][]string{
		{"check", "--config", cfg, "bob"},
		{"check", "--config", filepath.Join(dir, "none.toml"), "alice"},
		{"check", filepath.Join(dir, "mail", "nobody", "Maildir")},
		{"check", "--config", cfg, root},
		{"check"},
		{"check", "alice", "bob"},
		{"check", "--bogus", root},
	} {
		if code, _, _ := runCisternCmd(t, args...); code != 2 {
			t.Errorf("cistern %q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCisternCmd(t, "check", "-h"); code != 0 || !strings.HasPrefix(out, "usage: cistern check") {
		t.Errorf("check -h: exit %d, output %q", code, out)
	}
}

// Without --all, the first 20 findings of a kind in a mailbox are
// printed, then how many more there are.
func TestCheckManyFindings(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	makeMaildir(t, root)
	for i := range 25 {
		writeFixtureFile(t, filepath.Join(root, "new", fmt.Sprintf("17000000%02d.M%dP1.test", i, i)), "Subject: x\n\nbody\n")
	}
	_, out, _ := runCisternCmd(t, "check", root)
	if n := len(linesWithPrefix(out, "INBOX: missing-uid: new/")); n != 20 || !strings.Contains(out, "INBOX: missing-uid: 5 more (--all prints them)\n") {
		t.Errorf("%d findings printed, want 20 and a line for 5 more", n)
	}
	_, out, _ = runCisternCmd(t, "check", "--all", root)
	if n := len(linesWithPrefix(out, "INBOX: missing-uid: new/")); n != 25 || strings.Contains(out, "more (--all") {
		t.Errorf("--all: %d findings printed, want 25", n)
	}
}

// openPTY returns a pseudo-terminal pair: what is written to tty is read
// from master.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal, progress is a bar redrawn in place, fitted to its width
// and erased at the end; elsewhere it is one line per step.
func TestProgressOutput(t *testing.T) {
	master, tty := openPTY(t)
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 60}); err != nil {
		t.Fatal(err)
	}
	p := newProgress(tty, "check")
	if p.width != 60 {
		t.Fatalf("width %d on a 60-column terminal", p.width)
	}
	p.update(0, 4, "INBOX")
	p.update(2, 4, "A-folder-with-a-name-far-too-long-for-what-is-left-of-the-line")
	p.update(4, 4, "")
	// The terminal may hand over what was written in more than one read:
	// read until the last frame, which ends the output.
	var got string
	buf := make([]byte, 4096)
	for i := 0; i < 16 && !strings.HasSuffix(got, "\r\x1b[K"); i++ {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:n])
	}
	frames := strings.Split(got, "\r")
	want := []string{
		"",
		"check [" + strings.Repeat(" ", 40) + "] 1/4 INBOX\x1b[K",
		"check [" + strings.Repeat("=", 20) + strings.Repeat(" ", 20) + "] 3/4 A-fold\x1b[K",
		"\x1b[K",
	}
	if len(frames) != len(want) {
		t.Fatalf("terminal got %q", got)
	}
	for i := range want {
		if frames[i] != want[i] {
			t.Errorf("frame %d = %q, want %q", i, frames[i], want[i])
		}
		if vis := strings.TrimSuffix(frames[i], "\x1b[K"); len(vis) >= 60 {
			t.Errorf("frame %d is %d columns wide on a 60-column terminal", i, len(vis))
		}
	}

	var plain bytes.Buffer
	p = newProgress(&plain, "migrate")
	p.update(0, 2, "INBOX")
	p.update(1, 2, "Sent")
	p.update(2, 2, "")
	if want := "migrate: 1/2 INBOX\nmigrate: 2/2 Sent\n"; plain.String() != want {
		t.Errorf("plain progress %q, want %q", plain.String(), want)
	}
}
