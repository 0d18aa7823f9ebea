package uidlist

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts marshals to a
// version 3 file that parses back, without Problems, to the same content.
func FuzzParse(f *testing.F) {
	addSeeds(f, "*.uidlist")
	f.Fuzz(func(t *testing.T, data []byte) {
		file, _, err := Parse("fuzz", data)
		if err != nil {
			if file != nil {
				t.Fatal("error with a file")
			}
			return
		}
		for i := 1; i < len(file.Records); i++ {
			if file.Records[i].UID <= file.Records[i-1].UID {
				t.Fatalf("records not ascending: %+v", file.Records)
			}
		}
		if last := file.LastUID(); last != 0 && file.Header.NextUID <= last {
			t.Fatalf("next UID %d not above last UID %d", file.Header.NextUID, last)
		}
		roundTrip(t, file)
	})
}

// FuzzParseCourier: the same for courierimapuiddb.
func FuzzParseCourier(f *testing.F) {
	addSeeds(f, "*courierimapuiddb")
	f.Fuzz(func(t *testing.T, data []byte) {
		file, _, err := ParseCourier("fuzz", data)
		if err != nil {
			return
		}
		roundTrip(t, file)
	})
}

// FuzzParseKeywords: ParseKeywords never panics and what it reads writes
// back to the same table.
func FuzzParseKeywords(f *testing.F) {
	addSeeds(f, "dovecot-keywords*")
	f.Fuzz(func(t *testing.T, data []byte) {
		k, _ := ParseKeywords("fuzz", data)
		// Problems may repeat (a name at two letters is reported, kept).
		k2, _ := ParseKeywords("again", k.Marshal())
		if *k2 != *k {
			t.Fatalf("round trip: %q -> %q", k.Names, k2.Names)
		}
	})
}
