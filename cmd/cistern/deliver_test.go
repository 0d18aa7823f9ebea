package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/maildir"
)

// ldaSetup writes a configuration and a passwd-file with the users
// alice, tiny (a 10-byte quota) and blocked (a file stands where its
// Maildir's parent should be); extra is appended to the configuration.
func ldaSetup(t *testing.T, extra string) (cfg, mail string) {
	t.Helper()
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	for _, u := range []auth.User{
		{Name: "alice", Password: "{PLAIN}x"},
		{Name: "tiny", Password: "{PLAIN}x", Extra: []string{"quota_rule=*:bytes=10"}},
		{Name: "blocked", Password: "{PLAIN}x"},
	} {
		if err := auth.Add(passwd, u); err != nil {
			t.Fatal(err)
		}
	}
	mail = filepath.Join(dir, "mail")
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mail, "blocked"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "cistern.toml")
	toml := fmt.Sprintf("data_dir = %q\nmail_location = %q\npasswd_file = %q\n%s", dir+"/data", mail+"/%u/Maildir", passwd, extra)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, mail
}

// runLDA runs 'cistern deliver' with stdin and returns its exit code and
// standard error.
func runLDA(stdin string, args ...string) (int, string) {
	var stderr strings.Builder
	err := Run(context.Background(), append([]string{"deliver"}, args...), Stdio{In: strings.NewReader(stdin), Out: io.Discard, Err: &stderr})
	return exitCode(err, &stderr), stderr.String()
}

func newMessages(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, maildir.New, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}

func TestDeliverExitCodes(t *testing.T) {
	cfg, mail := ldaSetup(t, "")
	const msg = "Subject: lda\n\nbody\n"
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"delivered", "From s@example.org Thu Jan  1 00:00:00 2026\n" + msg, []string{"-u", "alice", "-f", "<s@example.org>"}, 0},
		{"only a From line", "From s@example.org Thu Jan  1 00:00:00 2026\n", []string{"-u", "alice"}, exDataErr},
		{"unknown user", msg, []string{"-u", "nobody"}, exNoUser},
		{"cannot create", msg, []string{"-u", "blocked"}, exCantCreat},
		{"empty message", "", []string{"-u", "alice"}, exDataErr},
		{"NUL", "Subject: x\n\na\x00b\n", []string{"-u", "alice"}, exDataErr},
		{"over quota", msg, []string{"-u", "tiny"}, exNoPerm},
		{"no -u", msg, nil, exUsage},
		{"argument", msg, []string{"-u", "alice", "extra"}, exUsage},
		{"bad sender", msg, []string{"-u", "alice", "-f", "a\nb"}, exUsage},
		{"create without folder", msg, []string{"-u", "alice", "--create"}, exUsage},
		{"no configuration", msg, []string{"-u", "alice", "--config", filepath.Join(t.TempDir(), "none.toml")}, exTempFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--config") {
				args = append([]string{"--config", cfg}, args...)
			}
			code, stderr := runLDA(tt.stdin, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.code == 0 && stderr != "" {
				t.Errorf("stderr %q after a delivery", stderr)
			}
			if tt.code != 0 && tt.code != exUsage {
				if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "cistern: deliver: ") {
					t.Errorf("stderr %q, want one line of reason", stderr)
				}
			}
		})
	}
	got := newMessages(t, filepath.Join(mail, "alice", "Maildir"))
	if want := "Return-Path: <s@example.org>\r\nDelivered-To: alice\r\nSubject: lda\r\n\r\nbody\r\n"; len(got) != 1 || got[0] != want {
		t.Errorf("alice's INBOX: %q, want %q", got, want)
	}
	if got := newMessages(t, filepath.Join(mail, "tiny", "Maildir")); len(got) != 0 {
		t.Errorf("tiny's INBOX: %q", got)
	}
}

func TestDeliverQuotaTempfail(t *testing.T) {
	cfg, _ := ldaSetup(t, "[lmtp]\nquota_full_tempfail = true\n")
	if code, stderr := runLDA("Subject: x\n\ny\n", "--config", cfg, "-u", "tiny"); code != exTempFail {
		t.Errorf("exit %d, want %d (stderr %q)", code, exTempFail, stderr)
	}
}

func TestDeliverUnreadablePasswd(t *testing.T) {
	cfg, mail := ldaSetup(t, "")
	if err := os.Remove(filepath.Join(filepath.Dir(mail), "passwd")); err != nil {
		t.Fatal(err)
	}
	if code, stderr := runLDA("x\n", "--config", cfg, "-u", "alice"); code != exTempFail {
		t.Errorf("exit %d, want %d (stderr %q)", code, exTempFail, stderr)
	}
}

func TestDeliverFolder(t *testing.T) {
	cfg, mail := ldaSetup(t, "")
	root := filepath.Join(mail, "alice", "Maildir")
	tests := []struct {
		args []string
		dir  string
	}{
		{[]string{"-m", "Junk"}, ".Junk"}, // made with the account
		// Never into \Sent, \Drafts or \Trash (delivery.ProtectedUse).
		{[]string{"-m", "Sent"}, ""},
		{[]string{"-m", "Drafts", "--create"}, ""},
		{[]string{"-m", "Trash"}, ""},
		// The address's detail names no folder without
		// lmtp.save_to_detail_mailbox.
		{[]string{"-u", "alice+Junk"}, ""},
		{[]string{"-m", "Missing"}, ""},
		{[]string{"-m", "a/b"}, ""},
		{[]string{"-m", "Lists.Go", "--create"}, ".Lists.Go"},
		{[]string{"-m", "INBOX"}, ""},
	}
	for _, tt := range tests {
		args := append([]string{"--config", cfg, "-u", "alice"}, tt.args...)
		if code, stderr := runLDA("Subject: f\n\nx\n", args...); code != 0 {
			t.Fatalf("%q: exit %d (%s)", tt.args, code, stderr)
		}
		got := newMessages(t, filepath.Join(root, tt.dir))
		if len(got) != 1 {
			t.Fatalf("%q: %s holds %d messages, want 1", tt.args, tt.dir, len(got))
		}
		names, _ := filepath.Glob(filepath.Join(root, tt.dir, maildir.New, "*"))
		os.Remove(names[0])
	}
	if _, err := os.Stat(filepath.Join(root, ".Missing")); !os.IsNotExist(err) {
		t.Errorf("-m Missing made the folder: %v", err)
	}
	if code, _ := runLDA("x\n", "--config", cfg, "-u", "alice", "-m", "a/b", "--create"); code != exCantCreat {
		t.Errorf("--create of an impossible name: exit %d, want %d", code, exCantCreat)
	}
}

func TestDeliverHelp(t *testing.T) {
	var out strings.Builder
	if err := Run(context.Background(), []string{"deliver", "-h"}, Stdio{In: strings.NewReader(""), Out: &out, Err: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "usage: cistern deliver") {
		t.Errorf("-h printed %q", out.String())
	}
}
