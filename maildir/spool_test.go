package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSpoolThenLink(t *testing.T) {
	first := newMaildir(t)
	second := filepath.Join(filepath.Dir(first), "second")
	if err := Create(second, 0); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: once\r\n\r\nbody\nbare lf\n"
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	path, size, err := Spool(first, strings.NewReader(msg), DeliverOptions{Time: date})
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(msg)) {
		t.Errorf("size %d, want %d", size, len(msg))
	}
	if filepath.Dir(path) != filepath.Join(first, Tmp) {
		t.Errorf("spool %s is not in %s/tmp", path, first)
	}
	if s, w := SizeFields(filepath.Base(path)); s != int64(len(msg)) || w != crlfSize(msg) {
		t.Errorf("size fields of %s: %d, %d", path, s, w)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(date) || fi.Mode().Perm() != DefaultFilePerm {
		t.Errorf("spool mtime %v mode %v, want %v %v", fi.ModTime(), fi.Mode().Perm(), date, DefaultFilePerm)
	}
	if names := dirNames(t, filepath.Join(first, New)); len(names) != 0 {
		t.Errorf("a spooled message is visible in new/: %v", names)
	}

	var linked []os.FileInfo
	for _, dir := range []string{first, second} {
		name, err := Link(path, dir, DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s, w := SizeFields(name); s != int64(len(msg)) || w != crlfSize(msg) {
			t.Errorf("linked name %q: sizes %d, %d", name, s, w)
		}
		fi, err := os.Stat(filepath.Join(dir, New, name))
		if err != nil {
			t.Fatal(err)
		}
		linked = append(linked, fi)
	}
	if !os.SameFile(linked[0], linked[1]) || !os.SameFile(linked[0], fi) {
		t.Error("the linked copies are not one inode")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != msg {
		t.Errorf("spool content %q, %v", data, err)
	}
}

func TestSpoolFailure(t *testing.T) {
	for _, n := range []int{0, 1, copyBufSize + 3} {
		dir := newMaildir(t)
		_, _, err := Spool(dir, &failingReader{n: n}, DeliverOptions{})
		if !errors.Is(err, errBoom) {
			t.Errorf("after %d bytes: err = %v, want errBoom", n, err)
		}
		for _, sub := range []string{New, Cur, Tmp} {
			if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
				t.Errorf("after %d bytes: %s/ holds %v", n, sub, names)
			}
		}
	}
	if _, _, err := Spool(filepath.Join(t.TempDir(), "none"), strings.NewReader("x"), DeliverOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no Maildir: err = %v", err)
	}
}
