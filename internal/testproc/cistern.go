package testproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// BuildTimeout bounds 'go build -race ./cmd/cistern' with a cold cache on
// a small machine.
const BuildTimeout = 5 * time.Minute

// The binary BuildCistern made, once per test binary.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildCistern builds ./cmd/cistern of the module the test runs in, with
// the race detector, the first time a test of this test binary calls it,
// and returns the binary's path. The build lives in a temporary
// directory that RemoveBuild deletes; a TestMain calls it after m.Run.
func BuildCistern(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.bin, built.err = buildCistern()
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// RemoveBuild deletes what BuildCistern made, if anything.
func RemoveBuild() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

func buildCistern() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build cistern: %w", err)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	built.dir, err = os.MkdirTemp("", "cistern-build-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(built.dir, "cistern")
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-race", "-o", bin, "./cmd/cistern")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -race ./cmd/cistern: %v\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot is the nearest directory at or above the working directory
// that holds a go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no go.mod at or above the working directory")
		}
		dir = filepath.Dir(dir)
	}
}

// CisternConfig is the part of a cistern.toml every harness writes.
type CisternConfig struct {
	// User is the account serve runs as; "" leaves the key out.
	User         string
	DataDir      string
	MailLocation string // e.g. DIR/mail/%u/Maildir
	PasswdFile   string
	// IMAP and LMTP are listen addresses; an empty one leaves its table
	// out (StartCistern fills both).
	IMAP, LMTP string
	// LMTPOptions are more lines of [lmtp], e.g. "quota_full_tempfail = true".
	LMTPOptions []string
	// LogLevel is [log] level; "" leaves the table out.
	LogLevel string
}

// String is the configuration as TOML.
func (c CisternConfig) String() string {
	var b strings.Builder
	if c.User != "" {
		fmt.Fprintf(&b, "user = %q\n", c.User)
	}
	fmt.Fprintf(&b, "data_dir = %q\nmail_location = %q\npasswd_file = %q\n", c.DataDir, c.MailLocation, c.PasswdFile)
	if c.IMAP != "" {
		fmt.Fprintf(&b, "\n[imap]\nlisten = [%q]\n", c.IMAP)
	}
	if c.LMTP != "" {
		fmt.Fprintf(&b, "\n[lmtp]\nlisten = [%q]\n", c.LMTP)
		for _, l := range c.LMTPOptions {
			b.WriteString(l + "\n")
		}
	}
	if c.LogLevel != "" {
		fmt.Fprintf(&b, "\n[log]\nlevel = %q\n", c.LogLevel)
	}
	return b.String()
}

// Write writes the configuration to path, readable by its owner only.
func (c CisternConfig) Write(path string) error {
	return os.WriteFile(path, []byte(c.String()), 0o600)
}

// ServeGreetings are what 'cistern serve' with c's listeners says when it
// is up: the LMTP greeting first (bench/lmtpbench's address), then IMAP's.
func (c CisternConfig) ServeGreetings() []Greeting {
	var g []Greeting
	if c.LMTP != "" {
		g = append(g, Greeting{c.LMTP, "220 "})
	}
	if c.IMAP != "" {
		g = append(g, Greeting{c.IMAP, "* OK"})
	}
	return g
}

// StartCistern starts 'binary serve --config conf' with c written to
// conf, IMAP and LMTP on free loopback ports, output appended to output,
// and returns once both greet, with the configuration it wrote.
func StartCistern(binary, conf string, c CisternConfig, output string) (*Proc, CisternConfig, error) {
	p, err := StartServer(Spec{
		Name:  "cistern serve",
		Ports: 2,
		Command: func(ports []int) (*exec.Cmd, []Greeting, error) {
			c.IMAP, c.LMTP = Loopback(ports[0]), Loopback(ports[1])
			if err := c.Write(conf); err != nil {
				return nil, nil, err
			}
			return exec.Command(binary, "serve", "--config", conf), c.ServeGreetings(), nil
		},
		Output: output,
	})
	return p, c, err
}
