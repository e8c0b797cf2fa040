package ui

import (
	"bytes"
	"context"
	"encoding/json"

	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// versionSummary is what the pages show of a version's blobs, computed
// once per version: versions are immutable, and decoding a snapshot of a
// big image costs far more than a page may.
type versionSummary struct {
	Gate     string
	Check    *checkReport
	Snapshot *snapshotSummary
	// Previous is the version diffed against; DiffHTML the release notes
	// (diff's Markdown, rendered), DiffFailed the diff gate's verdict.
	Previous   string
	DiffHTML   template.HTML
	DiffFailed bool
	// Changes indexes the diff's entries by ID, for linking causes.
	Changes map[string]bool
}

// checkReport is the part of `imagegate check -o json` (check's SCHEMA.md,
// a stable contract) the Version page shows.
type checkReport struct {
	Verdict string `json:"verdict"`
	Summary struct {
		Failed, Declared, Info, Passed int
	} `json:"summary"`
	Results []checkResult `json:"results"`
}

type checkResult struct {
	ID       string   `json:"id"`
	Origin   string   `json:"origin"`
	Kind     string   `json:"kind"`
	Status   string   `json:"status"`
	Name     string   `json:"name"`
	Message  string   `json:"message"`
	Evidence []string `json:"evidence"`
	Reason   string   `json:"reason"`
}

type snapshotSummary struct {
	Source, OS, Exec, Architecture string
	Packages, Tools                int
	Runtimes                       []runtimeSummary
}

type runtimeSummary struct {
	Kind, Version, Path string
	Modules, Packages   int
}

// versionCache remembers the summaries of the most recently shown
// versions.
type versionCache struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]*versionSummary
}

func newVersionCache(n int) *versionCache {
	return &versionCache{max: n, m: map[string]*versionSummary{}}
}

func (c *versionCache) get(key string) *versionSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *versionCache) put(key string, v *versionSummary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, key)
	c.m[key] = v
}

var markdown = goldmark.New(goldmark.WithExtensions(extension.Table))

// summary returns the summary of label's version, from the cache when
// it can.
func (h *Handler) summary(ctx context.Context, label, version string) (*versionSummary, error) {
	key := label + "\x00" + version
	if s := h.versions.get(key); s != nil {
		return s, nil
	}
	v, err := h.svc.Version(ctx, label, version)
	if err != nil {
		return nil, err
	}
	s := &versionSummary{Gate: v.Gate}
	if len(v.CheckReport) > 0 {
		var cr checkReport
		if err := json.Unmarshal(v.CheckReport, &cr); err != nil {
			return nil, fmt.Errorf("check report of %s %s: %w", label, version, err)
		}
		// Failures first, as `imagegate check` lists them; stable within.
		slices.SortStableFunc(cr.Results, func(a, b checkResult) int { return statusRank(a.Status) - statusRank(b.Status) })
		s.Check = &cr
	}
	var snap *snapshot.Snapshot
	if len(v.Snapshot) > 0 {
		if snap, err = snapshot.Decode(bytes.NewReader(v.Snapshot)); err != nil {
			return nil, fmt.Errorf("snapshot of %s %s: %w", label, version, err)
		}
		s.Snapshot = summarise(snap)
	}
	if snap != nil {
		prev, err := h.previous(ctx, label, version)
		if err != nil {
			return nil, err
		}
		if prev != "" {
			pv, err := h.svc.Version(ctx, label, prev)
			if err != nil {
				return nil, err
			}
			if len(pv.Snapshot) > 0 {
				old, err := snapshot.Decode(bytes.NewReader(pv.Snapshot))
				if err != nil {
					return nil, fmt.Errorf("snapshot of %s %s: %w", label, prev, err)
				}
				rep := diff.Compare(old, snap, nil)
				var md, out bytes.Buffer
				if err := rep.Write(&md, "markdown"); err != nil {
					return nil, err
				}
				// Raw HTML in the Markdown is left out by the renderer.
				if err := markdown.Convert(md.Bytes(), &out); err != nil {
					return nil, fmt.Errorf("render the diff of %s %s: %w", label, version, err)
				}
				s.Previous, s.DiffHTML, s.DiffFailed = prev, template.HTML(demoteHeadings(out.String())), rep.Failed()
				s.Changes = map[string]bool{}
				for _, c := range rep.Changes {
					s.Changes[c.ID] = true
				}
			}
		}
	}
	h.versions.put(key, s)
	return s, nil
}

// demoteHeadings moves the release notes' headings two levels down, under
// the page's own h2, so the page keeps one h1 and an outline that reads.
func demoteHeadings(h string) string {
	for _, l := range []string{"4", "3", "2", "1"} {
		to := string(rune(l[0] + 2))
		h = strings.NewReplacer("<h"+l+">", "<h"+to+">", "<h"+l+" ", "<h"+to+" ", "</h"+l+">", "</h"+to+">").Replace(h)
	}
	return h
}

func statusRank(s string) int {
	switch s {
	case "fail":
		return 0
	case "declared":
		return 1
	case "info":
		return 2
	}
	return 3
}

func summarise(s *snapshot.Snapshot) *snapshotSummary {
	out := &snapshotSummary{Source: s.Source, OS: s.OS.PrettyName, Exec: s.Exec, Architecture: s.Architecture, Packages: len(s.Packages), Tools: len(s.Tools)}
	for _, rt := range s.Runtimes {
		out.Runtimes = append(out.Runtimes, runtimeSummary{Kind: rt.Kind, Version: rt.Version, Path: rt.Path, Modules: len(rt.Modules), Packages: len(rt.Packages)})
	}
	return out
}

// previous returns the version pushed before version ("" for the first).
func (h *Handler) previous(ctx context.Context, label, version string) (string, error) {
	p := rollout.Page{Limit: 500}
	found := false
	for range 20 {
		vs, next, err := h.svc.Versions(ctx, label, p)
		if err != nil {
			return "", err
		}
		for _, v := range vs {
			if found {
				return v.Version, nil
			}
			found = v.Version == version
		}
		if next == "" {
			break
		}
		p.After = next
	}
	return "", nil
}

type versionData struct {
	rollout.Version
	Summary *versionSummary
	Failed  []checkResult
	Others  []checkResult
}

func (d versionData) title() (string, string) { return d.Label + " " + d.Version.Version, "images" }

func (h *Handler) versionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	label, version := r.PathValue("label"), r.PathValue("version")
	sum, err := h.summary(r.Context(), label, version)
	if err != nil {
		return err
	}
	// Revocation is not immutable: read the version's row again (the
	// listing carries no blobs).
	v, err := h.versionRow(r.Context(), label, version)
	if err != nil {
		return err
	}
	d := versionData{Version: v, Summary: sum}
	if sum.Check != nil {
		for _, res := range sum.Check.Results {
			if res.Status == "fail" {
				d.Failed = append(d.Failed, res)
			} else {
				d.Others = append(d.Others, res)
			}
		}
	}
	h.render(w, r, http.StatusOK, "version", s, d)
	return nil
}

// versionRow returns the version without its blobs, from the listing.
func (h *Handler) versionRow(ctx context.Context, label, version string) (rollout.Version, error) {
	p := rollout.Page{Limit: 500}
	for range 20 {
		vs, next, err := h.svc.Versions(ctx, label, p)
		if err != nil {
			return rollout.Version{}, err
		}
		for _, v := range vs {
			if v.Version == version {
				return v, nil
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	return rollout.Version{}, fmt.Errorf("version %s %s: %w", label, version, rollout.ErrNotFound)
}

// versionFile serves a version's snapshot or check report as stored.
func (h *Handler) versionFile(w http.ResponseWriter, r *http.Request, s *session) error {
	label, version := r.PathValue("label"), r.PathValue("version")
	v, err := h.svc.Version(r.Context(), label, version)
	if err != nil {
		return err
	}
	var body []byte
	switch r.PathValue("file") {
	case "snapshot.json":
		body = v.Snapshot
	case "check.json":
		body = v.CheckReport
	default:
		return fmt.Errorf("no such file: %s (snapshot.json or check.json): %w", r.PathValue("file"), rollout.ErrNotFound)
	}
	if len(body) == 0 {
		return fmt.Errorf("%s %s was pushed without %s: %w", label, version, r.PathValue("file"), rollout.ErrNotFound)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", label+"-"+version+"-"+r.PathValue("file")))
	w.Write(body)
	return nil
}
