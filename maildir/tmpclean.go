package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// StaleTmpAge is how old a file in tmp/ must be before CleanTmp removes
// it. The Maildir specification names 36 hours: no delivery takes that
// long, so the file was left by a writer that crashed.
const StaleTmpAge = 36 * time.Hour

// CleanTmp removes the regular files in dir/tmp whose modification time
// and status-change time are both older than StaleTmpAge at now, and
// returns how many it removed. The access time is not used: it is
// unreliable (noatime, relatime, and readers such as backup programs move
// it). The ctime check protects a file that was just linked or renamed
// into tmp/, which keeps its old mtime.
//
// The listing of tmp/ need not be complete: a file missed now is removed
// by a later call. A file that vanishes meanwhile is skipped. Errors on
// single files do not stop the cleaning; they are returned joined, with
// the count of files that were removed.
func CleanTmp(dir string, now time.Time) (removed int, err error) {
	tmp := filepath.Join(dir, Tmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("maildir: clean tmp: %w", err)
	}
	cutoff := now.Add(-StaleTmpAge)
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ctime := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
			if !ctime.Before(cutoff) {
				continue
			}
		}
		if err := os.Remove(path); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("maildir: clean tmp: %w", errors.Join(errs...))
	}
	return removed, nil
}
