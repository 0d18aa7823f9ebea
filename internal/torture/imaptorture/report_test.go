package imaptorture

import (
	"bytes"
	"encoding/json"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sampleResult is a small run with operations, violations and an error,
// recorded as a run records them.
func sampleResult() *Result {
	start := time.Date(2025, 11, 28, 12, 0, 0, 0, time.UTC)
	rec := newRecorder(start)
	for i := range 600 {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		rec.op([]string{"SELECT", "FETCH FLAGS", "STORE", "APPEND", "LMTP", "foreign rename"}[i%6], at, time.Duration(1+i%37)*100*time.Microsecond, outcome(i%11/10))
	}
	rec.violation("", Violation{Kind: PhantomExpunge, At: 2.5, Session: "imap-2", Command: "NOOP", Detail: `UID 7 <x&y@z> was "expunged"`, Evidence: []string{"* 3 EXPUNGE", "learned: * 3 FETCH (UID 7)"}})
	rec.violation("", Violation{Kind: FlagsDiverge, At: 6.1, Session: "disk", Detail: "UID 9 has flags (\\seen) on the server, () in its file name"})
	rec.failure("imap-4", ErrClosed)
	res := &Result{Target: "127.0.0.1:143", Greeting: "* OK <fake> ready", Mailbox: "INBOX", Sessions: 4, Started: start, LMTP: "127.0.0.1:24", Maildir: "/var/mail/x"}
	res.Seconds, res.Elapsed = 6, 7
	rec.fill(res, 6)
	return res
}

func TestFill(t *testing.T) {
	res := sampleResult()
	if res.Operations != 600 || len(res.Ops) != 6 || res.Total != 2 || res.Violations[PhantomExpunge] != 1 || len(res.Errors) != 1 {
		t.Fatalf("%+v", res)
	}
	sel := res.Op("SELECT")
	if sel.Count != 100 || sel.OK+sel.No != 100 || sel.No == 0 || sel.P50ms <= 0 || sel.P99ms < sel.P50ms || sel.Op != "SELECT" {
		t.Errorf("SELECT: %+v", sel)
	}
	if res.Ops[0].Op != "SELECT" || res.Ops[len(res.Ops)-1].Op != "foreign rename" {
		t.Errorf("order: %+v", res.Ops)
	}
	if len(res.Timeline.Ops) != len(groupNames) || len(res.Timeline.Violations) != 2 || len(res.Timeline.Latency) == 0 {
		t.Errorf("timeline: %+v", res.Timeline)
	}
	total := 0
	for _, g := range res.Timeline.Ops {
		for _, n := range g {
			total += n
		}
	}
	if total != 600 {
		t.Errorf("timeline holds %d operations", total)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Total != 2 || back.Violations[FlagsDiverge] != 1 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	var sb strings.Builder
	res.WriteSummary(&sb)
	for _, want := range []string{"phantom expunge", "SELECT", "imap-4: connection closed", "* 3 EXPUNGE"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sb.String())
		}
	}
	sb.Reset()
	WriteComparison(&sb, []string{"a", "b"}, []*Result{res, res})
	if !strings.Contains(sb.String(), "phantom expunge") || strings.Count(sb.String(), "\n") < 10 {
		t.Errorf("comparison:\n%s", sb.String())
	}
}

// TestHTML: the report is one page with its plots, without scripts or
// anything fetched, and with the text escaped.
func TestHTML(t *testing.T) {
	res := sampleResult()
	page := res.HTML()
	for _, want := range []string{`<svg id="latency-plot"`, `<svg id="timeline-plot"`, `<svg id="latency-time-plot"`, `<polygon class="series"`,
		"&lt;x&amp;y@z&gt;", "&#34;expunged&#34;", "2 violations", ColorP99} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, k := range Kinds {
		if !bytes.Contains(page, []byte("<tr><td>"+html.EscapeString(k.Title())+"</td>")) {
			t.Errorf("the report does not list %s", k)
		}
	}
	for _, bad := range []string{"<script", " src=", "href=", "url(", "@import", "<x&y@z>"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("the report holds %q", bad)
		}
	}
	for _, u := range regexp.MustCompile(`[a-z]+://[^"]*`).FindAll(page, -1) {
		if string(u) != "http://www.w3.org/2000/svg" {
			t.Errorf("the report names %q", u)
		}
	}
	if n := bytes.Count(page, []byte(`class="violation"`)); n != 2 {
		t.Errorf("%d violation marks, want 2", n)
	}
	if bytes.Count(page, []byte("<svg")) != bytes.Count(page, []byte("</svg>")) {
		t.Error("unbalanced svg elements")
	}
	empty := (&Result{Violations: map[Kind]int{}}).HTML()
	if !bytes.Contains(empty, []byte("no violations")) || !bytes.Contains(empty, []byte(`id="timeline-plot"`)) {
		t.Error("an empty result does not render")
	}
}
