package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ContentType is the media type of the text format, version 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// Registry holds metric families and renders them. Its methods are safe
// for concurrent use; a nil *Registry registers nothing (the metrics it
// returns are nil, and every method of a nil metric does nothing), so
// code that counts needs no check of its own.
//
// Registering a name twice with another kind or help text, a series
// whose labels another series of the family has, or a malformed name,
// panics: these are mistakes in the program, not in its input.
type Registry struct {
	mu       sync.Mutex         // guards families and their members
	families map[string]*family // by name
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{families: make(map[string]*family)}
}

type family struct {
	name, help string
	kind       kind
	members    []member
	lbls       map[string]bool // the labels of every member, rendered
}

// member is one series of a family (a histogram's series is several
// lines).
type member interface {
	// labels are the series' labels, rendered without braces: a="x",b="y".
	labels() string
	// shown: the series is rendered. Vector members are shown once used.
	shown() bool
	// write appends the series' lines to b.
	write(b *bytes.Buffer, name string)
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// familyLocked returns the family name, made when it is new. Held
// with r.mu.
func (r *Registry) familyLocked(name, help string, k kind) *family {
	if !nameRE.MatchString(name) {
		panic("metrics: malformed metric name " + strconv.Quote(name))
	}
	if k == kindCounter && !strings.HasSuffix(name, "_total") {
		panic("metrics: counter " + name + " does not end in _total")
	}
	f, ok := r.families[name]
	if !ok {
		f = &family{name: name, help: help, kind: k, lbls: make(map[string]bool)}
		r.families[name] = f
		return f
	}
	if f.kind != k || f.help != help {
		panic(fmt.Sprintf("metrics: %s registered as a %s and as a %s, or with two help texts", name, f.kind, k))
	}
	return f
}

func (f *family) add(m member) {
	l := m.labels()
	if f.lbls[l] {
		panic("metrics: " + f.name + "{" + l + "} registered twice")
	}
	f.lbls[l] = true
	f.members = append(f.members, m)
}

// renderLabels renders label pairs (name, value, name, value...).
func renderLabels(k kind, pairs []string) string {
	if len(pairs)%2 != 0 {
		panic("metrics: label names and values do not pair up")
	}
	var b strings.Builder
	for i := 0; i < len(pairs); i += 2 {
		checkLabel(k, pairs[i])
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pairs[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(pairs[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

func checkLabel(k kind, name string) {
	if !labelRE.MatchString(name) || strings.HasPrefix(name, "__") {
		panic("metrics: malformed label name " + strconv.Quote(name))
	}
	if k == kindHistogram && name == "le" {
		panic(`metrics: a histogram cannot have a label "le"`)
	}
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// formatFloat renders a value: integers without a fraction or exponent
// (up to 2^53, where float64 holds every integer), others in Go's
// shortest form, and the specials as the format spells them.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// writeSample appends one line: name{labels} value.
func writeSample(b *bytes.Buffer, name, labels, value string) {
	b.WriteString(name)
	if labels != "" {
		b.WriteByte('{')
		b.WriteString(labels)
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(value)
	b.WriteByte('\n')
}

// Counter is a count that only goes up.
type Counter struct {
	v    atomic.Uint64
	lbl  string      // immutable
	used atomic.Bool // vector members: With was called
}

// Add adds n.
func (c *Counter) Add(n uint64) {
	if c != nil {
		c.v.Add(n)
	}
}

// Inc adds 1.
func (c *Counter) Inc() { c.Add(1) }

// Value returns the count (0 for nil).
func (c *Counter) Value() uint64 {
	if c == nil {
		return 0
	}
	return c.v.Load()
}

func (c *Counter) labels() string { return c.lbl }
func (c *Counter) shown() bool    { return c.used.Load() }
func (c *Counter) write(b *bytes.Buffer, name string) {
	writeSample(b, name, c.lbl, strconv.FormatUint(c.v.Load(), 10))
}

// Gauge is a value that goes up and down.
type Gauge struct {
	v   atomic.Int64
	lbl string // immutable
}

// Add adds n (negative: subtracts).
func (g *Gauge) Add(n int64) {
	if g != nil {
		g.v.Add(n)
	}
}

// Inc adds 1; Dec subtracts 1.
func (g *Gauge) Inc() { g.Add(1) }
func (g *Gauge) Dec() { g.Add(-1) }

// Set sets the value.
func (g *Gauge) Set(n int64) {
	if g != nil {
		g.v.Store(n)
	}
}

// Value returns the value (0 for nil).
func (g *Gauge) Value() int64 {
	if g == nil {
		return 0
	}
	return g.v.Load()
}

func (g *Gauge) labels() string { return g.lbl }
func (g *Gauge) shown() bool    { return true }
func (g *Gauge) write(b *bytes.Buffer, name string) {
	writeSample(b, name, g.lbl, strconv.FormatInt(g.v.Load(), 10))
}

// funcSeries is a series whose value a function gives at each render.
type funcSeries struct {
	lbl string
	f   func() float64
}

func (s *funcSeries) labels() string { return s.lbl }
func (s *funcSeries) shown() bool    { return true }
func (s *funcSeries) write(b *bytes.Buffer, name string) {
	writeSample(b, name, s.lbl, formatFloat(s.f()))
}

// Histogram counts observations into buckets by their upper bounds,
// and sums them.
type Histogram struct {
	upper []float64 // immutable, ascending; +Inf is implied
	// counts[i] counts observations in (upper[i-1], upper[i]];
	// counts[len(upper)] those above the last bound.
	counts []atomic.Uint64
	sum    atomic.Uint64 // float64 bits
	lbl    string        // immutable
	used   atomic.Bool
}

// Observe counts v.
func (h *Histogram) Observe(v float64) {
	if h == nil {
		return
	}
	i, _ := slices.BinarySearch(h.upper, v) // the first bound >= v
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration counts d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns the number of observations (0 for nil).
func (h *Histogram) Count() uint64 {
	if h == nil {
		return 0
	}
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

func (h *Histogram) labels() string { return h.lbl }
func (h *Histogram) shown() bool    { return h.used.Load() }

// write renders cumulative buckets and a _count equal to the +Inf
// bucket, from one read of each bucket, so that the two agree even
// while observations come in.
func (h *Histogram) write(b *bytes.Buffer, name string) {
	sep := ""
	if h.lbl != "" {
		sep = ","
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.upper) {
			le = formatFloat(h.upper[i])
		}
		writeSample(b, name+"_bucket", h.lbl+sep+`le="`+le+`"`, strconv.FormatUint(cum, 10))
	}
	writeSample(b, name+"_sum", h.lbl, formatFloat(math.Float64frombits(h.sum.Load())))
	writeSample(b, name+"_count", h.lbl, strconv.FormatUint(cum, 10))
}

func newHistogram(upper []float64, lbl string) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1), lbl: lbl}
}

// checkBuckets returns a copy of upper bounds that must be finite and
// ascending.
func checkBuckets(upper []float64) []float64 {
	if len(upper) == 0 {
		panic("metrics: a histogram without buckets")
	}
	for i, u := range upper {
		if math.IsInf(u, 0) || math.IsNaN(u) || (i > 0 && u <= upper[i-1]) {
			panic("metrics: histogram bounds must be finite and ascending")
		}
	}
	return slices.Clone(upper)
}

// Label is a label of a vector and every value it may take: a vector's
// series are bounded by the product of the numbers of values.
type Label struct {
	Name   string
	Values []string
}

// vec finds a vector's member by its label values.
type vec struct {
	name   string
	labels []Label
	pos    []map[string]int // by label: value → position
}

func newVec(name string, k kind, labels []Label) (*vec, int, func(i int) string) {
	v := &vec{name: name, labels: labels, pos: make([]map[string]int, len(labels))}
	n := 1
	for i, l := range labels {
		checkLabel(k, l.Name)
		if len(l.Values) == 0 {
			panic("metrics: label " + l.Name + " of " + name + " has no values")
		}
		v.pos[i] = make(map[string]int, len(l.Values))
		for j, val := range l.Values {
			if _, dup := v.pos[i][val]; dup {
				panic("metrics: label " + l.Name + " of " + name + " lists " + strconv.Quote(val) + " twice")
			}
			v.pos[i][val] = j
		}
		n *= len(l.Values)
	}
	// lbl renders the labels of member i (the last label varies fastest).
	lbl := func(i int) string {
		pairs := make([]string, 2*len(labels))
		for j := len(labels) - 1; j >= 0; j-- {
			pairs[2*j], pairs[2*j+1] = labels[j].Name, labels[j].Values[i%len(labels[j].Values)]
			i /= len(labels[j].Values)
		}
		return renderLabels(k, pairs)
	}
	return v, n, lbl
}

// index is the member of values; values outside a label's list are a
// mistake of the caller, which maps its input onto the list first.
func (v *vec) index(values []string) int {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", v.name, len(v.labels), len(values)))
	}
	i := 0
	for j, val := range values {
		p, ok := v.pos[j][val]
		if !ok {
			panic("metrics: " + v.name + ": " + strconv.Quote(val) + " is not a value of label " + v.labels[j].Name)
		}
		i = i*len(v.labels[j].Values) + p
	}
	return i
}

// CounterVec is a family of counters told apart by labels with fixed
// lists of values. A member is rendered once With returned it.
type CounterVec struct {
	v       *vec
	members []*Counter
}

// With returns the counter of the label values, in the order of the
// labels. A value not in its label's list panics.
func (cv *CounterVec) With(values ...string) *Counter {
	if cv == nil {
		return nil
	}
	c := cv.members[cv.v.index(values)]
	if !c.used.Load() {
		c.used.Store(true)
	}
	return c
}

// HistogramVec is a family of histograms told apart by labels with
// fixed lists of values. A member is rendered once With returned it.
type HistogramVec struct {
	v       *vec
	members []*Histogram
}

// With returns the histogram of the label values, in the order of the
// labels. A value not in its label's list panics.
func (hv *HistogramVec) With(values ...string) *Histogram {
	if hv == nil {
		return nil
	}
	h := hv.members[hv.v.index(values)]
	if !h.used.Load() {
		h.used.Store(true)
	}
	return h
}

// Counter registers a counter with constant labels (name, value pairs).
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Counter{lbl: renderLabels(kindCounter, labels)}
	c.used.Store(true)
	r.familyLocked(name, help, kindCounter).add(c)
	return c
}

// Gauge registers a gauge with constant labels (name, value pairs).
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := &Gauge{lbl: renderLabels(kindGauge, labels)}
	r.familyLocked(name, help, kindGauge).add(g)
	return g
}

// CounterFunc registers a counter whose value f gives at each render,
// for counts kept elsewhere (an atomic a package already has). f must
// be safe to call from any goroutine and must never go down.
func (r *Registry) CounterFunc(name, help string, f func() float64, labels ...string) {
	r.funcSeries(name, help, kindCounter, f, labels)
}

// GaugeFunc registers a gauge whose value f gives at each render. f
// must be safe to call from any goroutine.
func (r *Registry) GaugeFunc(name, help string, f func() float64, labels ...string) {
	r.funcSeries(name, help, kindGauge, f, labels)
}

func (r *Registry) funcSeries(name, help string, k kind, f func() float64, labels []string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.familyLocked(name, help, k).add(&funcSeries{lbl: renderLabels(k, labels), f: f})
}

// CounterVec registers a vector of counters.
func (r *Registry) CounterVec(name, help string, labels ...Label) *CounterVec {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.familyLocked(name, help, kindCounter)
	v, n, lbl := newVec(name, kindCounter, labels)
	cv := &CounterVec{v: v, members: make([]*Counter, n)}
	for i := range n {
		cv.members[i] = &Counter{lbl: lbl(i)}
		f.add(cv.members[i])
	}
	return cv
}

// HistogramVec registers a vector of histograms with the bucket upper
// bounds upper (finite, ascending; +Inf is added).
func (r *Registry) HistogramVec(name, help string, upper []float64, labels ...Label) *HistogramVec {
	if r == nil {
		return nil
	}
	upper = checkBuckets(upper)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.familyLocked(name, help, kindHistogram)
	v, n, lbl := newVec(name, kindHistogram, labels)
	hv := &HistogramVec{v: v, members: make([]*Histogram, n)}
	for i := range n {
		hv.members[i] = newHistogram(upper, lbl(i))
		f.add(hv.members[i])
	}
	return hv
}

// WriteTo renders every family in the text format: families sorted by
// name, each with its HELP and TYPE lines, then its shown series sorted
// by their labels. A family with no series shown yet is left out.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	if r == nil {
		return 0, nil
	}
	var b bytes.Buffer
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := r.families[n]
		var ms []member
		for _, m := range f.members {
			if m.shown() {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			continue
		}
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.labels(), b.labels()) })
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", n, helpEscaper.Replace(f.help), n, f.kind)
		for _, m := range ms {
			m.write(&b, n)
		}
	}
	r.mu.Unlock()
	return b.WriteTo(w)
}

// ServeHTTP answers GET and HEAD with the text format; other methods get
// 405.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var b bytes.Buffer
	r.WriteTo(&b)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if req.Method == http.MethodGet {
		w.Write(b.Bytes())
	}
}
