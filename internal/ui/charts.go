package ui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/url"
	"strings"
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
