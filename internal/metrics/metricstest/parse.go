// Package metricstest reads the Prometheus text format (version 0.0.4)
// back, for tests: Parse checks that a rendering is well-formed, as
// package metrics promises it, and returns its samples to look values
// up in.
//
// Beyond the format's syntax, Parse holds the rendering to these rules:
// every family has a HELP line and then a TYPE line (counter, gauge or
// histogram) before its samples, families come once each and sorted by
// name, a counter's name ends in _total and its values are never
// negative, no sample appears twice, and each histogram series has
// buckets with ascending bounds and non-decreasing counts ending with
// le="+Inf", whose count _count repeats, and a _sum.
package metricstest

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Sample is one sample line.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is a metric family: its HELP and TYPE lines and its samples.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Exposition is a parsed rendering.
type Exposition struct {
	Families []Family
}

var (
	helpRE   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)
	typeRE   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$`)
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$`)
	labelRE  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// Parse checks text and returns its families.
func Parse(text string) (*Exposition, error) {
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, errors.New("the text does not end with a newline")
	}
	e := &Exposition{}
	var f *Family
	seen := map[string]bool{}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		lines = nil
	}
	for i, l := range lines {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", i+1, l, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.HasPrefix(l, "# HELP "):
			m := helpRE.FindStringSubmatch(l)
			if m == nil {
				return nil, bad("malformed HELP")
			}
			if seen[m[1]] {
				return nil, bad("family %s again", m[1])
			}
			if n := len(e.Families); n > 0 && e.Families[n-1].Name >= m[1] {
				return nil, bad("family %s after %s: not sorted", m[1], e.Families[n-1].Name)
			}
			if f != nil && f.Type == "" {
				return nil, bad("family %s has no TYPE", f.Name)
			}
			seen[m[1]] = true
			help, err := unescape(m[2], false)
			if err != nil {
				return nil, bad("%v", err)
			}
			e.Families = append(e.Families, Family{Name: m[1], Help: help})
			f = &e.Families[len(e.Families)-1]
		case strings.HasPrefix(l, "# TYPE "):
			m := typeRE.FindStringSubmatch(l)
			switch {
			case m == nil:
				return nil, bad("malformed TYPE")
			case f == nil || f.Name != m[1] || f.Type != "" || len(f.Samples) > 0:
				return nil, bad("TYPE not right after the HELP of its family")
			case m[2] == "counter" && !strings.HasSuffix(m[1], "_total"):
				return nil, bad("counter %s does not end in _total", m[1])
			}
			f.Type = m[2]
		case strings.HasPrefix(l, "#") || l == "":
			return nil, bad("a line this renderer never writes")
		default:
			s, err := parseSample(l)
			if err != nil {
				return nil, bad("%v", err)
			}
			if f == nil || f.Type == "" {
				return nil, bad("sample before its family's HELP and TYPE")
			}
			if !belongs(f, s.Name) {
				return nil, bad("sample %s in family %s", s.Name, f.Name)
			}
			if f.Type == "counter" && !(s.Value >= 0) {
				return nil, bad("counter value %v", s.Value)
			}
			f.Samples = append(f.Samples, s)
		}
	}
	if f != nil && f.Type == "" {
		return nil, fmt.Errorf("family %s has no TYPE", f.Name)
	}
	for _, f := range e.Families {
		if len(f.Samples) == 0 {
			return nil, fmt.Errorf("family %s has no samples", f.Name)
		}
		keys := map[string]bool{}
		for _, s := range f.Samples {
			k := key(s.Name, s.Labels)
			if keys[k] {
				return nil, fmt.Errorf("sample %s twice", k)
			}
			keys[k] = true
		}
		if f.Type == "histogram" {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

func belongs(f *Family, name string) bool {
	if f.Type != "histogram" {
		return name == f.Name
	}
	return name == f.Name+"_bucket" || name == f.Name+"_sum" || name == f.Name+"_count"
}

func parseSample(l string) (Sample, error) {
	m := sampleRE.FindStringSubmatch(l)
	if m == nil {
		return Sample{}, errors.New("malformed sample")
	}
	s := Sample{Name: m[1], Labels: map[string]string{}}
	if m[2] != "" {
		rest := m[2][1 : len(m[2])-1]
		for rest != "" {
			lm := labelRE.FindStringSubmatch(rest)
			if lm == nil {
				return Sample{}, fmt.Errorf("malformed labels at %q", rest)
			}
			rest = rest[len(lm[0]):]
			end := closingQuote(rest)
			if end < 0 {
				return Sample{}, errors.New("unterminated label value")
			}
			v, err := unescape(rest[:end], true)
			if err != nil {
				return Sample{}, err
			}
			if _, dup := s.Labels[lm[1]]; dup {
				return Sample{}, fmt.Errorf("label %s twice", lm[1])
			}
			s.Labels[lm[1]] = v
			rest = rest[end+1:]
			if rest != "" {
				if rest[0] != ',' || len(rest) == 1 {
					return Sample{}, fmt.Errorf("expected a comma and a label at %q", rest)
				}
				rest = rest[1:]
			}
		}
	}
	v, err := parseValue(m[3])
	if err != nil {
		return Sample{}, err
	}
	s.Value = v
	return s, nil
}

// closingQuote is the index of the quote that ends a label value.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unescape undoes the escapes of a label value (\\, \", \n) or of a
// HELP text (\\, \n).
func unescape(s string, quoted bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || (quoted && c == '"') {
			return "", fmt.Errorf("unescaped %q in %q", c, s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("a lone backslash ends %q", s)
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !quoted {
				return "", fmt.Errorf(`\" in a HELP text %q`, s)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "xXpP_") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		return 0, fmt.Errorf("malformed value %q", s)
	}
	return v, nil
}

// key is a sample's identity: name and sorted labels.
func key(name string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, labels[n])
	}
	b.WriteByte('}')
	return b.String()
}

func without(labels map[string]string, drop string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != drop {
			out[k] = v
		}
	}
	return out
}

// checkHistogram checks every series of a histogram family.
func checkHistogram(f Family) error {
	type series struct {
		les        []float64
		counts     []float64
		sum, count *float64
	}
	all := map[string]*series{}
	var order []string
	get := func(labels map[string]string) *series {
		k := key("", labels)
		s, ok := all[k]
		if !ok {
			s = &series{}
			all[k] = s
			order = append(order, k)
		}
		return s
	}
	for _, smp := range f.Samples {
		switch smp.Name {
		case f.Name + "_bucket":
			le, ok := smp.Labels["le"]
			if !ok {
				return fmt.Errorf("%s: a bucket without le", f.Name)
			}
			b, err := parseValue(le)
			if err != nil {
				return fmt.Errorf("%s: le %q: %v", f.Name, le, err)
			}
			s := get(without(smp.Labels, "le"))
			if s.sum != nil || s.count != nil {
				return fmt.Errorf("%s%s: a bucket after _sum or _count", f.Name, key("", smp.Labels))
			}
			s.les = append(s.les, b)
			s.counts = append(s.counts, smp.Value)
		case f.Name + "_sum":
			v := smp.Value
			get(smp.Labels).sum = &v
		case f.Name + "_count":
			v := smp.Value
			get(smp.Labels).count = &v
		}
	}
	for _, k := range order {
		s := all[k]
		name := f.Name + k
		switch {
		case len(s.les) == 0:
			return fmt.Errorf("%s: no buckets", name)
		case !math.IsInf(s.les[len(s.les)-1], 1):
			return fmt.Errorf("%s: the last bucket is not +Inf", name)
		case s.sum == nil || s.count == nil:
			return fmt.Errorf("%s: no _sum or no _count", name)
		case *s.count != s.counts[len(s.counts)-1]:
			return fmt.Errorf("%s: _count %v, +Inf bucket %v", name, *s.count, s.counts[len(s.counts)-1])
		}
		for i := 1; i < len(s.les); i++ {
			if s.les[i] <= s.les[i-1] || s.counts[i] < s.counts[i-1] {
				return fmt.Errorf("%s: bucket %d (le %v, %v) after (le %v, %v): not cumulative in ascending bounds",
					name, i, s.les[i], s.counts[i], s.les[i-1], s.counts[i-1])
			}
		}
	}
	return nil
}

// Value returns the value of the sample name with exactly the labels
// given (name, value pairs).
func (e *Exposition) Value(name string, labels ...string) (float64, bool) {
	want := pairs(labels)
	for _, f := range e.Families {
		for _, s := range f.Samples {
			if s.Name == name && key("", s.Labels) == key("", want) {
				return s.Value, true
			}
		}
	}
	return 0, false
}

// Sum adds the values of the samples name whose labels include the
// labels given, and says how many there were.
func (e *Exposition) Sum(name string, labels ...string) (float64, int) {
	want := pairs(labels)
	total, n := 0.0, 0
	for _, f := range e.Families {
		for _, s := range f.Samples {
			if s.Name != name {
				continue
			}
			match := true
			for k, v := range want {
				if s.Labels[k] != v {
					match = false
				}
			}
			if match {
				total += s.Value
				n++
			}
		}
	}
	return total, n
}

// Family returns the family name, or nil.
func (e *Exposition) Family(name string) *Family {
	for i := range e.Families {
		if e.Families[i].Name == name {
			return &e.Families[i]
		}
	}
	return nil
}

func pairs(labels []string) map[string]string {
	if len(labels)%2 != 0 {
		panic("metricstest: label names and values do not pair up")
	}
	m := make(map[string]string, len(labels)/2)
	for i := 0; i < len(labels); i += 2 {
		m[labels[i]] = labels[i+1]
	}
	return m
}
