package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Spool writes the message read from r into a new file in dir's tmp/,
// durably, and returns its path and size: the first half of a delivery
// whose message is then published into one or more Maildirs with Link
// (one write, many hard links). The steps, and what a crash at each
// leaves behind:
//
//  1. Create tmp/<unique> with O_CREAT|O_EXCL (a taken name is retried
//     with a fresh one) and copy r into it, counting its size and its
//     size with CRLF line endings. Crash: a partial file in tmp/, which
//     no reader takes for a message; CleanTmp removes it after 36 hours.
//  2. Set the mtime (opts.Time), fsync the file and close it. From here
//     the data is durable; a link to it made later is durable once the
//     directory holding that link is fsynced (Link does it).
//  3. Rename it, within tmp/, to tmp/<unique>,S=<size>,W=<vsize>, so that
//     Link takes the sizes from the name instead of reading the file
//     again for every Maildir. Crash: as in step 1, a file in tmp/.
//
// The spool file is never visible as a message. The caller removes it
// (os.Remove) once every Link is done; a crash before that leaves it for
// CleanTmp. On any error Spool removes the file and returns the error,
// wrapped, with the operation and path in it; an error returned by r is
// wrapped too, so that errors.Is finds it.
//
// opts.Time, opts.Perm and opts.Gen apply as in Deliver. opts.Cur and
// opts.Flags belong to the Link that publishes the message and are not
// looked at here.
func Spool(dir string, r io.Reader, opts DeliverOptions) (path string, size int64, err error) {
	perm := opts.Perm
	if perm == 0 {
		perm = DefaultFilePerm
	}
	now := time.Now()
	gen := opts.gen()

	f, tmpPath, err := createTmp(dir, gen, now, perm)
	if err != nil {
		return "", 0, fmt.Errorf("maildir: spool in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close() // harmless when already closed
			os.Remove(tmpPath)
			err = fmt.Errorf("maildir: spool in %s: %w", dir, err)
		}
	}()

	cw := crlfCounter{w: f}
	if _, err = io.CopyBuffer(&cw, onlyReader{r}, make([]byte, copyBufSize)); err != nil {
		return "", 0, err
	}
	if !opts.Time.IsZero() {
		if err = os.Chtimes(tmpPath, now, opts.Time); err != nil {
			return "", 0, err
		}
	}
	if err = f.Sync(); err != nil {
		return "", 0, err
	}
	if err = f.Close(); err != nil {
		return "", 0, err
	}

	sized := WithSizes(tmpPath, cw.size, cw.vsize)
	switch rerr := renameNoReplace(tmpPath, sized); {
	case rerr == nil:
		return sized, cw.size, nil
	case errors.Is(rerr, unix.EEXIST):
		// Another file has that name (only a foreign program could make
		// it): keep the plain name; Link then measures the file.
		return tmpPath, cw.size, nil
	default:
		err = rerr
		return "", 0, err
	}
}
