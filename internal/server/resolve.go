package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/rollout"
)

// resolve is the hot path (every CI job calls it): no generic middleware,
// no query map, a pooled buffer for the hand-written JSON answer.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	p, err := s.tokens.authenticate(r.Context(), r.Header.Get("Authorization"))
	if err == nil && !ResolveAny.allows(p) {
		err = fmt.Errorf("role %q may not resolve: %w", p.Role, rollout.ErrForbidden)
	}
	if err == nil {
		err = s.limiter.allow(p.TokenID, true)
	}
	var org, label, run string
	if err == nil {
		org, label, run, err = resolveParams(r.URL.RawQuery)
	}
	if err == nil {
		err = checkResolve(org, label, run)
	}
	if err == nil && p.Org != "" {
		err = p.mayActFor(org)
	}
	var res rollout.Resolution
	if err == nil {
		res, err = s.svc.Resolve(r.Context(), org, label, run)
	}
	if err != nil {
		_, code := api.Classify(err)
		s.metrics.resolves.WithLabelValues("none", code).Inc()
		s.writeError(w, r, err)
		return
	}
	s.metrics.resolves.WithLabelValues(res.Reason, "ok").Inc()

	bp := bufPool.Get().(*[]byte)
	b := appendResolution((*bp)[:0], res)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

var (
	jsonContentType = []string{"application/json"}
	bufPool         = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// resolveParams reads org, label and run from a raw query without building
// a map; org and label are required.
func resolveParams(raw string) (org, label, run string, err error) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(v, "%+") {
			if v, err = url.QueryUnescape(v); err != nil {
				return "", "", "", fmt.Errorf("query parameter %s: %v: %w", k, err, rollout.ErrInvalid)
			}
		}
		switch k {
		case "org":
			org = v
		case "label":
			label = v
		case "run":
			run = v
		}
	}
	if org == "" || label == "" {
		return "", "", "", fmt.Errorf("resolve needs ?org=ORG&label=LABEL (and &run=RUN_ID for run affinity): %w", rollout.ErrInvalid)
	}
	return org, label, run, nil
}

// checkResolve applies the input grammar to resolve's parameters (the
// route does not pass through serve's checkInput).
func checkResolve(org, label, run string) error {
	if err := rollout.CheckName("query parameter org", org); err != nil {
		return err
	}
	if err := rollout.CheckName("query parameter label", label); err != nil {
		return err
	}
	if run != "" {
		return rollout.CheckKey("query parameter run", run, rollout.MaxKey)
	}
	return nil
}

// appendResolution encodes res exactly as encoding/json would.
func appendResolution(b []byte, res rollout.Resolution) []byte {
	b = append(b, `{"label":`...)
	b = appendJSONString(b, res.Label)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, res.Version)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, res.Reason)
	if res.RolloutID != "" {
		b = append(b, `,"rolloutId":`...)
		b = appendJSONString(b, res.RolloutID)
	}
	b = append(b, `,"ring":`...)
	b = strconv.AppendInt(b, int64(res.Ring), 10)
	if res.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, res.Detail)
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s like encoding/json (HTML-safe escaping,
// invalid UTF-8 replaced, U+2028/2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
