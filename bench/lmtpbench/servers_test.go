package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/testproc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testproc.RemoveBuild()
	os.Exit(code)
}

// TestStartCisternAsRoot starts the benchmark's Cistern as root, which
// cistern serve refuses unless the configuration names a user, and
// delivers to it as a run does.
func TestStartCisternAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the case is cistern serve started by root")
	}
	if _, err := testproc.LookupOwner(testproc.MailUser); err != nil {
		t.Skipf("needs the mail user (bench/lmtp.sh or scripts/interop.sh creates it): %v", err)
	}
	bin := testproc.BuildCistern(t)
	w, err := newWorkDir(filepath.Join(testproc.TraversableTempDir(t), "work"))
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := startCistern(bin, w, []string{"run001"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tgt.proc.Stop(testproc.StopTimeout); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config{Size: 4096, Deliveries: 3, Clients: 1}
	res, err := runOnce(ctx, tgt, "run001", "test", cfg, body(cfg.Size))
	if err != nil {
		t.Fatal(err)
	}
	if res.User != "run001" {
		t.Errorf("run of %q, want run001", res.User)
	}
}
