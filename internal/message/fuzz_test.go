package message

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParse: Parse never panics, its tree keeps the documented invariants,
// every section of every part comes from the raw message, BINARY.SIZE
// agrees with BINARY, the structure cache round-trips, and the search and
// envelope entry points cope with whatever Parse made.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := Parse(raw)
		checkInvariants(t, m)
		checkSections(t, m)
		checkRoundTrip(t, m)
		m.Envelope()
		m.Date()
		m.HeaderValues("subject")
		m.HeaderContains("", "é")
		m.HeaderContains("from", "a")
		m.BodyContains("Ü")
		m.TextContains("x")
	})
}

// FuzzUnmarshalStructure: corrupt caches are rejected, never panic, and
// whatever is accepted survives Marshal and UnmarshalStructure unchanged.
func FuzzUnmarshalStructure(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(Parse(data).MarshalStructure())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalStructure(data)
		if err != nil {
			return
		}
		again, err := UnmarshalStructure(s.Marshal())
		if err != nil {
			t.Fatalf("re-marshalled structure rejected: %v", err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("accepted structure does not round-trip")
		}
	})
}
