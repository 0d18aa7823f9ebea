package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// A reconnect is the resynchronisation of a client that holds the whole
// mailbox (RFC 7162 §3.2.5): it knows every UID and flag as of its last
// session's HIGHESTMODSEQ, and comes back after another client changed
// the flags of some messages. It sends SELECT INBOX (QRESYNC
// (uidvalidity modseq)) and gets a FETCH of each changed message; the
// alternative, without QRESYNC, is SELECT and UID FETCH 1:* (FLAGS).

// qresyncChanged is how many messages change between the two sessions:
// 100, or every message of a smaller INBOX.
func qresyncChanged(corpus corpusInfo) int { return min(100, corpus.Messages) }

// qresyncSet is the sequence set of the messages that change: spread
// evenly over the mailbox.
func qresyncSet(corpus corpusInfo) string {
	n := qresyncChanged(corpus)
	step := corpus.Messages / n
	seqs := make([]string, n)
	for i := range n {
		seqs[i] = strconv.Itoa(1 + i*step)
	}
	return strings.Join(seqs, ",")
}

// reconnectPrepare does, untimed, what happens before a reconnect: the
// messages of qresyncSet lose \Flagged (so that the next step changes
// every one of them, whatever an earlier run left), a session with
// QRESYNC enabled selects INBOX and notes UIDVALIDITY and HIGHESTMODSEQ,
// and another session flags them. It returns what the first session
// noted.
func reconnectPrepare(s *server, corpus corpusInfo) (uidValidity uint32, modseq uint64, err error) {
	store := func(op string) error {
		c, err := login(s.addr)
		if err != nil {
			return err
		}
		defer c.close()
		if _, err := c.run("SELECT INBOX"); err != nil {
			return err
		}
		_, err = c.run("STORE " + qresyncSet(corpus) + " " + op + " (\\Flagged)")
		return err
	}
	if err := store("-FLAGS.SILENT"); err != nil {
		return 0, 0, err
	}
	c, err := login(s.addr)
	if err != nil {
		return 0, 0, err
	}
	_, err = c.run("ENABLE QRESYNC")
	var rep reply
	if err == nil {
		rep, err = c.run("SELECT INBOX (CONDSTORE)")
	}
	c.close()
	if err != nil {
		return 0, 0, err
	}
	if rep.uidValidity == 0 || rep.highestModSeq == 0 {
		return 0, 0, fmt.Errorf("%s: SELECT INBOX (CONDSTORE) sent UIDVALIDITY %d, HIGHESTMODSEQ %d", s.name, rep.uidValidity, rep.highestModSeq)
	}
	if err := store("+FLAGS.SILENT"); err != nil {
		return 0, 0, err
	}
	return rep.uidValidity, rep.highestModSeq, nil
}

// canDropCaches says whether this process may drop the kernel's page
// cache (/proc/sys/vm/drop_caches: root).
func canDropCaches() bool { return os.Geteuid() == 0 }

// dropCaches writes the dirty pages out and drops the page cache, the
// dentries and the inodes, so that what a server reads next comes from
// the disk.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}
