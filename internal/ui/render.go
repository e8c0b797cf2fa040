package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// pages holds one template set per page: the layout with the page's
// content (and the partials every page may use).
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dur": fmtDuration,
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"num": func(f float64) string {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Sprint(f)
		}
		return fmt.Sprintf("%.2f", f)
	},
	"q":    url.QueryEscape,
	"path": url.PathEscape,
	"add":  func(a, b int) int { return a + b },
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 24*time.Hour:
		s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
		if len(s) > 2 && strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%s", days, strings.TrimSuffix((d-days*24*time.Hour).Round(time.Hour).String(), "0m0s"))
}

func parsePages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", n, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// view is what the layout reads: the page's own data in Data.
type view struct {
	Title   string
	Nav     string
	Session *session
	Data    any
}

type titled interface{ title() (title, nav string) }

// render writes page name with data; the layout's "content" block is the
// page's.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, data any) {
	t := h.pages.byName[name]
	v := view{Session: s, Data: data}
	if td, ok := data.(titled); ok {
		v.Title, v.Nav = td.title()
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := t.ExecuteTemplate(buf, "layout", v); err != nil {
		h.log.Error("render dashboard page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; the server log has why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fragment renders a page's "live" block alone: what the stream sends.
func (h *Handler) fragment(name string, s *session, data any) (string, error) {
	buf := getBuffer()
	defer putBuffer(buf)
	if err := h.pages.byName[name].ExecuteTemplate(buf, "live", view{Session: s, Data: data}); err != nil {
		return "", fmt.Errorf("render %s update: %w", name, err)
	}
	return buf.String(), nil
}

func (d errorData) title() (string, string) { return d.Title, "" }
func (d loginData) title() (string, string) { return "Log in", "" }

// buffers hold pages while they render (a page is written only once it
// rendered whole, so a template error is a clean 500): reused, a page of
// 100 KB costs no new allocation and no growing copies.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return buffers.Get().(*bytes.Buffer) }

// putBuffer returns buf to the pool unless it grew past 1 MiB, which
// the pool would then keep alive for a page that rarely comes.
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return
	}
	buf.Reset()
	buffers.Put(buf)
}
