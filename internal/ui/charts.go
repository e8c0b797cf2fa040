package ui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// chart is an inline SVG drawn on the server: readable without
// JavaScript, styled by the sheet's classes (no inline style, which the
// Content-Security-Policy forbids), with a title and every value also
// written as text, so colour never carries a value alone.
type chart = template.HTML

type bar struct {
	Label string
	Value float64
	Note  string
	Class string // new, old, hist
}

// barChart draws horizontal bars scaled to the largest value, each with
// its value and note written next to it.
func barChart(title, unit string, bars []bar) chart {
	return bars2(title, unit, bars, 170, 260, 210)
}

// smallBars is barChart for a table cell: short labels, the value alone.
func smallBars(title string, bars []bar) chart {
	for i := range bars {
		bars[i].Note = ""
	}
	return bars2(title, "", bars, 40, 120, 40)
}

func bars2(title, unit string, bars []bar, labelW, barW, noteW int) chart {
	const rowH = 26
	width, height := labelW+barW+noteW, rowH*len(bars)+8
	top := 0.0
	for _, b := range bars {
		if !math.IsNaN(b.Value) {
			top = max(top, b.Value)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		html.EscapeString(title), width, height, width, height, html.EscapeString(title))
	for i, b := range bars {
		y := 4 + i*rowH
		w := 0.0
		if top > 0 {
			w = float64(barW-10) * b.Value / top
		}
		val := fmt.Sprintf("%.2f%s", b.Value, unit)
		if unit == "" {
			val = fmt.Sprintf("%.0f", b.Value)
		}
		fmt.Fprintf(&sb, `<text class="lbl" x="0" y="%d">%s</text>`, y+16, html.EscapeString(b.Label))
		fmt.Fprintf(&sb, `<rect class="bar %s" x="%d" y="%d" width="%.1f" height="18"><title>%s: %s (%s)</title></rect>`,
			html.EscapeString(b.Class), labelW, y+2, math.Max(w, 1), html.EscapeString(b.Label), val, html.EscapeString(b.Note))
		text := val
		if b.Note != "" {
			text += " · " + b.Note
		}
		fmt.Fprintf(&sb, `<text class="val" x="%d" y="%d">%s</text>`, labelW+barW, y+16, html.EscapeString(text))
	}
	sb.WriteString(`</svg>`)
	return chart(sb.String())
}

// thresholdChart draws a statistic against the bar it must reach, on a
// scale from the smaller of 0 and the statistic to beyond the larger.
func thresholdChart(title string, stat, threshold float64, crossed bool) chart {
	const width, height, pad = 640, 56, 10
	if math.IsInf(stat, -1) || math.IsNaN(stat) {
		stat = 0
	}
	lo := math.Min(0, stat)
	hi := math.Max(threshold, stat) * 1.15
	if hi <= lo {
		hi = lo + 1
	}
	x := func(v float64) float64 { return pad + (width-2*pad)*(v-lo)/(hi-lo) }
	verdict := "below the threshold: no regression"
	cls := "ok"
	if crossed {
		verdict, cls = "at or above the threshold: regression", "bad"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" aria-label="%s: %.2f against %.2f, %s" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		html.EscapeString(title), stat, threshold, verdict, width, height, width, height, html.EscapeString(title))
	fmt.Fprintf(&sb, `<rect class="track" x="%d" y="14" width="%d" height="14"/>`, pad, width-2*pad)
	fmt.Fprintf(&sb, `<rect class="bar %s" x="%.1f" y="14" width="%.1f" height="14"/>`, cls, x(math.Min(0, stat)), math.Max(1, x(math.Max(0, stat))-x(math.Min(0, stat))))
	fmt.Fprintf(&sb, `<line class="threshold" x1="%.1f" x2="%.1f" y1="6" y2="36"/>`, x(threshold), x(threshold))
	fmt.Fprintf(&sb, `<text class="val" x="%d" y="50">log e = %.2f, threshold %.2f: %s</text>`, pad, stat, threshold, verdict)
	sb.WriteString(`</svg>`)
	return chart(sb.String())
}

// sparkline draws counts as small bars, one per point, each titled.
func sparkline(title string, labels []string, values []int64) chart {
	const bw, gap, height = 14, 4, 28
	width := len(values)*(bw+gap) + 2
	var top int64
	for _, v := range values {
		top = max(top, v)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="spark" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		html.EscapeString(title), width, height, width, height, html.EscapeString(title))
	for i, v := range values {
		h := 1.0
		if top > 0 {
			h = math.Max(1, float64(height-2)*float64(v)/float64(top))
		}
		fmt.Fprintf(&sb, `<rect class="bar new" x="%d" y="%.1f" width="%d" height="%.1f"><title>%s: %d</title></rect>`,
			1+i*(bw+gap), float64(height)-h, bw, h, html.EscapeString(labels[i]), v)
	}
	sb.WriteString(`</svg>`)
	return chart(sb.String())
}

func pathEscape(s string) string { return url.PathEscape(s) }

// trendPoint is one bucket of a failure-rate line chart.
type trendPoint struct {
	Start, End time.Time
	New, Old   rollout.JobCount
}

// rate is failed over jobs in percent; ok is false without jobs.
func rate(c rollout.JobCount) (pct float64, ok bool) {
	if c.Jobs == 0 {
		return 0, false
	}
	return 100 * float64(c.Failed) / float64(c.Jobs), true
}

// rateText is a side's count as the chart's titles and the table say it.
func rateText(c rollout.JobCount) string {
	p, ok := rate(c)
	if !ok {
		return "no jobs"
	}
	return fmt.Sprintf("%d of %d jobs failed (%.1f%%)", c.Failed, c.Jobs, p)
}

// trendChart draws the failure rate of both sides over time: the new
// side a solid line with round markers, the old a dashed line with
// square ones, named in a legend, so the sides differ without colour. A
// bucket without jobs on a side breaks that side's line. Every marker is
// titled with its bucket and counts; the page adds the same as a table.
func trendChart(title, newName, oldName string, pts []trendPoint) chart {
	const width, height = 640, 210
	const left, right, top, bottom = 48, 12, 30, 36
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	hi := 0.0
	for _, p := range pts {
		for _, c := range []rollout.JobCount{p.New, p.Old} {
			if r, ok := rate(c); ok {
				hi = math.Max(hi, r)
			}
		}
	}
	// A round top: 1, 2, 5, 10, 20, 50 or 100 percent.
	scale := 100.0
	for _, s := range []float64{1, 2, 5, 10, 20, 50} {
		if hi <= s {
			scale = s
			break
		}
	}
	x := func(i int) float64 {
		if len(pts) == 1 {
			return left + plotW/2
		}
		return left + plotW*float64(i)/float64(len(pts)-1)
	}
	y := func(r float64) float64 { return top + plotH*(1-r/scale) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart trend" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		html.EscapeString(title), width, height, width, height, html.EscapeString(title))
	for _, g := range []float64{0, scale / 2, scale} {
		fmt.Fprintf(&sb, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, width-right, y(g), y(g))
		fmt.Fprintf(&sb, `<text class="lbl axis" x="%d" y="%.1f">%g%%</text>`, left-6, y(g)+4, g)
	}
	if len(pts) > 0 {
		ticks := []int{0, len(pts) / 2, len(pts) - 1}
		for k, i := range slices.Compact(ticks) {
			anchor := []string{"start", "middle", "end"}[k]
			if len(pts) == 1 {
				anchor = "middle"
			}
			fmt.Fprintf(&sb, `<text class="lbl tick-%s" x="%.1f" y="%d">%s</text>`, anchor, x(i), height-bottom+18, pts[i].Start.UTC().Format("Jan 2 15:04"))
		}
	}
	series := []struct {
		class, name string
		side        func(trendPoint) rollout.JobCount
	}{
		{"new", newName, func(p trendPoint) rollout.JobCount { return p.New }},
		{"old", oldName, func(p trendPoint) rollout.JobCount { return p.Old }},
	}
	for k, s := range series {
		// Legend: a sample of the line and marker, then the name.
		lx := left + k*280
		fmt.Fprintf(&sb, `<line class="series %s" x1="%d" x2="%d" y1="12" y2="12"/>`, s.class, lx, lx+28)
		marker(&sb, s.class, float64(lx+14), 12, "")
		fmt.Fprintf(&sb, `<text class="lbl" x="%d" y="16">%s</text>`, lx+34, html.EscapeString(s.name))
		var d strings.Builder
		pen := "M"
		for i, p := range pts {
			r, ok := rate(s.side(p))
			if !ok {
				pen = "M"
				continue
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", pen, x(i), y(r))
			pen = "L"
		}
		if d.Len() > 0 {
			fmt.Fprintf(&sb, `<path class="series %s" d="%s"/>`, s.class, strings.TrimSpace(d.String()))
		}
		for i, p := range pts {
			c := s.side(p)
			r, ok := rate(c)
			if !ok {
				continue
			}
			marker(&sb, s.class, x(i), y(r), fmt.Sprintf("%s, %s: %s", bucketText(p), s.name, rateText(c)))
		}
	}
	sb.WriteString(`</svg>`)
	return chart(sb.String())
}

// marker draws a series' point: a circle for the new side, a square for
// the old.
func marker(sb *strings.Builder, class string, cx, cy float64, title string) {
	t := ""
	if title != "" {
		t = "<title>" + html.EscapeString(title) + "</title>"
	}
	if class == "new" {
		fmt.Fprintf(sb, `<circle class="marker %s" cx="%.1f" cy="%.1f" r="3.5">%s</circle>`, class, cx, cy, t)
		return
	}
	fmt.Fprintf(sb, `<rect class="marker %s" x="%.1f" y="%.1f" width="7" height="7">%s</rect>`, class, cx-3.5, cy-3.5, t)
}

// bucketText names a bucket's span, in UTC like every time on the pages.
func bucketText(p trendPoint) string {
	return p.Start.UTC().Format("Jan 2 15:04") + "–" + p.End.UTC().Format("15:04") + " UTC"
}

// trendSpark draws a signature's failed jobs per hour as thin bars, oldest
// first, each titled with its hour and count, and says the same in words
// (total, peak, last hour) for the page.
func trendSpark(id string, trend []rollout.TrendBucket) (chart, string) {
	if len(trend) == 0 {
		return "", ""
	}
	const bw, gap, height = 3, 1, 24
	width := len(trend) * (bw + gap)
	var total, top int64
	var peak time.Time
	for _, b := range trend {
		total += b.Jobs
		if b.Jobs > top {
			top, peak = b.Jobs, b.Hour
		}
	}
	hours := len(trend)
	text := fmt.Sprintf("%d failed jobs in %dh", total, hours)
	if total == 1 {
		text = fmt.Sprintf("1 failed job in %dh", hours)
	}
	if top > 0 {
		text += fmt.Sprintf(", peak %d at %s, last hour %d", top, peak.UTC().Format("Jan 2 15:04"), trend[len(trend)-1].Jobs)
	}
	title := fmt.Sprintf("Failed jobs with %s per hour over the last %d hours: %s", id, hours, text)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="spark trend-spark" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		html.EscapeString(title), width, height, width, height, html.EscapeString(title))
	fmt.Fprintf(&sb, `<line class="grid" x1="0" x2="%d" y1="%d" y2="%d"/>`, width, height-1, height-1)
	for i, b := range trend {
		if b.Jobs == 0 {
			continue
		}
		h := math.Max(2, float64(height-2)*float64(b.Jobs)/float64(top))
		fmt.Fprintf(&sb, `<rect class="bar new" x="%d" y="%.1f" width="%d" height="%.1f"><title>%s UTC: %d</title></rect>`,
			i*(bw+gap), float64(height-1)-h, bw, h, b.Hour.UTC().Format("Jan 2 15:04"), b.Jobs)
	}
	sb.WriteString(`</svg>`)
	return chart(sb.String()), text
}
