package migrate

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseCourierKeywordList(t *testing.T) {
	tests := []struct {
		file     string
		names    []string
		messages map[string][]string
		problems int
	}{
		{"courier.list", []string{"$Label1", "Junk", "Work"}, map[string][]string{
			"1700000001.M1P1.courier": {"$Label1", "Work"},
			"1700000002.M2P1.courier": {"Junk"},
		}, 0},
		{"damaged.list", []string{"$Label1", "Work"}, map[string][]string{
			"1700000001.M1P1.courier": {"$Label1"}, // the later line wins
			"1700000002.M2P1.courier": {"Work"},
			"1700000004.M4P1.courier": {"$Label1"}, // a last line without newline counts
		}, 4},
		{"names-only.list", []string{"Only", "Names"}, map[string][]string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			k, problems := ParseCourierKeywordList(tt.file, data)
			for _, p := range problems {
				t.Log(p)
			}
			if !slices.Equal(k.Names, tt.names) || !reflect.DeepEqual(k.Messages, tt.messages) || len(problems) != tt.problems {
				t.Errorf("got names %q, messages %q, %d problems; want %q, %q, %d", k.Names, k.Messages, len(problems), tt.names, tt.messages, tt.problems)
			}
		})
	}
}

// Update files replace what :list says of their message: "<base>" beats
// every ".<n>.<base>", and among those the highest n wins; an empty one
// clears the keywords; names used only there join the list, sorted.
func TestReadCourierKeywords(t *testing.T) {
	dir := t.TempDir()
	if k, _, err := ReadCourierKeywords(dir); k != nil || err != nil {
		t.Fatalf("without courierimapkeywords/: %v, %v; want nil, nil", k, err)
	}
	kw := filepath.Join(dir, CourierKeywordsDir)
	files := map[string]string{
		":list":                  "Work\nJunk\n\nm1:0\nm2:0 1\nm3:1\nm4:0\n",
		".100.m1":                "Old\n",
		".200.m1":                "Newer\nWork\n",
		".50.m1":                 "Oldest\n",
		"m2":                     "Plain\n",
		".300.m2":                "Numbered\n",
		".100.m3":                "\n",
		".tmp.1700000000.m4":     "Scratch\n",
		".x.m4":                  "NotAnUpdate\n",
		".100.m5":                "Zeta\nAlpha\n",
		".100.1700000000.M1.a.b": "Dots\n",
		".100.m6":                "junk\nWORK\n",
	}
	if err := os.Mkdir(kw, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(kw, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k, problems, err := ReadCourierKeywords(dir)
	if err != nil || len(problems) != 0 {
		t.Fatalf("ReadCourierKeywords: %v, problems %v", err, problems)
	}
	want := map[string][]string{
		"m1":                {"Newer", "Work"},
		"m2":                {"Plain"},
		"m4":                {"Work"},
		"m5":                {"Zeta", "Alpha"},
		"1700000000.M1.a.b": {"Dots"},
		"m6":                {"Junk", "Work"}, // spelled as :list spells them
	}
	if !reflect.DeepEqual(k.Messages, want) {
		t.Errorf("messages %q, want %q", k.Messages, want)
	}
	if wantNames := []string{"Work", "Junk", "Alpha", "Dots", "Newer", "Plain", "Zeta"}; !slices.Equal(k.Names, wantNames) {
		t.Errorf("names %q, want %q", k.Names, wantNames)
	}
}

// Names equal but for case are one keyword, spelled as first listed;
// messages name it so. strings.EqualFold also takes any two bytes that
// are not UTF-8 for equal.
func TestCourierKeywordSpellings(t *testing.T) {
	k, _ := ParseCourierKeywordList("list", []byte("Work\nwork\n\xd2\n\xfb\n\nm1:1\nm2:0 1 3\n"))
	if want := []string{"Work", "\xd2"}; !slices.Equal(k.Names, want) {
		t.Errorf("names %q, want %q", k.Names, want)
	}
	want := map[string][]string{"m1": {"Work"}, "m2": {"Work", "\xd2"}}
	if !reflect.DeepEqual(k.Messages, want) {
		t.Errorf("messages %q, want %q", k.Messages, want)
	}
}

func TestConvertSubscriptions(t *testing.T) {
	names, skipped := ConvertSubscriptions([]byte("INBOX\ninbox.Sent\r\nINBOX.Archive.2024\n\n#shared.Team\nINBOX.Sent\nINBOX.\nINBOX.Entw&APw-rfe"))
	if want := []string{"INBOX", "Sent", "Archive.2024", "Entw&APw-rfe"}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if want := []string{"#shared.Team", "INBOX."}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
}

// FuzzParseCourierKeywordList: the parser never panics, every message it
// returns has keywords, each of them once and each in Names.
func FuzzParseCourierKeywordList(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.list"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, _ := ParseCourierKeywordList("fuzz", data)
		for base, names := range k.Messages {
			if base == "" || strings.ContainsAny(base, "/\x00") || len(names) == 0 {
				t.Fatalf("message %q with keywords %q", base, names)
			}
			for i, n := range names {
				if !slices.Contains(k.Names, n) {
					t.Fatalf("keyword %q of %q is not in Names %q", n, base, k.Names)
				}
				for _, o := range names[:i] {
					if strings.EqualFold(o, n) {
						t.Fatalf("keyword %q twice on %q", n, base)
					}
				}
			}
		}
		for _, n := range k.Names {
			if n == "" || strings.IndexByte(n, 0) >= 0 || strings.Contains(n, "\n") {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}
