package ui

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Live updates: a page's "live" block, re-rendered on the server every
// LiveInterval and sent as a Server-Sent Event when it changed; the
// script swaps it in (static/ui.js). Without the script the page is
// the same, as of its load.

func (h *Handler) imagesLive(w http.ResponseWriter, r *http.Request, s *session) error {
	return h.stream(w, r, s, "images", func() (any, error) { return h.images(r, s) })
}

func (h *Handler) rolloutLive(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	return h.stream(w, r, s, "rollout", func() (any, error) {
		rv, waiting, asOf, err := h.rolloutState(r.Context(), id)
		if err != nil {
			return nil, err
		}
		return rolloutData{R: rv, Waiting: waiting, StatusAsOf: asOf, Actions: actions(rv.State)}, nil
	})
}

// stream sends page's live block whenever it changes, until the client
// goes away or the session ends (logout, revoked token).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, s *session, page string, data func() (any, error)) error {
	rc := http.NewResponseController(w)
	// The server's write timeout is for requests, not for a stream.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", h.live.Milliseconds())
	if err := rc.Flush(); err != nil {
		return nil
	}
	t := time.NewTicker(h.live)
	defer t.Stop()
	last := ""
	for {
		d, err := data()
		if err != nil {
			h.log.Warn("dashboard stream", "page", page, "err", err)
			return nil
		}
		frag, err := h.fragment(page, s, d)
		if err != nil {
			h.log.Error("dashboard stream", "page", page, "err", err)
			return nil
		}
		if frag != last {
			last = frag
			var b strings.Builder
			b.WriteString("event: update\n")
			for line := range strings.SplitSeq(frag, "\n") {
				b.WriteString("data: ")
				b.WriteString(line)
				b.WriteString("\n")
			}
			b.WriteString("\n")
			if _, err := w.Write([]byte(b.String())); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-t.C:
		}
		if _, err := h.session(r); err != nil {
			fmt.Fprint(w, "event: ended\ndata: \n\n")
			rc.Flush()
			return nil
		}
	}
}
