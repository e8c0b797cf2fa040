package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// imagesPerPage bounds the labels of one Images page: each costs a status
// read (served counts, the gate's inputs).
const imagesPerPage = 25

type imagesData struct {
	Images []imageCard
	Next   string
	After  string
	// Org is whose resolves the page shows: an org token's own, or the
	// one an admin asked for ("" for none); Resolves are by label, in
	// the order of Images.
	Org      string
	Resolves []resolveView
}

// resolveView is what a label resolves to for Org, said for people.
type resolveView struct {
	rollout.Resolution
	// Why is the reason in words, Detail the explanation the viewer may
	// see (see why).
	Why, Detail string
}

func (imagesData) title() (string, string) { return "Images", "images" }

// imageCard is one label on the Images page.
type imageCard struct {
	Label   string
	Default string
	// Newest is the newest version (org view: the catalogue).
	Newest *rollout.Version
	// Rollout and Rings: admin view only.
	Rollout *rolloutView
	Waiting string
	Alerts  []string
	// AsOf is when the status was read (see staleCache).
	AsOf time.Time
}

// rolloutView is a rollout with what the pages show of it.
type rolloutView struct {
	rollout.Rollout
	Active bool
	Gate   string // the version's check verdict
	Rings  []ringView
	// Changed is the last change of the rollout.
	Changed time.Time
}

type ringView struct {
	Index          int
	Name, Intended string
	Control        string
	Served         []servedCount
	Current        bool
	Done           bool
	// Bake progress of the current ring.
	BakeTime     time.Duration
	Baked        time.Duration
	BakePercent  int
	MinJobs      int
	Manual       bool
	ControlShare float64
}

type servedCount struct {
	Version string
	Count   int64
}

var activeStates = []rollout.State{rollout.StatePending, rollout.StateBaking, rollout.StatePaused, rollout.StateHalted}

func (h *Handler) rolloutView(r rollout.Rollout, st *rollout.LabelStatus, gate string) *rolloutView {
	v := &rolloutView{Rollout: r, Active: slices.Contains(activeStates, r.State), Gate: gate, Changed: r.UpdatedAt}
	now := h.now()
	for i, ring := range r.Rings {
		rv := ringView{Index: i, Name: ring.Name, BakeTime: ring.BakeTime, MinJobs: ring.MinJobs, Manual: ring.ManualApproval, ControlShare: ring.ControlPercent}
		rv.Current = v.Active && i == r.Ring && r.State != rollout.StatePending
		rv.Done = r.State == rollout.StateCompleted || (v.Active && i < r.Ring)
		if st != nil && i < len(st.Rings) {
			rs := st.Rings[i]
			rv.Intended, rv.Control = rs.Intended, rs.Control
			for ver, n := range rs.Served {
				rv.Served = append(rv.Served, servedCount{ver, n})
			}
			slices.SortFunc(rv.Served, func(a, b servedCount) int { return compareStrings(a.Version, b.Version) })
		}
		if rv.Current {
			rv.Baked = max(0, now.Sub(r.RingStartedAt))
			if ring.BakeTime > 0 {
				rv.BakePercent = int(min(100, 100*rv.Baked/ring.BakeTime))
			} else {
				rv.BakePercent = 100
			}
		}
		if rv.Done {
			rv.BakePercent = 100
		}
		v.Rings = append(v.Rings, rv)
	}
	return v
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (h *Handler) imagesPage(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := h.images(r, s)
	if err != nil {
		return err
	}
	h.render(w, r, http.StatusOK, "images", s, d)
	return nil
}

func (h *Handler) images(r *http.Request, s *session) (imagesData, error) {
	ctx := r.Context()
	after := r.URL.Query().Get("after")
	imgs, next, err := h.svc.Images(ctx, rollout.Page{After: after, Limit: imagesPerPage})
	if err != nil {
		return imagesData{}, err
	}
	d := imagesData{Next: next, After: after, Images: make([]imageCard, len(imgs))}
	// Cards are read a few at a time: each is a handful of cache hits
	// once warm, but a cold cache (a restart, a new label) reads statuses
	// from the store, and on PostgreSQL those are round trips worth
	// overlapping.
	errs := make([]error, len(imgs))
	sem := make(chan struct{}, cardReaders)
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.Images[i], errs[i] = h.card(ctx, img.Label, s.id.IsAdmin())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return d, err
	}
	org, err := resolveOrg(r, s)
	if err != nil || org == "" {
		return d, err
	}
	labels := make([]string, len(imgs))
	for i, img := range imgs {
		labels[i] = img.Label
	}
	res, err := h.svc.Resolutions(org, labels)
	if err != nil {
		return d, err
	}
	d.Org = org
	for _, rs := range res {
		v := resolveView{Resolution: rs}
		v.Why, v.Detail = why(rs, s.id.IsAdmin())
		d.Resolves = append(d.Resolves, v)
	}
	return d, nil
}

// resolveOrg is whose resolves the Images page shows: an org token's
// own, always (asking for another org's is refused); for an admin, the
// org of the form field, if any.
func resolveOrg(r *http.Request, s *session) (string, error) {
	asked := strings.TrimSpace(r.URL.Query().Get("org"))
	if s.id.Org != "" {
		if asked != "" && asked != s.id.Org {
			return "", fmt.Errorf("token %q belongs to organisation %q and cannot see what %q resolves: %w", s.id.Name, s.id.Org, asked, rollout.ErrForbidden)
		}
		return s.id.Org, nil
	}
	if asked == "" || !s.id.IsAdmin() {
		return "", nil
	}
	if err := rollout.CheckName("organisation", asked); err != nil {
		return "", err
	}
	return asked, nil
}

// why says a resolution's reason for people, the kind first, the ring by
// number. An org is told its own pin's details but not the rollout's id
// (the catalogue view keeps rollouts to admins); an admin gets the
// resolver's own explanation too.
func why(rs rollout.Resolution, admin bool) (why, detail string) {
	switch rs.Reason {
	case "pin":
		return "pinned", rs.Detail
	case "rollout":
		why = fmt.Sprintf("ring %d: the new version is rolling out to it", rs.Ring)
	case "control":
		why = fmt.Sprintf("control share of ring %d: stays on the old version until the ring is left", rs.Ring)
	case "default":
		why = "default"
		if rs.RolloutID != "" {
			why = fmt.Sprintf("default: a rollout has not reached ring %d yet", rs.Ring)
		}
	case rollout.ReasonNone:
		return "nothing to serve", rs.Detail
	default:
		why = rs.Reason
	}
	if admin {
		detail = rs.Detail
	}
	return why, detail
}

// cardReaders bounds the labels of one Images page read at once.
const cardReaders = 4

// card is label's card: newest version and, for admins, its status.
func (h *Handler) card(ctx context.Context, label string, admin bool) (imageCard, error) {
	c := imageCard{Label: label}
	newest, err := h.newestVersion(ctx, label)
	if err != nil {
		return c, err
	}
	c.Newest = newest
	if !admin {
		return c, nil
	}
	st, asOf, err := h.status(ctx, label)
	if err != nil {
		return c, err
	}
	c.AsOf = asOf
	c.Default, c.Waiting = st.Default, st.Waiting
	if st.Rollout == nil {
		return c, nil
	}
	gate := ""
	if sum, err := h.summary(ctx, label, st.Rollout.Version); err == nil {
		gate = sum.Gate
	} else if !errors.Is(err, rollout.ErrNotFound) {
		return c, err
	}
	c.Rollout = h.rolloutView(*st.Rollout, &st, gate)
	switch st.Rollout.State {
	case rollout.StateHalted:
		c.Alerts = append(c.Alerts, "halted: "+st.Rollout.Reason)
	case rollout.StateRolledBack:
		c.Alerts = append(c.Alerts, "rolled back: "+st.Rollout.Reason)
	}
	if st.Rollout.Forced {
		c.Alerts = append(c.Alerts, "forced past a failed gate: "+st.Rollout.ForceReason)
	}
	return c, nil
}

// imageData is one label: its versions and rollouts.
type imageData struct {
	Label    string
	Versions []rollout.Version
	Next     string
	Rollouts []rollout.Rollout
}

func (d imageData) title() (string, string) { return d.Label, "images" }

func (h *Handler) imagePage(w http.ResponseWriter, r *http.Request, s *session) error {
	label := r.PathValue("label")
	vs, next, err := h.svc.Versions(r.Context(), label, rollout.Page{After: r.URL.Query().Get("after"), Limit: 50})
	if err != nil {
		return err
	}
	d := imageData{Label: label, Versions: vs, Next: next}
	if s.id.IsAdmin() {
		if d.Rollouts, _, err = h.svc.ListRollouts(r.Context(), label, nil, rollout.Page{Limit: 20}); err != nil {
			return err
		}
	}
	h.render(w, r, http.StatusOK, "image", s, d)
	return nil
}
