package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/metrics/metricstest"
	"github.com/cistern-mail/cistern/maildir"
)

// metricsConfig writes a configuration serving alice/secret on loopback
// ports chosen at start, with the extra TOML text, and returns its path
// and alice's Maildir.
func metricsConfig(t *testing.T, extra string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	cfg := filepath.Join(dir, "cistern.toml")
	text := fmt.Sprintf("data_dir = %q\nmail_location = %q\npasswd_file = %q\n[imap]\nlisten = [\"127.0.0.1:0\"]\n%s",
		dir+"/data", dir+"/mail/%u/Maildir", passwd, extra)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, filepath.Join(dir, "mail", "alice", "Maildir")
}

// listeningPorts returns the TCP ports this process listens on, from
// its file descriptors and the kernel's socket tables.
func listeningPorts(t *testing.T) map[int]bool {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
			if ino, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode (field 9)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[int(p)] = true
			}
		}
	}
	return ports
}

// newPorts are the ports in after and not in before.
func newPorts(before, after map[int]bool) map[int]bool {
	out := map[int]bool{}
	for p := range after {
		if !before[p] {
			out[p] = true
		}
	}
	return out
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// imapScript runs commands (tag and command each) on a new connection
// and returns the tagged response of each.
func imapScript(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(serveStartTimeout))
	br := bufio.NewReader(nc)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK ") {
		t.Fatalf("greeting %q, %v", l, err)
	}
	var tagged []string
	for i, c := range cmds {
		tag := fmt.Sprintf("m%d", i+1)
		fmt.Fprintf(nc, "%s %s\r\n", tag, c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				tagged = append(tagged, strings.TrimSpace(strings.TrimPrefix(l, tag+" ")))
				break
			}
		}
	}
	return tagged
}

func getMetrics(t *testing.T, addr string) *metricstest.Exposition {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	e, err := metricstest.Parse(string(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return e
}

// TestServeMetrics: with metrics.listen, cistern serve answers GET
// /metrics with what a scripted IMAP session and an LMTP delivery did.
func TestServeMetrics(t *testing.T) {
	cfg, inbox := metricsConfig(t, "[lmtp]\nlisten = [\"127.0.0.1:0\"]\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	before := listeningPorts(t)
	started := time.Now()
	r := startServe(t, "--config", cfg)
	lmtpAddr := nextLine(t, r.errOut, regexp.MustCompile(`msg="lmtp: listening" addr=(\S+)`))[1]
	metricsAddr := nextLine(t, r.errOut, regexp.MustCompile(`msg="metrics: listening" addr=(\S+)`))[1]
	want := map[int]bool{portOf(t, r.addr): true, portOf(t, lmtpAddr): true, portOf(t, metricsAddr): true}
	if got := newPorts(before, listeningPorts(t)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listening on %v, want IMAP, LMTP and metrics %v", got, want)
	}

	msg := "Subject: counted\r\n\r\nhello\r\n"
	if err := lmtpSend(t, "tcp", lmtpAddr, "s@example.org", []string{"alice@example.org"}, msg); err != nil {
		t.Fatalf("LMTP: %v", err)
	}
	tagged := imapScript(t, r.addr, "LOGIN alice secret", "SELECT INBOX", "FETCH 1 (FLAGS)", "FROB", "LOGOUT")
	for i, w := range []string{"OK", "OK", "OK", "BAD", "OK"} {
		if !strings.HasPrefix(tagged[i], w) {
			t.Errorf("command %d: %q, want %s", i+1, tagged[i], w)
		}
	}
	// The session is counted to its end once it is gone.
	var e *metricstest.Exposition
	deadline := time.Now().Add(serveStartTimeout)
	for {
		e = getMetrics(t, metricsAddr)
		if v, _ := e.Value("cistern_imap_sessions"); v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the IMAP session is still counted as open")
		}
		time.Sleep(10 * time.Millisecond)
	}

	check := func(want float64, name string, labels ...string) {
		t.Helper()
		if v, ok := e.Value(name, labels...); !ok || v != want {
			t.Errorf("%s%q = %v (%v), want %v", name, labels, v, ok, want)
		}
	}
	for _, c := range [][2]string{{"LOGIN", "ok"}, {"SELECT", "ok"}, {"FETCH", "ok"}, {"other", "bad"}, {"LOGOUT", "ok"}} {
		check(1, "cistern_imap_commands_total", "command", c[0], "outcome", c[1])
	}
	if v, n := e.Sum("cistern_imap_commands_total"); v != 5 || n != 5 {
		t.Errorf("%v IMAP commands in %d series, want 5", v, n)
	}
	check(1, "cistern_imap_command_duration_seconds_count", "command", "SELECT")
	check(1, "cistern_imap_connections_accepted_total")
	check(0, "cistern_imap_connections_refused_total")
	check(1, "cistern_lmtp_connections_accepted_total")
	check(1, "cistern_deliveries_total", "result", "delivered")
	check(0, "cistern_deliveries_total", "result", "unknown_user")
	check(0, "cistern_auth_failures_total")
	check(0, "cistern_panics_total", "server", "imap")
	check(0, "cistern_panics_total", "server", "lmtp")
	names, _ := filepath.Glob(filepath.Join(inbox, maildir.New, "*"))
	cur, _ := filepath.Glob(filepath.Join(inbox, maildir.Cur, "*"))
	names = append(names, cur...)
	if len(names) != 1 {
		t.Fatalf("INBOX holds %q", names)
	}
	fi, err := os.Stat(names[0])
	if err != nil {
		t.Fatal(err)
	}
	check(float64(fi.Size()), "cistern_delivered_bytes_total")

	// SELECT's sync read the INBOX with the proof its filesystem gives.
	proof := "none"
	var proofs [2]maildir.Proof
	for i, sub := range []string{maildir.New, maildir.Cur} {
		l, err := maildir.List(filepath.Join(inbox, sub), maildir.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		proofs[i] = l.Proof
	}
	switch {
	case !proofs[0].Proven() || !proofs[1].Proven():
	case proofs[0] == maildir.ProofStableTimestamp || proofs[1] == maildir.ProofStableTimestamp:
		proof = "stable_timestamp"
	default:
		proof = strings.ReplaceAll(proofs[1].String(), "-", "_")
	}
	if v, _ := e.Value("cistern_syncs_total", "proof", proof); v < 1 {
		all, _ := e.Sum("cistern_syncs_total")
		t.Errorf("no sync counted under %q (%v syncs in all)", proof, all)
	}
	check(0, "cistern_sync_suspects")
	if v, ok := e.Value("cistern_process_start_time_seconds"); !ok || v < float64(started.Unix()) || v > float64(time.Now().Unix()+1) {
		t.Errorf("start time %v (%v), want about %d", v, ok, started.Unix())
	}
	if v, n := e.Sum("cistern_build_info"); v != 1 || n != 1 {
		t.Errorf("build_info %v in %d series", v, n)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		t.Error("the metrics are still served after the stop")
	}
}

// TestServeNoMetrics: without metrics.listen nothing serves metrics: the
// process listens on the IMAP port only.
func TestServeNoMetrics(t *testing.T) {
	cfg, _ := metricsConfig(t, "")
	before := listeningPorts(t)
	r := startServe(t, "--config", cfg)
	// The greeting comes from a server started after the metrics would
	// have been.
	imapScript(t, r.addr, "NOOP")
	if got := newPorts(before, listeningPorts(t)); len(got) != 1 || !got[portOf(t, r.addr)] {
		t.Errorf("listening on %v, want the IMAP port %d only", got, portOf(t, r.addr))
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for {
		l, ok := <-r.errOut
		if !ok {
			break
		}
		if strings.Contains(l, "metrics") {
			t.Errorf("log line about metrics: %s", l)
		}
	}
}
