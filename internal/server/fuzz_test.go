package server_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/server"
)

// FuzzAppendResolution: the hand-written encoder of the hot path produces
// exactly what encoding/json produces, for any strings.
func FuzzAppendResolution(f *testing.F) {
	f.Add("ubuntu-22.04", "20190612.1", "rollout", "r-1", 2, "ring 2 of rollout r-1")
	f.Add("a\"b\\c", "<v>&", "pin", "", 0, "\u2028\x00\xff\n\t")
	f.Fuzz(func(t *testing.T, label, version, reason, id string, ring int, detail string) {
		res := rollout.Resolution{Label: label, Version: version, Reason: reason, RolloutID: id, Ring: ring, Detail: detail}
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		got := server.AppendResolution(nil, res)
		if diff := cmp.Diff(string(want)+"\n", string(got)); diff != "" {
			t.Fatalf("encoding differs from encoding/json (-want +got):\n%s", diff)
		}
	})
}

// FuzzResolveParams: any raw query is either rejected as invalid or gives
// the same org, label and run as net/url's parser (first value wins there,
// last here; seeds avoid repeats, and repeats are compared loosely).
func FuzzResolveParams(f *testing.F) {
	f.Add("org=a&label=b&run=c")
	f.Add("label=ubuntu%2022.04&org=a+b")
	f.Add("org=%zz&label=x")
	f.Add("org=&label=x")
	f.Fuzz(func(t *testing.T, raw string) {
		org, label, run, err := server.ResolveParams(raw)
		if err != nil {
			if !errors.Is(err, rollout.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if org == "" || label == "" {
			t.Fatalf("accepted empty org or label from %q", raw)
		}
		q, perr := url.ParseQuery(raw)
		if perr != nil || strings.Contains(raw, ";") {
			return // net/url rejects what we tolerate
		}
		if len(q["org"]) == 1 && len(q["label"]) == 1 && len(q["run"]) <= 1 {
			if org != q.Get("org") || label != q.Get("label") || run != q.Get("run") {
				t.Fatalf("%q: got %q %q %q, net/url says %q %q %q", raw, org, label, run, q.Get("org"), q.Get("label"), q.Get("run"))
			}
		}
	})
}
