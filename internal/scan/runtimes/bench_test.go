package runtimes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/source"
)

// BenchmarkParts reports the time the parts check of each runtime kind of
// this machine takes, statically and with execution, per installation:
//
//	go test -run '^$' -bench Parts -benchtime 3x ./internal/scan/runtimes/
func BenchmarkParts(b *testing.B) {
	for _, tc := range []struct {
		kind string
		dir  string // a tool folder holding the installations
		only string // the directory the walk visits, "" for all of dir
	}{
		{runtimes.KindJava, "/usr/lib/jvm", ""},
		{runtimes.KindGo, "/usr/local", "/go"},
		{runtimes.KindNode, "/", "/usr/bin"},
	} {
		for _, mode := range modes() {
			b.Run(tc.kind+"/"+mode.name, func(b *testing.B) {
				if _, err := os.Stat(tc.dir); err != nil {
					b.Skip(err)
				}
				installs := 0
				for b.Loop() {
					tg := &source.Tree{Dir: tc.dir, RootFS: tc.dir == "/"}
					if mode.execute {
						tg.Runner = sandbox.NewLocal(tc.dir)
					}
					f := runtimes.NewFinder(runtimes.Options{})
					if tc.only != "" {
						entries, err := os.ReadDir(tc.dir + tc.only)
						if err != nil {
							b.Fatal(err)
						}
						f.Visit(tc.only, entries)
					} else {
						mustWalk(b, tg, f, "/")
					}
					rs, _, err := f.Collect(context.Background(), tg)
					if err != nil {
						b.Fatal(err)
					}
					installs = 0
					for _, r := range rs {
						if r.Kind == tc.kind {
							installs++
						}
					}
				}
				if installs == 0 {
					b.Skipf("no %s installation here", tc.kind)
				}
				b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(installs)/float64(time.Millisecond), "ms/install")
			})
		}
	}
}
