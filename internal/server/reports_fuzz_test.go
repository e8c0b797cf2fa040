package server_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

// FuzzDecodeReport: any body either decodes to a request that survives a
// JSON round trip unchanged, or is refused as invalid; never a panic, and
// a decoded request is then accepted or refused by CheckReport alone.
func FuzzDecodeReport(f *testing.F) {
	for _, s := range []string{
		`{"label":"ubuntu-22.04","text":"ModuleNotFoundError: No module named '_sqlite3'","jobId":"j1","version":"v2","org":"org-a"}`,
		`{"label":"u","text":"Traceback (most recent call last):\n  File \"x.py\", line 1\nImportError: x"}`,
		`{"label":"u","text":"a\u0000b"}`, `{"label":1}`, `{"text":"x","colour":"red"}`, `{} {}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := server.DecodeReport(body)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := server.DecodeReport(b)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", b, err)
		}
		if diff := cmp.Diff(req, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		r := rollout.Report{Org: "org-a", Label: req.Label, Version: req.Version, JobID: req.JobID, Text: req.Text}
		if err := rollout.CheckReport(r); err != nil && !errors.Is(err, rollout.ErrInvalid) {
			t.Fatalf("CheckReport: %v does not wrap ErrInvalid", err)
		}
	})
}
