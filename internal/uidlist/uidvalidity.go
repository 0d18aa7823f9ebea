package uidlist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The UIDVALIDITY allocator of an account, shared with Dovecot
// (lib-storage's mailbox-uidvalidity): every new mailbox of the account
// takes its UIDVALIDITY from it, so that a name deleted and made again,
// or renamed away and made again, never gets a value it had before (RFC
// 9051 §2.3.1.1), whichever of Cistern and Dovecot makes it.
//
// It is two entries in the account's root:
//
//	file                         holds
//	dovecot-uidvalidity          the last value handed out, 8 hex digits
//	                             (a hint: it may lag behind the marker)
//	dovecot-uidvalidity.<hex>    nothing; its name is the last value
//	                             handed out (the truth)
//
// Taking a value is renaming the marker from the last value V to V+1: a
// rename of one name succeeds for exactly one process, so two processes
// never take the same value, without a lock. A process that read a stale
// hint finds the marker gone (ENOENT) and tries the next names; after
// uidValidityTries it lists the root for the markers, takes the highest
// (removing a lower duplicate) and renames that. With no marker at all
// (a new account, or the files were removed) it starts at the current
// time, as Dovecot does, but above the highest UIDVALIDITY of the
// account's mailboxes (their uidlists' headers) and the caller's floor.
//
// The rename is made durable (the root is fsynced) before the value is
// returned: a value handed out is never handed out again after a crash.
// The hint is written in place, unsynced, as Dovecot does.

// UIDValidityFileName is the allocator's hint file in the account root.
const UIDValidityFileName = "dovecot-uidvalidity"

// uidValidityTries is how many marker names past the hint are tried
// before the root is listed (Dovecot's RETRY_COUNT).
const uidValidityTries = 10

// NextUIDValidity takes the next UIDVALIDITY of the account whose root
// directory is root. floor, when not 0, is a value the result must be
// above: the UIDVALIDITY a rebuilt mailbox had, or the highest of the
// account's mailboxes when the allocator starts afresh. The error is
// returned only when no value can be taken durably.
func NextUIDValidity(root string, floor uint32) (uint32, error) {
	for attempt := 0; attempt < uidValidityTries; attempt++ {
		v, err := takeUIDValidity(root, floor)
		if err != nil || floor == 0 || v > floor {
			return v, err
		}
		// Below the floor (a mailbox rebuilt, whose old value came from
		// elsewhere, must get a greater one: RFC 9051 §2.3.1.1): the
		// marker we own jumps past it. Another process may take it first
		// (it read an old hint): then take another.
		err = os.Rename(filepath.Join(root, markerName(v)), filepath.Join(root, markerName(nextValue(floor))))
		if err == nil {
			v = nextValue(floor)
			return v, finishUIDValidity(root, filepath.Join(root, UIDValidityFileName), v)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", err)
		}
	}
	return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY above %d in %s: the markers kept changing", floor, root)
}

// takeUIDValidity takes the next value: from the hint, else by listing.
func takeUIDValidity(root string, floor uint32) (uint32, error) {
	hint := filepath.Join(root, UIDValidityFileName)
	if cur, ok := readUIDValidityHint(hint); ok {
		v, err := renameMarker(root, cur, uidValidityTries)
		if err == nil {
			return v, finishUIDValidity(root, hint, v)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return rescanUIDValidity(root, floor)
}

// readUIDValidityHint reads the last value from dovecot-uidvalidity.
func readUIDValidityHint(path string) (uint32, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var buf [8]byte
	n, _ := f.Read(buf[:])
	v, err := strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 16, 32)
	if err != nil || v == 0 {
		return 0, false
	}
	return uint32(v), true
}

func markerName(v uint32) string { return fmt.Sprintf("%s.%08x", UIDValidityFileName, v) }

// nextValue is v+1, skipping 0.
func nextValue(v uint32) uint32 {
	v++
	if v == 0 {
		v = 1
	}
	return v
}

// renameMarker renames the marker of cur to cur+1, or, when it is gone
// (another process took cur+1), the next ones, tries times at most. It
// returns the value taken; an error wrapping fs.ErrNotExist when no
// marker was found.
func renameMarker(root string, cur uint32, tries int) (uint32, error) {
	for i := 0; i < tries; i++ {
		next := nextValue(cur)
		err := os.Rename(filepath.Join(root, markerName(cur)), filepath.Join(root, markerName(next)))
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", err)
		}
		cur = next
	}
	return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", fs.ErrNotExist)
}

// rescanUIDValidity lists root for markers and takes the value after the
// highest; with none, it makes the first one.
func rescanUIDValidity(root string, floor uint32) (uint32, error) {
	for attempt := 0; attempt < uidValidityTries; attempt++ {
		entries, err := os.ReadDir(root)
		if err != nil {
			return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", err)
		}
		var lo, hi uint32
		prefix := UIDValidityFileName + "."
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			v, err := strconv.ParseUint(name[len(prefix):], 16, 32)
			if err != nil || v == 0 {
				continue
			}
			if hi == 0 || uint32(v) > hi {
				hi = uint32(v)
			}
			if lo == 0 || uint32(v) < lo {
				lo = uint32(v)
			}
		}
		if hi == 0 {
			// Starting afresh (a new account, or an account of a server
			// that kept no allocator): above every mailbox's value, so
			// that a name made again within the second its old life was
			// made does not repeat it.
			v, err := createMarker(root, max(floor, highestUIDValidity(root)))
			if errors.Is(err, fs.ErrExist) {
				continue // another process made one: take the next after it
			}
			if err != nil {
				return 0, err
			}
			return v, finishUIDValidity(root, filepath.Join(root, UIDValidityFileName), v)
		}
		if lo != hi {
			// Two markers: two processes started afresh at once. The
			// higher one is the truth.
			_ = os.Remove(filepath.Join(root, markerName(lo)))
		}
		v, err := renameMarker(root, hi, 1)
		if errors.Is(err, fs.ErrNotExist) {
			continue // taken meanwhile: list again
		}
		if err != nil {
			return 0, err
		}
		return v, finishUIDValidity(root, filepath.Join(root, UIDValidityFileName), v)
	}
	return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY in %s: the markers kept changing", root)
}

// createMarker makes the first marker: the current time, or above floor.
// It is empty, private like every file of the account (Dovecot makes it
// 0444; its mode means nothing to either server).
func createMarker(root string, floor uint32) (uint32, error) {
	v := uint32(0)
	if now := time.Now().Unix(); now > 0 && now <= int64(^uint32(0)) {
		v = uint32(now)
	}
	if floor != 0 && v <= floor {
		v = nextValue(floor)
	}
	if v == 0 {
		v = 1
	}
	f, err := os.OpenFile(filepath.Join(root, markerName(v)), os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, err
		}
		return 0, fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", err)
	}
	f.Close()
	return v, nil
}

// finishUIDValidity makes the marker's new name durable and writes the
// hint (best effort: the marker is the truth).
func finishUIDValidity(root, hint string, v uint32) error {
	if err := syncDir(root); err != nil {
		return fmt.Errorf("uidlist: taking a UIDVALIDITY: %w", err)
	}
	f, err := os.OpenFile(hint, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil
	}
	defer f.Close()
	_, _ = f.WriteAt(fmt.Appendf(nil, "%08x", v), 0)
	return nil
}

// highestUIDValidity is the highest UIDVALIDITY in the headers of the
// dovecot-uidlist files of the account at root: the root's (INBOX) and
// its Maildir++ folders' (.name). Files that cannot be read count as 0.
func highestUIDValidity(root string) uint32 {
	dirs := []string{root}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if n := e.Name(); len(n) > 1 && n[0] == '.' && n != ".." && e.IsDir() {
				dirs = append(dirs, filepath.Join(root, n))
			}
		}
	}
	var hi uint32
	for _, d := range dirs {
		if v := headerUIDValidity(filepath.Join(d, FileName)); v > hi {
			hi = v
		}
	}
	return hi
}

// headerUIDValidity reads the UIDVALIDITY of a uidlist from its first
// line only.
func headerUIDValidity(path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var buf [512]byte
	n, _ := io.ReadFull(f, buf[:])
	line, _, ok := strings.Cut(string(buf[:n]), "\n")
	if !ok {
		return 0
	}
	file, _, err := Parse(path, []byte(line+"\n"))
	if err != nil {
		return 0
	}
	return file.Header.UIDValidity
}
