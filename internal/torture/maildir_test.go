package torture

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// The test binary doubles as the syncer process: with this variable set,
// TestMain runs one syncer from the command line instead of the tests.
const syncerEnv = "CISTERN_TORTURE_SYNCER"

func TestMain(m *testing.M) {
	if os.Getenv(syncerEnv) == "1" {
		os.Exit(syncerMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func syncerMain(args []string) int {
	fs := flag.NewFlagSet("syncer", flag.ContinueOnError)
	var cfg SyncerConfig
	fs.StringVar(&cfg.Dir, "dir", "", "")
	fs.StringVar(&cfg.LogPath, "log", "", "")
	fs.IntVar(&cfg.ID, "id", 0, "")
	fs.BoolVar(&cfg.UnsafeTrustReaddir, "unsafe-trust-readdir", false, "")
	fs.BoolVar(&cfg.NoAtomicRead, "no-atomic-read", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := RunSyncer(context.Background(), cfg, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "syncer:", err)
		return 1
	}
	return 0
}

func syncerCommand(t *testing.T) []string {
	t.Setenv(syncerEnv, "1")
	return []string{os.Args[0]}
}

func tortureConfig(t *testing.T, unsafe bool) MaildirConfig {
	return MaildirConfig{
		Dir:                filepath.Join(t.TempDir(), "Maildir"),
		Messages:           1500,
		Duration:           3 * time.Second,
		Renamers:           2,
		Deliverers:         1,
		Deleters:           1,
		Syncers:            3,
		SyncerCommand:      syncerCommand(t),
		UnsafeTrustReaddir: unsafe,
		Stderr:             os.Stderr,
	}
}

// TestTortureMaildir: foreign writers against Cistern syncers in separate
// processes break no guarantee.
func TestTortureMaildir(t *testing.T) {
	res, err := RunMaildir(context.Background(), tortureConfig(t, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Renames == 0 || res.Deliveries == 0 || res.Deletions == 0 || res.Syncs == 0 || res.Moves == 0 {
		t.Fatalf("the run did too little to prove anything: %+v", *res)
	}
	if res.Expunges == 0 {
		t.Fatal("deletions happened but no syncer reported an expunge")
	}
	if n := res.Violations(); n != 0 {
		t.Fatalf("%d violations:\n%v", n, res.Examples)
	}
}

// TestTortureStableTimestamps: the same run with listings proven by
// stable timestamps only (as on btrfs), where proofs can fail and
// suspects wait.
func TestTortureStableTimestamps(t *testing.T) {
	cfg := tortureConfig(t, false)
	cfg.NoAtomicRead = true
	res, err := RunMaildir(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.AtomicRead || res.Syncs == 0 || res.Deletions == 0 {
		t.Fatalf("run %+v", *res)
	}
	if n := res.Violations(); n != 0 {
		t.Fatalf("%d violations:\n%v", n, res.Examples)
	}
}

// TestTortureSeesPhantoms: with the expunge rule off (plain readdir,
// trusted), the same run must report phantom expunges — the checker can
// see what it exists to catch.
func TestTortureSeesPhantoms(t *testing.T) {
	res, err := RunMaildir(context.Background(), tortureConfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.PhantomExpunges == 0 {
		t.Fatalf("trusting plain readdir under renames gave no phantom expunge: %+v", *res)
	}
}

func TestCheckerCounts(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	for _, name := range []string{"b1:2,S", "b2:2,", "b4:2,F"} {
		os.WriteFile(filepath.Join(dir, "cur", name), nil, 0o600)
	}
	logPath := filepath.Join(dir, "events.log")
	events := "" +
		"U 0 1 b1\nU 0 2 b2\nU 0 3 b3\nU 1 1 b1\nU 1 2 b2\n" +
		"D b3\nX 0 3 b3\n" + // a real expunge
		"X 1 2 b2\n" + // phantom: nobody deleted b2
		"U 1 5 b2\n" + // and it came back with another UID: a duplicate for the run, a change for syncer 1
		"U 0 4 b4\nU 1 4 b5\n" + // UID 4 reused
		"D b1\nX 1 1 b1\n" // deleted intent but still on disk: phantom
	if err := os.WriteFile(logPath, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	finals := []*SyncerFinal{
		{ID: 0, Messages: []FinalMessage{{1, "b1", "S"}, {2, "b2", "S"}, {4, "b4", "F"}}}, // b2 flags wrong
		{ID: 1, Messages: []FinalMessage{{5, "b2", ""}, {6, "gone", ""}}},                 // b1, b4 lost; "gone" stale
	}
	var res MaildirResult
	if err := check(dir, logPath, finals, &res); err != nil {
		t.Fatal(err)
	}
	want := MaildirResult{PhantomExpunges: 2, UIDChanges: 1, DuplicateUIDs: 2, ReusedUIDs: 1, LostMessages: 2, FlagMismatches: 1, StaleMessages: 1}
	got := res
	got.Examples, got.FinalMessages = nil, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v\nexamples: %v", got, want, res.Examples)
	}
}
