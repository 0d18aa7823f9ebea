package message

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStructureRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := load(t, filepath.Base(f))
			checkRoundTrip(t, m)
		})
	}
}

func checkRoundTrip(t testing.TB, m *Message) {
	t.Helper()
	data := m.MarshalStructure()
	s, err := UnmarshalStructure(data)
	if err != nil {
		t.Fatalf("UnmarshalStructure: %v", err)
	}
	want := m.Structure()
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("round trip differs\n got %s\nwant %s", dumpTree(s.Root), dumpTree(want.Root))
	}
	if !reflect.DeepEqual(s.Root.Envelope(), m.Envelope()) {
		t.Fatalf("root envelope differs after round trip")
	}
	if s.Size != m.Size() {
		t.Fatalf("size %d, want %d", s.Size, m.Size())
	}
	if again := s.Marshal(); string(again) != string(data) {
		t.Fatalf("re-marshal differs")
	}
}

func TestStructureEmbeddedEnvelope(t *testing.T) {
	m := load(t, "nested-rfc822.eml")
	s, err := UnmarshalStructure(m.MarshalStructure())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := findPart(s.Root, []int{2})
	if !ok {
		t.Fatal("no part 2 in structure")
	}
	if got := p.Envelope().Subject; got != "Plans" {
		t.Errorf("embedded subject from cache %q", got)
	}
	if p.Header() != nil || p.Body() != nil {
		t.Errorf("a detached part returned bytes")
	}
	if s.Envelope.Subject != "Fwd: Plans" {
		t.Errorf("subject %q", s.Envelope.Subject)
	}
}

func TestUnmarshalStructureErrors(t *testing.T) {
	data := load(t, "nested-rfc822.eml").MarshalStructure()
	if _, err := UnmarshalStructure(nil); !errors.Is(err, ErrCorruptStructure) {
		t.Errorf("empty: %v", err)
	}
	bad := append([]byte{StructureVersion + 1}, data[1:]...)
	if _, err := UnmarshalStructure(bad); !errors.Is(err, ErrStructureVersion) {
		t.Errorf("other version: %v", err)
	}
	// Every truncation fails cleanly.
	for i := 1; i < len(data); i++ {
		if _, err := UnmarshalStructure(data[:i]); !errors.Is(err, ErrCorruptStructure) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := UnmarshalStructure(append(data, 0)); !errors.Is(err, ErrCorruptStructure) {
		t.Errorf("trailing byte: %v", err)
	}
}

// dumpTree renders a part tree with every field, nil and empty slices
// told apart.
func dumpTree(p *Part) string {
	s := fmt.Sprintf("%#v", *p)
	for _, c := range p.Children {
		s += "\n child " + dumpTree(c)
	}
	if p.Embedded != nil {
		s += "\n embedded " + dumpTree(p.Embedded)
	}
	return s
}
