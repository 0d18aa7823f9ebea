package race

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRunCountsAreConsistent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "race")
	res, err := Run(context.Background(), Config{Dir: dir, Files: 2000, Duration: time.Second, Renamers: 2, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Files != 2000 || res.Seconds != 1 || res.Renamers != 2 || res.FS == "" || res.Seed != 99 {
		t.Errorf("config not reported: files %d seconds %v renamers %d fs %q seed %d", res.Files, res.Seconds, res.Renamers, res.FS, res.Seed)
	}
	if res.Renames <= 0 {
		t.Errorf("renames = %d", res.Renames)
	}
	if res.NaiveScans <= 0 || res.CisternScans <= 0 {
		t.Errorf("scans: naive %d cistern %d", res.NaiveScans, res.CisternScans)
	}
	if res.NaiveWrong > res.NaiveScans || res.CisternWrong > res.CisternScans {
		t.Errorf("more wrong scans than scans: naive %d/%d cistern %d/%d", res.NaiveWrong, res.NaiveScans, res.CisternWrong, res.CisternScans)
	}
	if res.NaivePhantom != res.NaiveMissing {
		t.Errorf("naive phantom %d != missing %d", res.NaivePhantom, res.NaiveMissing)
	}
	if res.CisternPhantom != 0 || res.BrokenProofs != 0 || res.BrokenGuarantee() {
		t.Errorf("broken proof: %d phantom expunges, %d broken listings: %+v", res.CisternPhantom, res.BrokenProofs, res.BrokenExamples)
	}
	var proven int64
	for _, n := range res.CisternProofs {
		proven += n
	}
	if proven+res.CisternUnproven != res.CisternScans {
		t.Errorf("proofs %v + %d unproven != %d scans", res.CisternProofs, res.CisternUnproven, res.CisternScans)
	}
	if res.NaiveUnknown != 0 || res.CisternUnknown != 0 {
		t.Errorf("unknown entries: naive %d cistern %d", res.NaiveUnknown, res.CisternUnknown)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory made by Run left behind: %v", err)
	}
}

func TestRunKeepLeavesTheMaildir(t *testing.T) {
	dir := t.TempDir() // exists and is empty
	_, err := Run(context.Background(), Config{Dir: dir, Files: 50, Duration: 50 * time.Millisecond, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "cur"))
	if err != nil || len(ents) != 50 {
		t.Fatalf("cur/ holds %d entries (%v), want 50", len(ents), err)
	}
	// A second race in the same directory is refused.
	if _, err := Run(context.Background(), Config{Dir: dir, Files: 50, Duration: 50 * time.Millisecond}); !errors.Is(err, ErrDirNotEmpty) {
		t.Errorf("reusing a full directory: %v, want ErrDirNotEmpty", err)
	}
}

func TestRunRemovesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), Config{Dir: dir, Files: 20, Duration: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Errorf("existing directory not emptied: %v %v", ents, err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{Dir: t.TempDir(), Files: 100, Duration: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v after cancellation", d)
	}
	if res == nil || res.CisternScans == 0 {
		t.Errorf("no partial result: %+v", res)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Dir: "d", Files: 1, Duration: time.Second}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"minimal", func(*Config) {}, true},
		{"limits", func(c *Config) { c.Files, c.Duration, c.Renamers = MaxFiles, MaxDuration, MaxRenamers }, true},
		{"no dir", func(c *Config) { c.Dir = "" }, false},
		{"no files", func(c *Config) { c.Files = 0 }, false},
		{"too many files", func(c *Config) { c.Files = MaxFiles + 1 }, false},
		{"no duration", func(c *Config) { c.Duration = 0 }, false},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, false},
		{"too long", func(c *Config) { c.Duration = MaxDuration + time.Nanosecond }, false},
		{"negative renamers", func(c *Config) { c.Renamers = -1 }, false},
		{"too many renamers", func(c *Config) { c.Files, c.Renamers = MaxFiles, MaxRenamers+1 }, false},
		{"more renamers than files", func(c *Config) { c.Renamers = 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok %t", c, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}
