package snapshot_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/snapshot"
)

func sample() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Source:    "dir:/x",
		ScannedAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		Exec:      "none",
		Packages: []snapshot.Package{
			{Type: "deb", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64"},
			{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u2", Arch: "amd64"},
		},
		Runtimes: []snapshot.Runtime{
			{Kind: "python", Version: "3.8.18", Path: "/b", Modules: []snapshot.Module{{Name: "ssl", Status: "ok"}, {Name: "abc", Status: "ok"}}},
			{Kind: "python", Version: "3.7.16", Path: "/a", Modules: []snapshot.Module{{Name: "sqlite3", Status: "broken", Error: "No module named '_sqlite3'"}}},
		},
		Tools: []snapshot.Tool{{Name: "git", Path: "/usr/bin/git"}, {Name: "curl", Path: "/usr/bin/curl"}},
	}
}

func TestEncodeIsDeterministicAndRoundTrips(t *testing.T) {
	a, b := sample(), sample()
	// Same content in another order must encode to the same bytes.
	b.Packages[0], b.Packages[1] = b.Packages[1], b.Packages[0]
	b.Tools[0], b.Tools[1] = b.Tools[1], b.Tools[0]
	var ba, bb bytes.Buffer
	if err := snapshot.Encode(&ba, a); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Encode(&bb, b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ba.String(), bb.String()); diff != "" {
		t.Fatalf("encoding depends on input order (-a +b):\n%s", diff)
	}
	got, err := snapshot.Decode(&ba)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Fatalf("round trip changed the snapshot (-want +got):\n%s", diff)
	}
	if got.Runtimes[0].Version != "3.7.16" || got.Packages[0].Name != "libsqlite3-0" {
		t.Fatalf("lists not sorted: %+v", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty input"},
		{"not json", "hello", "invalid JSON"},
		{"no schema", `{"source":"x"}`, `no "schema" field`},
		{"other schema", `{"schema":"imagegate/snapshot/v9"}`, `schema "imagegate/snapshot/v9"`},
		{"wrong type", `{"schema":"imagegate/snapshot/v1","packages":{}}`, `field "packages"`},
		{"trailing", `{"schema":"imagegate/snapshot/v1"} {}`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snapshot.Decode(strings.NewReader(tc.in))
			if !errors.Is(err, snapshot.ErrSchema) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode(%q) error = %v, want ErrSchema mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	s, err := snapshot.Decode(strings.NewReader(`{"schema":"imagegate/snapshot/v1","futureField":1,"tools":[{"name":"git","path":"/usr/bin/git","newer":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tools) != 1 || s.Tools[0].Name != "git" {
		t.Fatalf("tools = %+v", s.Tools)
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	_ = snapshot.Encode(&buf, sample())
	f.Add(buf.Bytes())
	f.Add([]byte(`{"schema":"imagegate/snapshot/v1","runtimes":[{"modules":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := snapshot.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode again to the same thing.
		var out bytes.Buffer
		if err := snapshot.Encode(&out, s); err != nil {
			t.Fatal(err)
		}
		again, err := snapshot.Decode(&out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(s, again); diff != "" {
			t.Fatalf("not stable:\n%s", diff)
		}
	})
}
