package uidlist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// appendAttempts bounds how often Append re-reads a file that changed
// between its check and its write. Under the lock that only happens when a
// foreign program ignores the lock.
const appendAttempts = 3

// Append adds recs at the end of dir/dovecot-uidlist, under the lock l, as
// Dovecot does (maildir_uidlist_sync_update): record lines only, the header
// untouched, so its N goes stale and readers take max(N, last UID + 1).
//
// recs must be in strictly ascending UID order, above every UID in the file
// and at or above its next UID (ErrUIDOrder), with base names that have no
// UID yet (ErrDuplicateName). The lines go out in one write(2), then fsync.
//
// When the file does not exist the error wraps ErrNotExist: a new file
// needs a UIDVALIDITY that only the caller can choose (Rewrite writes
// it). When it is version 1 or 2 it is converted to version 3 through
// Rewrite (Dovecot would misread v3 lines appended to a v1 file).
// An unusable file (bad header) is an error: keep a copy and Rewrite.
//
// Crash outcomes: before the write, nothing changed; during it, a prefix of
// the new lines may be on disk, the last one possibly without '\n', which
// readers ignore and the next Append terminates (so it is reported as
// damage, never glued to a new record); after fsync, all lines are durable.
func Append(l *Lock, dir string, recs []Record) error {
	if l == nil {
		return fmt.Errorf("%w: nil lock", ErrWrongLock)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := validateRecords(recs, 0); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rd, err := l.checkLocked(dir)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		rd.mu.Lock()
		cur, _, err := rd.refreshLocked()
		if errors.Is(err, ErrNotExist) {
			// Its UIDVALIDITY is the caller's to choose (the account's
			// allocator): one made up here could repeat a value.
			rd.mu.Unlock()
			return fmt.Errorf("uidlist: append to %s: %w", rd.path, err)
		}
		if err != nil {
			rd.mu.Unlock()
			return err
		}
		if err := checkAppend(cur, rd.p.bases, recs); err != nil {
			rd.mu.Unlock()
			return err
		}
		if cur.Header.Version != 3 {
			rd.mu.Unlock()
			nf := &File{Header: cur.Header, Records: append(cur.Records[:len(cur.Records):len(cur.Records)], recs...)}
			return rewriteLocked(l, rd, nf)
		}
		st, consumed := rd.st, rd.consumed
		rd.mu.Unlock()

		done, err := appendLines(rd.path, st, consumed, recs)
		if done || err != nil {
			return err
		}
		if attempt == appendAttempts {
			return fmt.Errorf("uidlist: append %s: file keeps changing under the lock (a writer ignoring %s?)", rd.path, LockName)
		}
	}
}

// checkAppend checks recs against the current file.
func checkAppend(cur *File, bases map[string]uint32, recs []Record) error {
	first := recs[0].UID
	if last := cur.LastUID(); first <= last || first < cur.Header.NextUID {
		return fmt.Errorf("%w: first new UID %d, file has last UID %d and next UID %d",
			ErrUIDOrder, first, last, cur.Header.NextUID)
	}
	for _, r := range recs {
		if uid, dup := bases[r.Base()]; dup {
			return fmt.Errorf("%w: %q has UID %d", ErrDuplicateName, r.Base(), uid)
		}
	}
	return nil
}

// appendLines writes recs at the end of path if the file is still the one
// in st (done=false when it is not). A last line without '\n' (consumed <
// size: a crashed append) is terminated first.
func appendLines(path string, st fileState, consumed int64, recs []Record) (done bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if now := stateOf(fi); !now.sameFile(st) || now.size != st.size {
		return false, nil
	}
	size := 1
	for _, r := range recs {
		size += 13 + len(r.Name)
		for _, e := range r.Ext {
			size += 1 + len(e)
		}
	}
	buf := make([]byte, 0, size)
	if consumed < st.size {
		buf = append(buf, '\n')
	}
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	if _, err := f.Write(buf); err != nil {
		return false, err
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	return true, f.Close()
}

// Rewrite replaces dir/dovecot-uidlist with f (as version 3), under the
// lock l, the way Dovecot's maildir_uidlist_recreate does, plus the
// directory fsync Dovecot leaves out:
//
//  1. create dovecot-uidlist.tmp with O_EXCL (a leftover of a crashed
//     writer is removed first: only a lock holder writes it) — crash: the
//     old file is intact, a stray temp file remains and is removed by the
//     next Rewrite;
//  2. write the whole file and fsync it — crash: the same;
//  3. rename it over dovecot-uidlist — crash before the directory is
//     synced: after a power loss the name holds either the complete old or
//     the complete new file, never a mixture;
//  4. fsync the directory — from here the new file is durable.
//
// f is not modified. The file written differs from f in three ways: a
// missing GUID is generated (read the file back to learn it), next UID is
// raised to last UID + 1 when below, and it is never lower than the next UID
// of the current file when the UIDVALIDITY is the same (a UID is never
// handed out twice). To rewrite over a damaged file, call KeepCopy first.
func Rewrite(l *Lock, dir string, f *File) error {
	if l == nil {
		return fmt.Errorf("%w: nil lock", ErrWrongLock)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rd, err := l.checkLocked(dir)
	if err != nil {
		return err
	}
	return rewriteLocked(l, rd, f)
}

func rewriteLocked(l *Lock, rd *Reader, f *File) error {
	if err := f.Validate(); err != nil {
		return err
	}
	nf := *f
	nf.Header.Version = 3
	if nf.Header.GUID == "" {
		nf.Header.GUID = NewGUID()
	}
	if last := nf.LastUID(); nf.Header.NextUID <= last {
		nf.Header.NextUID = last + 1
	}
	rd.mu.Lock()
	cur, _, err := rd.refreshLocked()
	rd.mu.Unlock()
	// A missing or damaged current file is what a rewrite repairs.
	if err == nil && cur.Header.UIDValidity == nf.Header.UIDValidity && cur.Header.NextUID > nf.Header.NextUID {
		nf.Header.NextUID = cur.Header.NextUID
	}
	return writeDurable(l.dir, TempName, FileName, nf.Marshal(), nil)
}

// writeDurable replaces dir/target with data: dir/tmp created with O_EXCL
// (a leftover removed first; callers hold the lock), written, passed to
// beforeSync, fsynced, renamed over target, directory fsynced. The mode is
// the old target's, or the directory's without execute bits (Dovecot
// derives file modes from the mailbox directory).
func writeDurable(dir, tmp, target string, data []byte, beforeSync func(*os.File) error) (err error) {
	tmpPath, targetPath := filepath.Join(dir, tmp), filepath.Join(dir, target)
	perm := fileMode(dir, targetPath)
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		if err := os.Remove(tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		f, err = os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	}
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !renamed {
			_ = os.Remove(tmpPath)
		}
	}()
	if err := f.Chmod(perm); err != nil { // the umask must not narrow it
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if beforeSync != nil {
		if err := beforeSync(f); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err := os.Rename(tmpPath, targetPath); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

func fileMode(dir, target string) fs.FileMode {
	if fi, err := os.Stat(target); err == nil {
		return fi.Mode().Perm()
	}
	if fi, err := os.Stat(dir); err == nil {
		if m := fi.Mode().Perm() & 0o666; m&0o600 == 0o600 {
			return m
		}
	}
	return 0o600
}

// maxKeepCopies bounds the search for a free name in KeepCopy.
const maxKeepCopies = 100

// KeepCopy saves the current dir/dovecot-uidlist as
// dir/dovecot-uidlist.damaged.<unixtime> (with ".<n>" added when that name
// is taken) and returns the new path. Call it before rewriting over a file
// that had Problems or could not be parsed, so that the old UID map can
// still be examined. The copy is written to a temporary file, fsynced and
// linked into place, then the directory is fsynced: a crash leaves either no
// copy or a complete one (and maybe a stray temporary file). A missing
// uidlist is an error wrapping ErrNotExist.
func KeepCopy(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, FileName+".damaged.tmp.*")
	if err != nil {
		return "", err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath)
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	base := filepath.Join(dir, FileName+".damaged."+strconv.FormatInt(time.Now().Unix(), 10))
	for i := 0; i < maxKeepCopies; i++ {
		name := base
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		err := os.Link(tmpPath, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.Remove(tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return name, syncDir(dir)
	}
	return "", fmt.Errorf("uidlist: keep copy: %d copies named %s* exist already", maxKeepCopies, base)
}
