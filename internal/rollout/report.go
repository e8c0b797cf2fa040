package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a user report (POST /api/v1/reports), refused with ErrInvalid
// beyond them rather than cut: a report is typed or pasted by a person,
// who can shorten it, and a silently truncated paste would sign as a
// different error.
const (
	// MaxReportText bounds the text: twice what a runner's error text
	// keeps (MaxErrorText), room for a traceback and a sentence about it.
	MaxReportText = 16 << 10
	// MaxReportField bounds label, version, org and job id.
	MaxReportField = 256
)

// Report is an organisation's complaint about an image: free text (an
// error line or a log tail pasted from a failed job, a sentence) and, when
// the user knows them, the job and the version it ran.
type Report struct {
	ID      int64  `json:"id"` // assigned by the store
	Org     string `json:"org"`
	Label   string `json:"label"`
	Version string `json:"version,omitempty"`
	JobID   string `json:"jobId,omitempty"`
	Text    string `json:"text"`
	// Signature and Template are the text's signature (see Reports.Report):
	// empty when the text yields none.
	Signature string `json:"signature,omitempty"`
	Template  string `json:"template,omitempty"`
	// Known is true when the signature was one the miner already had from
	// job events; a report never adds one.
	Known     bool      `json:"known"`
	Actor     string    `json:"actor"` // who sent it (an org token, or an admin on its behalf)
	CreatedAt time.Time `json:"createdAt"`
	// IdempotencyKey is the Idempotency-Key the report was sent with, ""
	// for none: the sender's name for this one report, scoped to Org, so
	// that a retry of the same request stores nothing new (see
	// ReportStore.AddReport). Not shown in the API: it is the sender's.
	IdempotencyKey string `json:"-"`
}

// ReportFilter narrows ListReports; empty fields match everything.
type ReportFilter struct {
	Label     string
	Signature string
}

// Escalation is the record that user reports about one signature were
// escalated for one rollout (RolloutID "" when no running rollout's
// version carried the signature): its Key makes the escalation happen once.
type Escalation struct {
	// Key is EscalationKey(label, signature, rolloutID), unique.
	Key       string    `json:"key"`
	Label     string    `json:"label"`
	Signature string    `json:"signature"`
	Template  string    `json:"template,omitempty"`
	RolloutID string    `json:"rolloutId,omitempty"`
	Version   string    `json:"version,omitempty"`
	Orgs      int       `json:"orgs"`   // distinct reporting orgs when it escalated
	Action    string    `json:"action"` // EscalateHalt or EscalateAlert: what was done
	CreatedAt time.Time `json:"createdAt"`
}

// EscalationKey names the escalation of signature for a rollout of label;
// it is also the escalation alert's Alert.ID, so the outbox keeps one alert
// per target however often the escalation is retried.
func EscalationKey(label, signature, rolloutID string) string {
	if rolloutID == "" {
		rolloutID = "-"
	}
	return "report/" + label + "/" + signature + "/" + rolloutID
}

// ReportStore keeps user reports and the escalations they caused.
//
// Contract (besides Store's): AddReport is durable when it returns. It is
// idempotent on (Org, IdempotencyKey) when the key is set, also between
// replicas racing on one database (a unique constraint decides, not a
// read first): of several calls with one org and key exactly one stores a
// report, and every call returns that report. Without a key two identical
// reports are two reports (distinct-org counting makes such a repeat
// harmless to escalation, not to the list). A key lives as long as its
// report: pruning a report forgets its key. Reports change no
// control-plane state: they write no audit entry and do not bump
// Generation.
// AddEscalation is the one write that decides, so it is audited, and it is
// idempotent on Key also between replicas racing on one database: of
// several callers with one Key exactly one gets true and writes its audit
// entry. Times are kept to the microsecond and come back in UTC.
type ReportStore interface {
	// AddReport stores r (ID assigned; CreatedAt defaults to now) and
	// returns it as stored and true. When r.IdempotencyKey is set and
	// r.Org already has a report with that key it stores nothing: it
	// returns that report and false when its ReportFingerprint is r's (a
	// retry; the stored CreatedAt and Actor stand), and an error wrapping
	// ErrKeyReused (ErrReportKeyReused) when not. ErrInvalid for
	// CheckReport's refusals, before the database is touched.
	AddReport(ctx context.Context, r Report) (Report, bool, error)
	// ReportOrgs returns the distinct orgs that reported signature on
	// label at or after since, sorted. An empty signature matches nothing.
	ReportOrgs(ctx context.Context, label, signature string, since time.Time) ([]string, error)
	// ListReports pages through reports, newest first.
	ListReports(ctx context.Context, f ReportFilter, p Page) ([]Report, string, error)
	// AddEscalation records e with audit in one transaction and returns
	// true; when an escalation with e.Key exists it changes nothing, writes
	// no audit entry and returns false. ErrInvalid without key, label or
	// signature.
	AddEscalation(ctx context.Context, e Escalation, audit AuditEntry) (bool, error)
	// GetEscalation returns the escalation with key; ErrNotFound when none.
	GetEscalation(ctx context.Context, key string) (Escalation, error)
}

// CheckReport is the refusal every store and the service make before a
// report is stored: org, label and a non-blank text are required, every
// field is bounded (MaxReportText, MaxReportField), the text is UTF-8
// without NUL bytes (PostgreSQL text refuses them), the short fields are
// one printable line.
func CheckReport(r Report) error {
	switch {
	case r.Org == "" || r.Label == "":
		return fmt.Errorf("report: %w: org and label are required", ErrInvalid)
	case strings.TrimSpace(r.Text) == "":
		return fmt.Errorf("report on %s: %w: the text is empty; paste the error from the failed job's log", r.Label, ErrInvalid)
	case len(r.Text) > MaxReportText:
		return fmt.Errorf("report on %s: %w: the text has %d bytes, at most %d are accepted; paste the last lines of the log", r.Label, ErrInvalid, len(r.Text), MaxReportText)
	case !utf8.ValidString(r.Text) || strings.IndexByte(r.Text, 0) >= 0:
		return fmt.Errorf("report on %s: %w: the text must be UTF-8 without NUL bytes", r.Label, ErrInvalid)
	}
	for _, f := range []struct{ name, v string }{{"org", r.Org}, {"label", r.Label}, {"version", r.Version}, {"jobId", r.JobID}} {
		if len(f.v) > MaxReportField || strings.IndexFunc(f.v, notPrintable) >= 0 || !utf8.ValidString(f.v) {
			return fmt.Errorf("report: %w: %s %.40q: want at most %d printable bytes", ErrInvalid, f.name, f.v, MaxReportField)
		}
	}
	// The grammar every other endpoint applies (names.go) holds here too.
	if err := checkNames("report", "org", r.Org, "label", r.Label); err != nil {
		return err
	}
	if r.Version != "" {
		if err := checkNames("report", "version", r.Version); err != nil {
			return err
		}
	}
	if r.JobID != "" {
		if err := CheckKey("jobId", r.JobID, MaxKey); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	if err := CheckText("text", r.Text, MaxReportText); err != nil {
		return fmt.Errorf("report on %s: %w", r.Label, err)
	}
	if r.IdempotencyKey != "" {
		if err := CheckIdempotencyKey(r.IdempotencyKey); err != nil {
			return fmt.Errorf("report on %s: %w", r.Label, err)
		}
	}
	return nil
}

// CheckIdempotencyKey refuses an Idempotency-Key that is not a key of the
// input grammar: 1 to MaxKey bytes of visible ASCII (a UUID, a CI job id
// with a suffix). The value is opaque: a quoted form (the IETF draft's
// structured-field string) is kept with its quotes, so a client must send
// it the same way on every retry, as it must any key.
func CheckIdempotencyKey(key string) error {
	return CheckKey("Idempotency-Key", key, MaxKey)
}

// ReportFingerprint identifies what a report says — org, label, version,
// job id and text, the fields of the request — so that a retry under one
// idempotency key can be told from a different report under it. Who sent
// it, when, and what the server derived (signature) are not part of it: a
// retry from another token of the org, or a minute later, is the same
// report. Each field is length-prefixed, so no two reports share one by
// moving bytes between fields.
func ReportFingerprint(r Report) string {
	h := sha256.New()
	for _, f := range []string{r.Org, r.Label, r.Version, r.JobID, r.Text} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CheckEscalation is the refusal every store makes before AddEscalation
// touches its database.
func CheckEscalation(e Escalation) error {
	if e.Key == "" || e.Label == "" || e.Signature == "" {
		return fmt.Errorf("escalation %q: %w: key, label and signature are required", e.Key, ErrInvalid)
	}
	return nil
}

// PrepareReport checks r and fills its defaults, as every store's
// AddReport does first: CreatedAt now when zero, to the microsecond, in
// UTC (what a read returns).
func PrepareReport(r Report, now time.Time) (Report, error) {
	if err := CheckReport(r); err != nil {
		return r, err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	r.CreatedAt = r.CreatedAt.UTC().Truncate(time.Microsecond)
	return r, nil
}

// PrepareEscalation checks e and fills its defaults like PrepareReport.
func PrepareEscalation(e Escalation, now time.Time) (Escalation, error) {
	if err := CheckEscalation(e); err != nil {
		return e, err
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	return e, nil
}
