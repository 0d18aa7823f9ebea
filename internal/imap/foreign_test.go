package imap_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestForeignWriter: another program renames, delivers and deletes
// files in a large Maildir, without any lock, while two sessions IDLE on
// it. Afterwards each session's view, rebuilt only from what it was told,
// must be the disk exactly, and no session may have been told of an
// expunge that did not happen (DESIGN.md §2: no phantom expunge, flags
// converge).
func TestForeignWriter(t *testing.T) {
	const (
		messages   = 2000
		renames    = 4000
		deliveries = 100
		deletes    = 100
	)
	ts := startServer(t)
	a := loginRaw(t, ts, "alice") // creates the Maildir
	dir := ts.mailDir("alice")
	names := make(map[string]string, messages) // base → current file name
	var bases []string
	for i := 0; i < messages; i++ {
		base := fmt.Sprintf("1600000000.M%06dP1Q%d.seed", i, i)
		name := base + ":2,"
		if i%3 == 0 {
			name += "S"
		}
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(testMessage(fmt.Sprintf("seed %d", i), "body")), 0o600); err != nil {
			t.Fatal(err)
		}
		names[base] = name
		bases = append(bases, base)
	}
	b := loginRaw(t, ts, "alice")
	sessions := []*rawClient{a, b}
	models := make([]*model, len(sessions))
	for i, rc := range sessions {
		models[i] = rc.selectRaw("INBOX")
		if len(models[i].uids) != messages {
			t.Fatalf("session %d sees %d messages", i, len(models[i].uids))
		}
	}
	baseOf := make(map[uint32]string, messages)
	for base, uid := range uidList(t, dir) {
		baseOf[uid] = base
	}

	// Both sessions idle; a reader per session applies what it is told.
	results := make([]chan idleResult, len(sessions))
	tags := make([]string, len(sessions))
	for i, rc := range sessions {
		tags[i] = rc.idle()
		results[i] = make(chan idleResult, 1)
		go func(rc *rawClient, m *model, tag string, out chan<- idleResult) {
			out <- readIdle(rc, m, tag)
		}(rc, models[i], tags[i], results[i])
	}

	// The other program.
	rng := rand.New(rand.NewPCG(1, 2))
	deleted := make(map[string]bool)
	live := slices.Clone(bases)
	ops := make([]byte, 0, renames+deliveries+deletes)
	for range renames {
		ops = append(ops, 'r')
	}
	for range deliveries {
		ops = append(ops, 'n')
	}
	for range deletes {
		ops = append(ops, 'd')
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	start := time.Now()
	delivered := 0
	for _, op := range ops {
		switch op {
		case 'r':
			base := live[rng.IntN(len(live))]
			var flags []byte
			for _, c := range []byte("DFRST") {
				if rng.IntN(3) == 0 {
					flags = append(flags, c)
				}
			}
			to := base + ":2," + string(flags)
			if to == names[base] {
				continue
			}
			if err := os.Rename(filepath.Join(dir, "cur", names[base]), filepath.Join(dir, "cur", to)); err != nil {
				t.Fatal(err)
			}
			names[base] = to
		case 'n':
			delivered++
			base := fmt.Sprintf("1700000000.M%06dP2Q%d.foreign", delivered, delivered)
			tmp := filepath.Join(dir, "tmp", base)
			if err := os.WriteFile(tmp, []byte(testMessage(fmt.Sprintf("foreign %d", delivered), "body")), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "new", base)); err != nil {
				t.Fatal(err)
			}
		case 'd':
			i := rng.IntN(len(live))
			base := live[i]
			if err := os.Remove(filepath.Join(dir, "cur", names[base])); err != nil {
				t.Fatal(err)
			}
			deleted[base] = true
			live = slices.Delete(live, i, i+1)
		}
	}
	t.Logf("the other program: %d operations in %v", len(ops), time.Since(start))

	// DONE, then NOOP: every session has caught up.
	for i, rc := range sessions {
		rc.writeLine("DONE")
		select {
		case r := <-results[i]:
			if r.err != nil {
				t.Fatalf("session %d during IDLE: %v", i, r.err)
			}
			t.Logf("session %d was told %d lines during IDLE", i, r.lines)
		case <-time.After(readTimeout):
			t.Fatalf("session %d: IDLE did not end", i)
		}
	}
	// NOOP syncs: the last deliveries have UIDs on disk after it.
	for i, rc := range sessions {
		models[i].applyAll(t, fmt.Sprintf("session %d NOOP", i), rc.ok("NOOP"))
	}
	files := diskFiles(t, dir)
	ids := uidList(t, dir)
	type msg struct {
		uid   uint32
		flags []string
	}
	var want []msg
	for base, name := range files {
		uid, ok := ids[base]
		if !ok {
			t.Fatalf("%s has no UID", name)
		}
		want = append(want, msg{uid, imapFlags(name)})
	}
	slices.SortFunc(want, func(x, y msg) int { return int(int64(x.uid) - int64(y.uid)) })
	if len(want) != messages+deliveries-deletes {
		t.Fatalf("%d files on disk", len(want))
	}

	for i, rc := range sessions {
		m := models[i]
		m.applyAll(t, fmt.Sprintf("session %d second NOOP", i), rc.ok("NOOP"))
		for _, u := range m.expunged {
			if u == 0 || !deleted[baseOf[u]] {
				t.Errorf("session %d was told UID %d (%q) was expunged; it was not deleted", i, u, baseOf[u])
			}
		}
		if len(m.expunged) != deletes {
			t.Errorf("session %d was told of %d expunges, want %d", i, len(m.expunged), deletes)
		}
		if len(m.uids) != len(want) {
			t.Fatalf("session %d sees %d messages, the disk holds %d", i, len(m.uids), len(want))
		}
		// New messages: the client learns their UIDs by asking.
		m.fill(t, rc)
		final, finalFlags := fetchLines(t, rc.ok("UID FETCH 1:* (FLAGS)"))
		bad := 0
		for j, w := range want {
			if m.uids[j] != w.uid || !slices.Equal(m.flags[j], w.flags) ||
				final[j] != w.uid || !slices.Equal(finalFlags[j], w.flags) {
				if bad++; bad <= 5 {
					t.Errorf("session %d seq %d: told UID %d %v, UID FETCH says %d %v, disk has %d %v",
						i, j+1, m.uids[j], m.flags[j], final[j], finalFlags[j], w.uid, w.flags)
				}
			}
		}
		if bad > 0 {
			t.Errorf("session %d: %d messages differ", i, bad)
		}
	}
}

type idleResult struct {
	err   error
	lines int // untagged lines read
}

// readIdle reads a session's responses during IDLE until the tagged
// answer to tag, applying each to m. It runs on its own goroutine, so it
// reports errors instead of failing the test.
func readIdle(rc *rawClient, m *model, tag string) (res idleResult) {
	for {
		rc.c.SetReadDeadline(time.Now().Add(readTimeout))
		l, err := rc.r.ReadString('\n')
		if err != nil {
			res.err = fmt.Errorf("reading: %w (got %q)", err, l)
			return res
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				res.err = fmt.Errorf("IDLE: %s", l)
			}
			return res
		}
		res.lines++
		if err := m.apply(l); err != nil {
			res.err = err
			return res
		}
	}
}
