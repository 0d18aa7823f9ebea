package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestRaceJSON(t *testing.T) {
	d := filepath.Join(t.TempDir(), "maildir")
	var out, errOut bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}
	err := Run(context.Background(), []string{"race", "--dir", d, "--files", "500", "--seconds", "1", "--seed", "7", "--json"}, stdio)
	if err != nil {
		t.Fatalf("race: %v (stderr %q)", err, errOut.String())
	}
	dec := json.NewDecoder(&out)
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, out.String())
	}
	if dec.More() {
		t.Errorf("more than one JSON value on stdout")
	}
	for _, k := range []string{
		"naive_scans", "naive_wrong_scans", "naive_phantom_expunges",
		"cistern_scans", "cistern_wrong_scans", "cistern_phantom_expunges",
		"cistern_unproven_scans", "cistern_proofs", "cistern_retries",
		"renames", "files", "seconds", "fs",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing from %v", k, got)
		}
	}
	if got["seed"] != float64(7) {
		t.Errorf("seed = %v, want the --seed given, 7", got["seed"])
	}
	if _, ok := got["cistern_proofs"].(map[string]any); !ok {
		t.Errorf("cistern_proofs = %#v, want an object", got["cistern_proofs"])
	}
	if got["files"] != 500.0 || got["seconds"] != 1.0 {
		t.Errorf("files %v seconds %v, want 500 and 1", got["files"], got["seconds"])
	}
	if got["cistern_phantom_expunges"] != 0.0 {
		t.Errorf("cistern_phantom_expunges = %v", got["cistern_phantom_expunges"])
	}
}

func TestRaceTable(t *testing.T) {
	var out bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &out}
	err := Run(context.Background(), []string{"race", "--dir", t.TempDir(), "--files", "100", "--seconds", "0.2"}, stdio)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String()) // the seed, among the rest
	for _, want := range []string{"filesystem", "seed ", "renames", "naive readdir", "cistern List", "wrong %", "phantom expunges", "proofs used", "scans/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRaceFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"help", []string{"-h"}, true},
		{"no flags", nil, false},
		{"no dir", []string{"--files", "10", "--seconds", "1"}, false},
		{"no files", []string{"--dir", dir, "--seconds", "1"}, false},
		{"zero files", []string{"--dir", dir, "--files", "0", "--seconds", "1"}, false},
		{"too many files", []string{"--dir", dir, "--files", "1000001", "--seconds", "1"}, false},
		{"no seconds", []string{"--dir", dir, "--files", "10"}, false},
		{"negative seconds", []string{"--dir", dir, "--files", "10", "--seconds", "-1"}, false},
		{"too many seconds", []string{"--dir", dir, "--files", "10", "--seconds", "3601"}, false},
		{"huge seconds", []string{"--dir", dir, "--files", "10", "--seconds", "1e300"}, false},
		{"NaN seconds", []string{"--dir", dir, "--files", "10", "--seconds", "NaN"}, false},
		{"zero renamers", []string{"--dir", dir, "--files", "10", "--seconds", "1", "--renamers", "0"}, false},
		{"more renamers than files", []string{"--dir", dir, "--files", "10", "--seconds", "1", "--renamers", "11"}, false},
		{"not a number", []string{"--dir", dir, "--files", "many", "--seconds", "1"}, false},
		{"unknown flag", []string{"--dir", dir, "--files", "10", "--seconds", "1", "--fast"}, false},
		{"extra argument", []string{"--dir", dir, "--files", "10", "--seconds", "1", "now"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), append([]string{"race"}, tt.args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if tt.ok {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !strings.Contains(errOut.String(), "usage: cistern race") {
					t.Errorf("help not printed: %q", errOut.String())
				}
				return
			}
			if !errors.Is(err, errUsage) {
				t.Errorf("err = %v, want errUsage", err)
			}
			if out.Len() != 0 {
				t.Errorf("stdout written for bad flags: %q", out.String())
			}
		})
	}
}

func TestRaceRefusesFullDirectory(t *testing.T) {
	dir := t.TempDir()
	args := []string{"race", "--dir", dir, "--files", "10", "--seconds", "0.05", "--keep"}
	var out bytes.Buffer
	if err := Run(context.Background(), args, Stdio{Out: &out, Err: &out}); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), args, Stdio{Out: &out, Err: &out})
	if err == nil || errors.Is(err, errUsage) || exitCode(err, &out) != 1 {
		t.Errorf("second race in a full directory: %v, want a plain error", err)
	}
}
