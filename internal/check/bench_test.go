package check_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// hostSnapshot is a snapshot the size of a full CI image: 3000 packages,
// 12 Python runtimes with their whole standard library, 2000 tools.
func hostSnapshot(b testing.TB) *snapshot.Snapshot {
	versions := []string{"2.7.18", "3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.2", "3.11.9", "3.12.3", "3.13.0", "3.12.4", "3.10.14"}
	var rts []snapshot.Runtime
	for i, v := range versions {
		origin := "toolcache"
		if i == 6 {
			origin = "os-package"
		}
		rt := pythonRuntime(b, v, "/opt/hostedtoolcache/Python/"+v+"/x64", origin)
		for len(rt.Modules) < 300 {
			rt.Modules = append(rt.Modules, snapshot.Module{Name: fmt.Sprintf("extra_%03d", len(rt.Modules)), Status: snapshot.StatusOK})
		}
		rts = append(rts, rt)
	}
	var tools []snapshot.Tool
	for i := range 2000 {
		t := snapshot.Tool{Name: fmt.Sprintf("tool-%04d", i), Path: fmt.Sprintf("/usr/bin/tool-%04d", i)}
		if i%20 == 0 {
			t.Version, t.Status = "1.2.3", "ok"
		}
		tools = append(tools, t)
	}
	s := snap(rts, tools...)
	for i := range 3000 {
		s.Packages = append(s.Packages, snapshot.Package{Type: "deb", Name: fmt.Sprintf("pkg-%04d", i), Version: "1.0-1", Arch: "amd64"})
	}
	s.Exec = "none"
	return s
}

// BenchmarkCheckHostSnapshot is `imagegate check snapshot.json` without
// execution: decode the snapshot, check it, write the table.
func BenchmarkCheckHostSnapshot(b *testing.B) {
	var buf bytes.Buffer
	if err := snapshot.Encode(&buf, hostSnapshot(b)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := snapshot.Decode(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		r, err := check.Run(context.Background(), s, check.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Write(io.Discard, "table"); err != nil {
			b.Fatal(err)
		}
	}
}
