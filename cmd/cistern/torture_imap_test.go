package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/torture/imaptorture"
)

func TestTortureIMAPUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want error
		says string
	}{
		{"no address", []string{"torture", "imap", "--user", "u"}, errUsage, "--imap and --user are required"},
		{"no user", []string{"torture", "imap", "--imap", "127.0.0.1:143"}, errUsage, "--imap and --user are required"},
		{"bad seconds", []string{"torture", "imap", "--imap", "127.0.0.1:143", "--user", "u", "--seconds", "0"}, errUsage, "--seconds"},
		{"negative lifecycle rate", []string{"torture", "imap", "--imap", "127.0.0.1:143", "--user", "u", "--aux-lifecycle", "-1"}, errUsage, "--aux-lifecycle"},
		{"negative resync actors", []string{"torture", "imap", "--imap", "127.0.0.1:143", "--user", "u", "--resync", "-1"}, errUsage, "--resync"},
		{"remote", []string{"torture", "imap", "--imap", "192.0.2.1:143", "--user", "u", "--seconds", "1"}, imaptorture.ErrRemote, "loopback"},
		{"remote LMTP", []string{"torture", "imap", "--imap", "127.0.0.1:143", "--lmtp", "192.0.2.1:24", "--user", "u", "--seconds", "1"}, imaptorture.ErrRemote, "loopback"},
		{"compare without files", []string{"torture", "imap-compare"}, errUsage, ""},
		{"compare, not NAME=FILE", []string{"torture", "imap-compare", "x.json"}, errUsage, "NAME=FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), tc.args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error()+errOut.String(), tc.says) {
				t.Errorf("error %v (stderr %q), want %v saying %q", err, errOut.String(), tc.want, tc.says)
			}
		})
	}
}

func TestTortureIMAPCompare(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for i, name := range []string{"cistern", "dovecot"} {
		res := imaptorture.Result{Target: name + ":143", Sessions: 8, Seconds: 300, Operations: 1000 * (i + 1),
			Ops:        []imaptorture.OpStat{{Op: "SELECT", Count: 10 + i, P50ms: 1, P99ms: 2}},
			Violations: map[imaptorture.Kind]int{imaptorture.PhantomExpunge: 3 * i}, Total: 3 * i}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, name+"="+path)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), append([]string{"torture", "imap-compare"}, args...), Stdio{Out: &out, Err: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cistern", "dovecot", "2000 (", "SELECT (p50/p99 ms)", "11 (1.0/2.0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	lines := strings.Split(out.String(), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "phantom expunge") && !strings.HasSuffix(strings.TrimSpace(l), " 3") {
			t.Errorf("phantom expunge row %q", l)
		}
	}
}
