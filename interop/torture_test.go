//go:build interop

package interop

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/testproc"
	"github.com/cistern-mail/cistern/internal/torture/imaptorture"
)

// ChromiumBinary is where Debian's chromium package installs the browser.
const ChromiumBinary = "/usr/bin/chromium"

const (
	// chromiumTimeout bounds one headless Chromium run.
	chromiumTimeout = 2 * time.Minute
	// The window the report is rendered in.
	shotWidth, shotHeight = 1200, 2000
)

// TestTortureDovecot runs `cistern torture imap` against a private
// Dovecot with foreign writers in its Maildir, for a few seconds: the
// run completes and its HTML report is produced. Whatever Dovecot's
// violations, they are logged, not failed on: the run is a reference.
// The report is then rendered by headless Chromium, which must show its
// plots and no script error.
func TestTortureDovecot(t *testing.T) {
	if _, err := os.Stat(ChromiumBinary); err != nil {
		t.Fatalf("Chromium is not installed (%v): %s", err, installHint)
	}
	maildir := filepath.Join(testproc.TraversableTempDir(t), "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDovecot(t, maildir)
	d.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	res, err := imaptorture.Run(ctx, imaptorture.Config{
		IMAP: d.Addr(), User: DovecotUser, Password: DovecotPassword, Maildir: maildir,
		Sessions: 4, Duration: 6 * time.Second, Messages: 60, Timeout: 30 * time.Second, Seed: seed,
	})
	if err != nil {
		t.Fatal(err)
	}
	var summary strings.Builder
	res.WriteSummary(&summary)
	t.Logf("against Dovecot:\n%s", summary.String())
	for _, op := range []string{"SELECT", "FETCH FLAGS", "FETCH ENVELOPE", "FETCH BODY", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE", "UID EXPUNGE", "APPEND", "NOOP", "IDLE",
		"foreign rename", "foreign delivery", "foreign deletion"} {
		if s := res.Op(op); s.OK == 0 {
			t.Errorf("no %s succeeded: %+v", op, s)
		}
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors: %v", res.Errors)
	}

	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	if err := os.WriteFile(report, res.HTML(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	_, logs := chromium(t, dir, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", shotWidth, shotHeight), "--enable-logging=stderr", "--v=0", "file://"+report)
	for _, bad := range []string{"Uncaught", ":CONSOLE(", "SyntaxError"} {
		if strings.Contains(logs, bad) {
			t.Errorf("Chromium logged %q:\n%s", bad, logs)
		}
	}
	checkScreenshot(t, shot)

	dom, _ := chromium(t, dir, "--dump-dom", "file://"+report)
	for _, want := range []string{`<svg id="latency-plot"`, `<svg id="timeline-plot"`, `<svg id="latency-time-plot"`, "<rect", "<polygon", "<circle", `id="verdict"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("Chromium's DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the report's DOM holds a script")
	}
}

// chromium runs headless Chromium with args and returns its standard
// output and error.
func chromium(t *testing.T, dir string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"), "--no-first-run"}
	cmd := exec.CommandContext(ctx, ChromiumBinary, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// checkScreenshot checks that the page rendered: the PNG decodes, has the
// window's size, is far from blank, and shows the plots' colors.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != shotWidth || b.Dy() != shotHeight {
		t.Fatalf("screenshot of %v, want %dx%d", b, shotWidth, shotHeight)
	}
	colors := map[string]color.RGBA{
		"p99 bars":           hexColor(imaptorture.ColorP99),
		"p50 bars":           hexColor(imaptorture.ColorP50),
		"IMAP reads samples": hexColor(imaptorture.GroupColor(0)),
	}
	counts := make(map[string]int)
	var ink int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}
			if c.R < 240 || c.G < 240 || c.B < 240 {
				ink++
			}
			for name, want := range colors {
				if near(c, want) {
					counts[name]++
				}
			}
		}
	}
	if ink < shotWidth*shotHeight/20 {
		t.Errorf("the screenshot is nearly blank: %d pixels not white", ink)
	}
	for name, n := range counts {
		t.Logf("%s: %d pixels", name, n)
	}
	for name, min := range map[string]int{"p99 bars": 5000, "p50 bars": 2000, "IMAP reads samples": 20} {
		if counts[name] < min {
			t.Errorf("%s: %d pixels of their color, want at least %d", name, counts[name], min)
		}
	}
}

func hexColor(s string) color.RGBA {
	var c color.RGBA
	fmt.Sscanf(s, "#%02x%02x%02x", &c.R, &c.G, &c.B)
	c.A = 255
	return c
}

func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) <= 6 && d(a.G, b.G) <= 6 && d(a.B, b.B) <= 6
}
