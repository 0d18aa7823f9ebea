package imaptorture

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// Colors of the report: one per series of Timeline.Groups (in the
// timeline and the latency-over-time plot), the two bars of the latency
// plot, violations, and the verdict of a clean run.
var groupColors = []string{"#2a9d8f", "#e9a23b", "#7b52c7", "#e76f51"}

const (
	ColorP50       = "#8ab6e0"
	ColorP99       = "#1d4e89"
	ColorViolation = "#d62828"
	ColorOK        = "#2b8a3e"
)

// GroupColor is the color of series g of Timeline.Groups.
func GroupColor(g int) string { return groupColors[g%len(groupColors)] }

// HTML renders the result as one self-contained page: no script, no
// fetches, plots as inline SVG.
func (r *Result) HTML() []byte {
	var b strings.Builder
	e := html.EscapeString
	title := "cistern torture imap: " + r.Target
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title>
<style>
body { font-family: sans-serif; margin: 24px auto; max-width: 1120px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.meta td { text-align: left; }
.verdict { font-size: 28px; font-weight: bold; padding: 12px 18px; border-radius: 6px; display: inline-block; color: #fff; }
.bad { background: %s; } .good { background: %s; }
pre { background: #f5f5f5; padding: 6px 10px; font-size: 12px; white-space: pre-wrap; word-break: break-all; margin: 4px 0 14px 0; }
.v { font-size: 13px; margin: 0; }
svg { display: block; margin: 8px 0; }
svg text { font-family: sans-serif; font-size: 11px; fill: #333; }
.legend span { display: inline-block; margin-right: 16px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: middle; }
</style>
</head>
<body>
<h1>%s</h1>
`, e(title), ColorViolation, ColorOK, e(title))

	fmt.Fprintf(&b, "<table class=\"meta\">\n")
	meta := [][2]string{
		{"server", r.Greeting},
		{"mailbox", r.Mailbox},
		{"sessions", fmt.Sprint(r.Sessions)},
		{"actors ran", fmt.Sprintf("%.1f s (the whole run %.1f s)", r.Seconds, r.Elapsed)},
		{"started", r.Started.Format(time.RFC3339)},
		{"operations", fmt.Sprintf("%d, %.1f per second", r.Operations, r.OpsPerSecond)},
	}
	if r.LMTP != "" {
		meta = append(meta, [2]string{"LMTP", r.LMTP})
	}
	if r.Maildir != "" {
		meta = append(meta, [2]string{"foreign writers in", r.Maildir})
	}
	m := r.Messages
	meta = append(meta, [2]string{"messages", fmt.Sprintf("%d seeded, %d appended, %d over LMTP, %d by foreign writers; %d foreign deletions; %d EXPUNGEs told; %d at the end",
		m.Seeded, m.Appended, m.LMTPDelivered, m.ForeignDelivered, m.ForeignDeleted, m.ToldExpunged, m.Final)})
	if l := r.Lifecycle.Summary(); l != "" {
		meta = append(meta, [2]string{"other mailboxes", l})
	}
	for _, kv := range meta {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", e(kv[0]), e(kv[1]))
	}
	b.WriteString("</table>\n")

	class, verdict := "good", "no violations"
	if r.Total > 0 {
		class, verdict = "bad", fmt.Sprintf("%d violations", r.Total)
	}
	if len(r.Errors) > 0 {
		verdict += fmt.Sprintf(", %d errors", len(r.Errors))
		class = "bad"
	}
	fmt.Fprintf(&b, "<p><span id=\"verdict\" class=\"verdict %s\">%s</span></p>\n", class, e(verdict))

	b.WriteString("<h2>Violations by kind</h2>\n<table id=\"violations\"><tr><th>kind</th><th>count</th></tr>\n")
	for _, k := range Kinds {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td></tr>\n", e(k.Title()), r.Violations[k])
	}
	fmt.Fprintf(&b, "<tr><th>total</th><th>%d</th></tr>\n</table>\n", r.Total)

	b.WriteString("<h2>Latency per operation</h2>\n")
	fmt.Fprintf(&b, "<div class=\"legend\"><span><i style=\"background:%s\"></i>p50</span><span><i style=\"background:%s\"></i>p99</span></div>\n", ColorP50, ColorP99)
	r.latencyPlot(&b)

	b.WriteString("<h2>Timeline: operations per second and violations</h2>\n<div class=\"legend\">")
	for i, g := range r.Timeline.Groups {
		fmt.Fprintf(&b, "<span><i style=\"background:%s\"></i>%s</span>", groupColors[i%len(groupColors)], e(g))
	}
	fmt.Fprintf(&b, "<span><i style=\"background:%s\"></i>violation</span></div>\n", ColorViolation)
	r.timelinePlot(&b)

	b.WriteString("<h2>Latency over time (sampled operations)</h2>\n")
	r.latencyTimePlot(&b)

	b.WriteString("<h2>Operations</h2>\n<table id=\"ops\"><tr><th>operation</th><th>count</th><th>ok</th><th>no</th><th>bad</th><th>failed</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>per s</th></tr>\n")
	for _, s := range r.Ops {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%.1f</td></tr>\n",
			e(s.Op), s.Count, s.OK, s.No, s.Bad, s.Failed, s.P50ms, s.P99ms, s.Maxms, s.PerSecond)
	}
	fmt.Fprintf(&b, "<tr><th>total</th><th>%d</th><td colspan=\"7\"></td><th>%.1f</th></tr>\n</table>\n", r.Operations, r.OpsPerSecond)

	if len(r.Examples) > 0 {
		fmt.Fprintf(&b, "<h2>Violations (the first %d)</h2>\n", len(r.Examples))
		for _, v := range r.Examples {
			fmt.Fprintf(&b, "<p class=\"v\"><b>%.3f s, %s</b>, %s", v.At, e(v.Kind.Title()), e(v.Session))
			if v.Command != "" {
				fmt.Fprintf(&b, ", during <code>%s</code>", e(v.Command))
			}
			fmt.Fprintf(&b, ": %s</p>\n", e(v.Detail))
			if len(v.Evidence) > 0 {
				fmt.Fprintf(&b, "<pre>%s</pre>\n", e(strings.Join(v.Evidence, "\n")))
			}
		}
	}
	if len(r.Errors) > 0 {
		b.WriteString("<h2>Errors</h2>\n<pre>")
		b.WriteString(e(strings.Join(r.Errors, "\n")))
		b.WriteString("</pre>\n")
	}
	b.WriteString("</body>\n</html>\n")
	return []byte(b.String())
}

// logScale maps values on a log axis from lo to hi onto [0, width].
type logScale struct{ lo, hi, width float64 }

func newLogScale(lo, hi, width float64) logScale {
	lo = math.Pow(10, math.Floor(math.Log10(math.Max(lo, 0.001))))
	hi = math.Pow(10, math.Ceil(math.Log10(math.Max(hi, lo*10))))
	return logScale{lo, hi, width}
}

func (s logScale) at(v float64) float64 {
	v = math.Min(math.Max(v, s.lo), s.hi)
	return s.width * (math.Log10(v) - math.Log10(s.lo)) / (math.Log10(s.hi) - math.Log10(s.lo))
}

// decades are the powers of ten from lo to hi.
func (s logScale) decades() []float64 {
	var out []float64
	for v := s.lo; v <= s.hi*1.0001; v *= 10 {
		out = append(out, v)
	}
	return out
}

func msLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%g s", v/1000)
	}
	return fmt.Sprintf("%g ms", v)
}

// latencyPlot draws p50 and p99 of every operation as horizontal bars on
// a log axis.
func (r *Result) latencyPlot(b *strings.Builder) {
	const left, top, rowH, width = 150.0, 10.0, 26.0, 900.0
	lo, hi := math.Inf(1), 0.0
	for _, s := range r.Ops {
		if s.Count > 0 {
			lo, hi = math.Min(lo, math.Max(s.P50ms, 0.001)), math.Max(hi, s.P99ms)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0.01, 1
	}
	sc := newLogScale(lo, hi, width)
	height := top + rowH*float64(len(r.Ops)) + 30
	fmt.Fprintf(b, "<svg id=\"latency-plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", left+width+20, height, left+width+20, height)
	bottom := top + rowH*float64(len(r.Ops))
	for _, d := range sc.decades() {
		x := left + sc.at(d)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, top, x, bottom)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, bottom+16, msLabel(d))
	}
	for i, s := range r.Ops {
		y := top + rowH*float64(i)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left-8, y+rowH/2+4, html.EscapeString(s.Op))
		fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s p99 %.2f ms</title></rect>\n", left, y+3, math.Max(sc.at(s.P99ms), 1), rowH-6, ColorP99, html.EscapeString(s.Op), s.P99ms)
		fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s p50 %.2f ms</title></rect>\n", left, y+7, math.Max(sc.at(s.P50ms), 1), rowH-14, ColorP50, html.EscapeString(s.Op), s.P50ms)
	}
	fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n</svg>\n", left, bottom, left+width, bottom)
}

// timelinePlot draws operations per second of every group as lines and
// every violation as a red tick above the axis.
func (r *Result) timelinePlot(b *strings.Builder) {
	const left, top, width, height = 60.0, 10.0, 990.0, 260.0
	tl := r.Timeline
	seconds := 1
	peak := 1
	for _, series := range tl.Ops {
		seconds = max(seconds, len(series))
		for _, n := range series {
			peak = max(peak, n)
		}
	}
	for _, v := range tl.Violations {
		seconds = max(seconds, int(v.At)+1)
	}
	xAt := func(sec float64) float64 { return left + width*sec/float64(seconds) }
	yAt := func(n int) float64 { return top + height - height*float64(n)/float64(peak) }
	total := top + height + 70
	fmt.Fprintf(b, "<svg id=\"timeline-plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", left+width+20, total, left+width+20, total)
	for i := 0; i <= 4; i++ {
		n := peak * i / 4
		y := yAt(n)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left, y, left+width, y)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d/s</text>\n", left-6, y+4, n)
	}
	step := max(1, seconds/10)
	for s := 0; s <= seconds; s += step {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d s</text>\n", xAt(float64(s)), top+height+16, s)
	}
	for g, series := range tl.Ops {
		if len(series) == 0 {
			continue
		}
		color := groupColors[g%len(groupColors)]
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(0), yAt(0)))
		for s, n := range series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", xAt(float64(s)), yAt(n), xAt(float64(s+1)), yAt(n)))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(float64(len(series))), yAt(0)))
		fmt.Fprintf(b, "<polygon class=\"series\" points=\"%s\" fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" stroke-width=\"1.5\"><title>%s</title></polygon>\n",
			strings.Join(pts, " "), color, color, html.EscapeString(tl.Groups[g]))
	}
	fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", left, top+height, left+width, top+height)
	strip := top + height + 30
	fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">violations</text>\n", left-6, strip+14)
	fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"20\" fill=\"#f7f7f7\"/>\n", left, strip, width)
	for _, v := range tl.Violations {
		x := xAt(v.At)
		fmt.Fprintf(b, "<rect class=\"violation\" x=\"%.1f\" y=\"%.1f\" width=\"3\" height=\"20\" fill=\"%s\"><title>%.3f s: %s</title></rect>\n", x-1, strip, ColorViolation, v.At, html.EscapeString(v.Kind.Title()))
	}
	if len(tl.Violations) == 0 {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\">none</text>\n", left+8, strip+14)
	}
	b.WriteString("</svg>\n")
}

// latencyTimePlot draws sampled operations: when they started and how
// long they took, on a log axis, colored by group.
func (r *Result) latencyTimePlot(b *strings.Builder) {
	const left, top, width, height = 60.0, 10.0, 990.0, 240.0
	samples := r.Timeline.Latency
	lo, hi := math.Inf(1), 0.0
	last := 1.0
	for _, s := range samples {
		lo, hi = math.Min(lo, math.Max(s.Ms, 0.001)), math.Max(hi, s.Ms)
		last = math.Max(last, s.At)
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0.01, 1
	}
	sc := newLogScale(lo, hi, height)
	total := top + height + 30
	fmt.Fprintf(b, "<svg id=\"latency-time-plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", left+width+20, total, left+width+20, total)
	for _, d := range sc.decades() {
		y := top + height - sc.at(d)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left, y, left+width, y)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left-6, y+4, msLabel(d))
	}
	for _, s := range samples {
		x := left + width*s.At/last
		y := top + height - sc.at(s.Ms)
		fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", x, y, groupColors[s.Group%len(groupColors)])
	}
	fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", left, top+height, left+width, top+height)
	fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f s</text>\n</svg>\n", left+width, top+height+16, last)
}
