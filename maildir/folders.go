package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Maildir++ folders.
//
// The root Maildir is INBOX. Every other folder is a Maildir in the root
// whose directory name is a dot followed by the folder's path joined with
// dots: folder A/B lives in <root>/.A.B, and holds an empty file named
// maildirfolder. A parent need not exist on disk: .A.B may exist without
// .A (A is then only a level of the hierarchy, \Noselect in IMAP).
//
// A folder path is a []string of elements. An element cannot hold a dot
// (the separator), '/', NUL or control characters, and cannot be empty;
// a layer above that wants such names escapes them first. Element bytes
// are stored as given (IMAP's modified UTF-7 or UTF-8: the caller's
// choice).
//
// Folder operations change the root directory; callers serialize them
// (two concurrent renames of one folder are not detected).

// Errors of folder operations.
var (
	ErrBadFolderName  = errors.New("maildir: bad folder name")
	ErrFolderExists   = errors.New("maildir: folder exists")
	ErrFolderNotFound = errors.New("maildir: folder does not exist")
)

// FolderSep separates the elements of a folder path in a Maildir++
// directory name.
const FolderSep = '.'

// MaildirFolderFile is the empty file that marks a Maildir++ folder.
const MaildirFolderFile = "maildirfolder"

// SubscriptionsFile is the file, in the root, listing subscribed folders.
const SubscriptionsFile = "subscriptions"

// deletedPrefix starts the name a folder is renamed to while DeleteFolder
// removes it. It has no leading dot, so no Maildir++ reader (ours,
// Dovecot's, Courier's) takes it for a folder.
const deletedPrefix = "cistern-deleted."

// validFolderElement returns why e cannot be a folder path element, or
// nil.
func validFolderElement(e string) error {
	var why string
	switch {
	case e == "":
		why = "empty element"
	case e == "." || e == "..":
		why = fmt.Sprintf("element %q", e)
	case e[0] == '.':
		why = fmt.Sprintf("element %q starts with '.'", e)
	case strings.IndexByte(e, '/') >= 0:
		why = fmt.Sprintf("element %q holds '/'", e)
	case strings.IndexByte(e, FolderSep) >= 0:
		why = fmt.Sprintf("element %q holds '.', the Maildir++ hierarchy separator", e)
	default:
		for _, c := range e {
			if c < 0x20 || (c >= 0x7f && c <= 0x9f) {
				if c == 0 {
					why = fmt.Sprintf("element %q holds NUL", e)
				} else {
					why = fmt.Sprintf("element %q holds control character U+%04X", e, c)
				}
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBadFolderName, why)
}

// FolderName returns the Maildir++ directory name of a folder: ".A.B" for
// path {"A", "B"}. An empty path (INBOX, the root itself) or an invalid
// element is an error wrapping ErrBadFolderName.
func FolderName(path []string) (string, error) {
	if len(path) == 0 {
		return "", fmt.Errorf("%w: empty path (INBOX is the root Maildir)", ErrBadFolderName)
	}
	n := 0
	for _, e := range path {
		if err := validFolderElement(e); err != nil {
			return "", err
		}
		n += 1 + len(e)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, e := range path {
		sb.WriteByte(FolderSep)
		sb.WriteString(e)
	}
	return sb.String(), nil
}

// ParseFolderName returns the folder path of a Maildir++ directory name
// (".A.B" gives {"A", "B"}). A name that no folder has gives an error
// wrapping ErrBadFolderName.
func ParseFolderName(name string) ([]string, error) {
	if len(name) < 2 || name[0] != FolderSep {
		return nil, fmt.Errorf("%w: %q is not a Maildir++ folder directory name", ErrBadFolderName, name)
	}
	path := strings.Split(name[1:], string(FolderSep))
	for _, e := range path {
		if err := validFolderElement(e); err != nil {
			return nil, err
		}
	}
	return path, nil
}

// FolderDir returns the directory of the folder path under root: root
// itself for an empty path (INBOX), root/.A.B for {"A", "B"}.
func FolderDir(root string, path []string) (string, error) {
	if len(path) == 0 {
		return root, nil
	}
	name, err := FolderName(path)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// rootPerm returns the mode new folder directories get: the root's.
func rootPerm(root string) os.FileMode {
	if fi, err := os.Stat(root); err == nil && fi.Mode().Perm() != 0 {
		return fi.Mode().Perm()
	}
	return DefaultDirPerm
}

// CreateFolder creates the folder path under root: a Maildir holding the
// maildirfolder file, with the root's permissions, fsynced. A folder that
// exists gives an error wrapping ErrFolderExists; a folder directory that
// a crash left half made (no tmp/, new/ or cur/) is completed instead.
// An empty path (INBOX) always exists.
func CreateFolder(root string, path []string) error {
	if len(path) == 0 {
		return fmt.Errorf("maildir: create folder: %w: INBOX", ErrFolderExists)
	}
	name, err := FolderName(path)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, name)
	perm := rootPerm(root)
	made, err := mkdirOne(dir, perm)
	if err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if !made {
		// A folder this process may not look inside exists all the same.
		if err := CheckMaildir(dir); err == nil || errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("maildir: create folder %s: %w", name, ErrFolderExists)
		}
	}
	marker := filepath.Join(dir, MaildirFolderFile)
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE, perm&0o666)
	if err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if err := Create(dir, perm); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if err := SyncDir(root); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	return nil
}

// DeleteFolder removes the folder path under root with every message in
// it. Its children (.A.B.C for A/B) stay: in IMAP terms the folder
// becomes a \Noselect level of the hierarchy if it has children, and
// disappears otherwise.
//
// The folder first disappears atomically: it is renamed to a name
// starting "cistern-deleted." in root (no Maildir++ reader takes that for
// a folder), the root is fsynced, and only then is that tree removed. A
// crash therefore never leaves a half-removed folder visible; it may
// leave a deleted tree behind, which the next DeleteFolder under the
// same root removes. A missing folder gives an error wrapping
// ErrFolderNotFound, one this process may not look inside an error
// matching fs.ErrPermission (and it stays).
func DeleteFolder(root string, path []string) error {
	if len(path) == 0 {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrBadFolderName)
	}
	name, err := FolderName(path)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, name)
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: delete folder %s: %w", name, ErrFolderNotFound)
	}
	if err != nil {
		return fmt.Errorf("maildir: delete folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("maildir: delete folder: %s is not a directory", dir)
	}
	// A folder this process may not look inside could be renamed away
	// but not removed: it would vanish with its files still on disk.
	if err := CheckMaildir(dir); errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("maildir: delete folder %s: %w", name, err)
	}
	trash := filepath.Join(root, deletedPrefix+defaultGen.New(time.Now()))
	if err := renameDirNoReplace(dir, trash); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("maildir: delete folder %s: %w", name, ErrFolderNotFound)
		}
		return fmt.Errorf("maildir: delete folder: %w", err)
	}
	if err := SyncDir(root); err != nil {
		return fmt.Errorf("maildir: delete folder: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("maildir: delete folder %s (it is gone; its files remain in %s): %w", name, trash, err)
	}
	removeDeletedLeftovers(root)
	return nil
}

// removeDeletedLeftovers removes deleted folder trees that a crash left
// in root. Errors are ignored: the folders are already invisible, and a
// concurrent DeleteFolder may be removing the same tree.
func removeDeletedLeftovers(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), deletedPrefix) {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// RenameFolder renames the folder from to to under root, with all its
// children: .A, .A.X, .A.X.Y become .B, .B.X, .B.X.Y. The folder itself
// need not exist on disk when it has children. Errors: ErrFolderNotFound
// when neither the folder nor a child exists, ErrFolderExists when the
// folder or a child's new name exists, ErrBadFolderName for an empty path
// (renaming INBOX moves its messages and is not done here) and for a
// rename under itself.
//
// Each directory rename is atomic, the whole is not: Maildir++ keeps each
// folder in its own directory. If a rename fails midway, the ones done
// are undone (best effort) and the error is returned; a crash midway
// leaves some children under the new name. The root is fsynced at the
// end. The listing of root that finds the children is a plain readdir: a
// child created or renamed concurrently may be missed, so callers
// serialize folder operations.
func RenameFolder(root string, from, to []string) error {
	if len(from) == 0 || len(to) == 0 {
		return fmt.Errorf("%w: renaming INBOX is not supported here", ErrBadFolderName)
	}
	fromName, err := FolderName(from)
	if err != nil {
		return err
	}
	toName, err := FolderName(to)
	if err != nil {
		return err
	}
	if fromName == toName {
		return fmt.Errorf("maildir: rename folder %s: %w", toName, ErrFolderExists)
	}
	if len(to) > len(from) && slices.Equal(to[:len(from)], from) {
		return fmt.Errorf("%w: cannot rename %s under itself (%s)", ErrBadFolderName, fromName, toName)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("maildir: rename folder: %w", err)
	}
	type move struct{ from, to string }
	var moves []move
	for _, e := range entries {
		n := e.Name()
		if n != fromName && !strings.HasPrefix(n, fromName+string(FolderSep)) {
			continue
		}
		if !e.IsDir() {
			continue // a symbolic link is no folder (nofollow.go)
		}
		moves = append(moves, move{filepath.Join(root, n), filepath.Join(root, toName+n[len(fromName):])})
	}
	if len(moves) == 0 {
		return fmt.Errorf("maildir: rename folder %s: %w", fromName, ErrFolderNotFound)
	}
	// Parents first, so that a crash midway leaves the top renamed.
	slices.SortFunc(moves, func(a, b move) int { return strings.Compare(a.from, b.from) })
	for _, m := range moves {
		if _, err := os.Lstat(m.to); err == nil {
			return fmt.Errorf("maildir: rename folder to %s: %w", filepath.Base(m.to), ErrFolderExists)
		}
	}
	var done []move
	for _, m := range moves {
		err := renameDirNoReplace(m.from, m.to)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile: nothing to rename
		}
		if err != nil {
			for i := len(done) - 1; i >= 0; i-- {
				_ = renameDirNoReplace(done[i].to, done[i].from)
			}
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("maildir: rename folder to %s: %w: %w", filepath.Base(m.to), ErrFolderExists, err)
			}
			return fmt.Errorf("maildir: rename folder: %w", err)
		}
		done = append(done, m)
	}
	if len(done) == 0 {
		return fmt.Errorf("maildir: rename folder %s: %w", fromName, ErrFolderNotFound)
	}
	if err := SyncDir(root); err != nil {
		return fmt.Errorf("maildir: rename folder: %w", err)
	}
	return nil
}

// ListFolders returns the path of every folder under root: every .X.Y
// directory that is a Maildir (IsMaildir), or that this process may not
// look inside (CheckMaildir's permission error: it exists, and opening it
// says why it cannot be used), and whose name is a valid folder name,
// sorted element by element. INBOX (the root) is not in the list. A
// parent that exists only as a level of the hierarchy (.A.B without .A)
// is not listed. A folder name that is a symbolic link is no folder
// (nofollow.go): it is skipped, and so is a folder whose new/, cur/ or
// tmp/ is a link. A directory whose name is not a valid folder name (a
// control character, an empty element) is skipped too. The root is read
// with a plain readdir: a folder renamed during the call may be missed.
func ListFolders(root string) ([][]string, error) { return ListFoldersSkipping(root, nil) }

// ListFoldersSkipping is ListFolders that tells skipped (when not nil)
// of every entry named like a folder that it leaves out, and why: for
// being or holding a symbolic link (an error wrapping ErrSymlink), or for
// a name that is no folder name (ErrBadFolderName), so that the caller
// can log it.
func ListFoldersSkipping(root string, skipped func(name string, why error)) ([][]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("maildir: list folders: %w", err)
	}
	var out [][]string
	for _, e := range entries {
		n := e.Name()
		if len(n) < 2 || n[0] != FolderSep {
			continue
		}
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		path, err := ParseFolderName(n)
		if err != nil {
			if n != "." && n != ".." && skipped != nil {
				skipped(n, err)
			}
			continue
		}
		err = CheckFolder(root, n)
		if err == nil || errors.Is(err, fs.ErrPermission) {
			out = append(out, path)
		} else if errors.Is(err, ErrSymlink) && skipped != nil {
			skipped(n, err)
		}
	}
	slices.SortFunc(out, slices.Compare)
	return out, nil
}

// Subscriptions file formats. Version 1 (Courier, and what
// WriteSubscriptions writes) is one folder name per line. Dovecot's
// version 2 starts with the header below and writes each name's elements
// separated by TAB, with \001 escapes for TAB, CR, LF and \001 itself.
const subsV2Header = "V\t2\n\n"

// ReadSubscriptions returns the folder names in root's subscriptions
// file, in file order, without empty lines. A missing file is an empty
// list. Dovecot's version 2 file is read too: its names are returned
// with '.' (FolderSep) between the elements.
func ReadSubscriptions(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, SubscriptionsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: read subscriptions: %w", err)
	}
	v2 := bytes.HasPrefix(data, []byte(subsV2Header))
	if v2 {
		data = data[len(subsV2Header):]
	}
	var names []string
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if !v2 {
			names = append(names, string(line))
			continue
		}
		elems := bytes.Split(line, []byte{'\t'})
		parts := make([]string, len(elems))
		for i, e := range elems {
			parts[i] = tabUnescape(e)
		}
		names = append(names, strings.Join(parts, string(FolderSep)))
	}
	return names, nil
}

// tabUnescape undoes Dovecot's tab escaping: \001 followed by '1', 't',
// 'r', 'n' or '0' stands for \001, TAB, CR, LF or NUL.
func tabUnescape(b []byte) string {
	if bytes.IndexByte(b, 1) < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 1 || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		i++
		switch b[i] {
		case '1':
			out = append(out, 1)
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case '0':
			out = append(out, 0)
		default:
			out = append(out, b[i])
		}
	}
	return string(out)
}

// WriteSubscriptions replaces root's subscriptions file with names, one
// per line (version 1, which Courier and Dovecot both read). The write is
// durable and atomic: a temporary file (in root/tmp when it exists, so
// that CleanTmp removes one a crash left) is written and fsynced, renamed
// over the file, and root is fsynced. A crash leaves the old list or the
// new one. A name that is empty or holds CR, LF or NUL is an error.
// Concurrent writers are not merged: the last rename wins.
func WriteSubscriptions(root string, names []string) error {
	var buf bytes.Buffer
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "\r\n\x00") {
			return fmt.Errorf("maildir: write subscriptions: %w: %q", ErrBadFolderName, n)
		}
		buf.WriteString(n)
		buf.WriteByte('\n')
	}
	if err := WriteFile(root, SubscriptionsFile, buf.Bytes()); err != nil {
		return fmt.Errorf("maildir: write subscriptions: %w", err)
	}
	return nil
}

// WriteFile replaces the control file name (subscriptions, a program's
// own state) in the Maildir root with data, durably and atomically:
//
//  1. a new file in root/tmp (root itself when there is no tmp/), created
//     with O_EXCL — crash: a stray tmp/ file, removed by CleanTmp;
//  2. written and fsynced — crash: the same;
//  3. renamed over root/name — crash before step 4: after a power loss
//     the old file or the new one, whole;
//  4. root fsynced: the new file is durable.
//
// Concurrent writers are not merged: the last rename wins.
func WriteFile(root, name string, data []byte) error {
	tmpDir := filepath.Join(root, Tmp)
	if fi, err := os.Stat(tmpDir); err != nil || !fi.IsDir() {
		tmpDir = root
	}
	f, tmpPath, err := createExcl(tmpDir, name+".", &defaultGen, time.Now(), DefaultFilePerm)
	if err != nil {
		return err
	}
	err = func() error {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmpPath, filepath.Join(root, name)); err != nil {
			return err
		}
		return SyncDir(root)
	}()
	if err != nil {
		os.Remove(tmpPath)
	}
	return err
}
