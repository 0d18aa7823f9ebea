package metrics_test

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/metrics/metricstest"
)

func render(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRender: a registry with one of each kind renders exactly this,
// and the checker accepts it.
func TestRender(t *testing.T) {
	r := metrics.NewRegistry()
	c := r.Counter("t_requests_total", "Requests.")
	c.Add(3)
	r.Counter("t_requests_by_total", "Requests by way.", "way", `a"b\c`+"\n").Inc()
	g := r.Gauge("t_open", "Open now.\nTwo lines, a \\.")
	g.Add(5)
	g.Dec()
	r.GaugeFunc("t_ratio", "A float.", func() float64 { return 0.25 })
	r.CounterFunc("t_func_total", "Kept elsewhere.", func() float64 { return 7 }, "server", "b")
	r.CounterFunc("t_func_total", "Kept elsewhere.", func() float64 { return 6 }, "server", "a")
	cv := r.CounterVec("t_cmds_total", "Commands.", metrics.Label{Name: "cmd", Values: []string{"A", "B", "C"}},
		metrics.Label{Name: "outcome", Values: []string{"ok", "no"}})
	cv.With("B", "no").Add(2)
	cv.With("A", "ok").Inc()
	hv := r.HistogramVec("t_seconds", "Durations.", []float64{0.1, 1}, metrics.Label{Name: "cmd", Values: []string{"A", "B"}})
	h := hv.With("B")
	for _, v := range []float64{0.05, 0.1, 0.5, 2, 3} {
		h.Observe(v)
	}
	r.CounterVec("t_unused_total", "Never used.", metrics.Label{Name: "x", Values: []string{"1"}})

	want := `# HELP t_cmds_total Commands.
# TYPE t_cmds_total counter
t_cmds_total{cmd="A",outcome="ok"} 1
t_cmds_total{cmd="B",outcome="no"} 2
# HELP t_func_total Kept elsewhere.
# TYPE t_func_total counter
t_func_total{server="a"} 6
t_func_total{server="b"} 7
# HELP t_open Open now.\nTwo lines, a \\.
# TYPE t_open gauge
t_open 4
# HELP t_ratio A float.
# TYPE t_ratio gauge
t_ratio 0.25
# HELP t_requests_by_total Requests by way.
# TYPE t_requests_by_total counter
t_requests_by_total{way="a\"b\\c\n"} 1
# HELP t_requests_total Requests.
# TYPE t_requests_total counter
t_requests_total 3
# HELP t_seconds Durations.
# TYPE t_seconds histogram
t_seconds_bucket{cmd="B",le="0.1"} 2
t_seconds_bucket{cmd="B",le="1"} 3
t_seconds_bucket{cmd="B",le="+Inf"} 5
t_seconds_sum{cmd="B"} 5.65
t_seconds_count{cmd="B"} 5
`
	got := render(t, r)
	if got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
	e, err := metricstest.Parse(got)
	if err != nil {
		t.Fatalf("the checker refuses the rendering: %v", err)
	}
	if v, ok := e.Value("t_requests_by_total", "way", `a"b\c`+"\n"); !ok || v != 1 {
		t.Errorf("escaped label read back as %v, %v", v, ok)
	}
	if f := e.Family("t_open"); f == nil || f.Help != "Open now.\nTwo lines, a \\." {
		t.Errorf("escaped help read back as %+v", f)
	}
	if got2 := render(t, r); got2 != got {
		t.Error("two renderings of the same state differ")
	}
}

// TestParseRefuses: the checker fails what is not well-formed, so that
// the tests that rely on it can fail.
func TestParseRefuses(t *testing.T) {
	ok := "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
	if _, err := metricstest.Parse(ok); err != nil {
		t.Fatalf("a good text refused: %v", err)
	}
	hist := func(b1, b2, inf, count string) string {
		return "# HELP h H.\n# TYPE h histogram\n" +
			`h_bucket{le="1"} ` + b1 + "\n" + `h_bucket{le="2"} ` + b2 + "\n" + `h_bucket{le="+Inf"} ` + inf + "\n" +
			"h_sum 3\nh_count " + count + "\n"
	}
	if _, err := metricstest.Parse(hist("1", "2", "3", "3")); err != nil {
		t.Fatalf("a good histogram refused: %v", err)
	}
	for name, text := range map[string]string{
		"no newline at the end":   strings.TrimSuffix(ok, "\n"),
		"sample before HELP":      "a_total 1\n" + ok,
		"TYPE before HELP":        "# TYPE a_total counter\n# HELP a_total A.\na_total 1\n",
		"no TYPE":                 "# HELP a_total A.\na_total 1\n",
		"counter without _total":  "# HELP a A.\n# TYPE a counter\na 1\n",
		"negative counter":        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
		"sample of another name":  "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",
		"family twice":            ok + ok,
		"families not sorted":     "# HELP b B.\n# TYPE b gauge\nb 1\n# HELP a A.\n# TYPE a gauge\na 1\n",
		"sample twice":            "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
		"bad value":               "# HELP a A.\n# TYPE a gauge\na one\n",
		"timestamp":               "# HELP a A.\n# TYPE a gauge\na 1 1700000000\n",
		"unquoted label":          "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
		"bad escape":              "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
		"trailing comma":          "# HELP a A.\n# TYPE a gauge\na{x=\"1\",} 1\n",
		"empty line":              ok + "\n",
		"family without samples":  "# HELP a A.\n# TYPE a gauge\n",
		"buckets not cumulative":  hist("2", "1", "3", "3"),
		"count is not +Inf":       hist("1", "2", "3", "4"),
		"no +Inf bucket":          strings.Replace(hist("1", "2", "3", "3"), `le="+Inf"`, `le="3"`, 1),
		"bucket bounds unordered": strings.Replace(hist("1", "2", "3", "3"), `le="2"`, `le="0.5"`, 1),
	} {
		if _, err := metricstest.Parse(text); err == nil {
			t.Errorf("%s: accepted %q", name, text)
		}
	}
}

// TestNil: a nil Registry and the nil metrics it returns do nothing.
func TestNil(t *testing.T) {
	var r *metrics.Registry
	c := r.Counter("a_total", "A.")
	c.Inc()
	r.Gauge("g", "G.").Set(3)
	r.CounterVec("v_total", "V.", metrics.Label{Name: "x", Values: []string{"1"}}).With("2").Inc()
	r.HistogramVec("h", "H.", []float64{1}, metrics.Label{Name: "x", Values: []string{"1"}}).With("1").Observe(1)
	r.CounterFunc("f_total", "F.", func() float64 { t.Error("a nil Registry called a func"); return 0 })
	r.RegisterProcess(time.Now())
	if c.Value() != 0 {
		t.Error("a nil counter counted")
	}
	if n, err := r.WriteTo(io.Discard); n != 0 || err != nil {
		t.Errorf("WriteTo of nil: %d, %v", n, err)
	}
}

// TestMistakes: registrations that are mistakes of the program panic.
func TestMistakes(t *testing.T) {
	for name, f := range map[string]func(r *metrics.Registry){
		"counter without _total": func(r *metrics.Registry) { r.Counter("a", "A.") },
		"bad name":               func(r *metrics.Registry) { r.Gauge("a-b", "A.") },
		"bad label":              func(r *metrics.Registry) { r.Gauge("a", "A.", "1x", "v") },
		"odd labels":             func(r *metrics.Registry) { r.Gauge("a", "A.", "x") },
		"same series twice":      func(r *metrics.Registry) { r.Gauge("a", "A.", "x", "1"); r.Gauge("a", "A.", "x", "1") },
		"kind changes":           func(r *metrics.Registry) { r.Gauge("a_total", "A."); r.Counter("a_total", "A.", "x", "1") },
		"help changes":           func(r *metrics.Registry) { r.Gauge("a", "A.", "x", "1"); r.Gauge("a", "B.", "x", "2") },
		"le on a histogram": func(r *metrics.Registry) {
			r.HistogramVec("h", "H.", []float64{1}, metrics.Label{Name: "le", Values: []string{"1"}})
		},
		"unordered buckets": func(r *metrics.Registry) {
			r.HistogramVec("h", "H.", []float64{2, 1}, metrics.Label{Name: "x", Values: []string{"1"}})
		},
		"unknown label value": func(r *metrics.Registry) {
			r.CounterVec("v_total", "V.", metrics.Label{Name: "x", Values: []string{"1"}}).With("2")
		},
		"too few label values": func(r *metrics.Registry) {
			r.CounterVec("v_total", "V.", metrics.Label{Name: "x", Values: []string{"1"}}, metrics.Label{Name: "y", Values: []string{"1"}}).With("1")
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(metrics.NewRegistry())
		}()
	}
}

// TestConcurrent: renderings taken while many goroutines count are
// well-formed, a histogram's +Inf bucket always equals its _count, and
// nothing is lost.
func TestConcurrent(t *testing.T) {
	r := metrics.NewRegistry()
	hv := r.HistogramVec("c_seconds", "C.", []float64{.001, .01, .1}, metrics.Label{Name: "k", Values: []string{"a", "b"}})
	cv := r.CounterVec("c_total", "C.", metrics.Label{Name: "k", Values: []string{"a", "b"}})
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			k := []string{"a", "b"}[w%2]
			for i := range each {
				hv.With(k).Observe(float64(i%200) / 1000)
				cv.With(k).Inc()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for renders := 0; ; renders++ {
		select {
		case <-done:
			e, err := metricstest.Parse(render(t, r))
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := e.Sum("c_total"); n != workers*each {
				t.Errorf("counted %v, want %d", n, workers*each)
			}
			if n, _ := e.Sum("c_seconds_count"); n != workers*each {
				t.Errorf("observed %v, want %d", n, workers*each)
			}
			if v, ok := e.Value("c_seconds_bucket", "k", "a", "le", "0.01"); !ok || v != 2*each*11/200 { // i%200 in 0..10
				t.Errorf(`bucket le="0.01" of a: %v, want %d`, v, 2*each*11/200)
			}
			return
		default:
		}
		if _, err := metricstest.Parse(render(t, r)); err != nil {
			t.Fatalf("rendering %d: %v", renders, err)
		}
	}
}

func TestHTTP(t *testing.T) {
	r := metrics.NewRegistry()
	r.Counter("h_total", "H.").Add(2)
	r.RegisterProcess(time.Unix(1700000000, 500_000_000))
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("GET: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	e, err := metricstest.Parse(string(body))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := e.Value("h_total"); !ok || v != 2 {
		t.Errorf("h_total %v %v", v, ok)
	}
	if v, ok := e.Value("cistern_process_start_time_seconds"); !ok || v != 1700000000.5 {
		t.Errorf("start time %v %v", v, ok)
	}
	if v, n := e.Sum("cistern_build_info"); n != 1 || v != 1 {
		t.Errorf("build info: %v in %d samples", v, n)
	}
	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
}

// TestFloatValues: values render so that they parse back the same.
func TestFloatValues(t *testing.T) {
	r := metrics.NewRegistry()
	vals := []float64{0, 1, -3, 1e300, 1.5e-7, 1 << 53, 1<<53 + 2, math.Inf(1), math.Inf(-1)}
	for i, v := range vals {
		r.GaugeFunc("f", "F.", func() float64 { return v }, "i", string(rune('a'+i)))
	}
	e, err := metricstest.Parse(render(t, r))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if got, ok := e.Value("f", "i", string(rune('a'+i))); !ok || got != v {
			t.Errorf("%v read back as %v", v, got)
		}
	}
}
