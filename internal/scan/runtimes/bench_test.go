package runtimes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// BenchmarkParts reports the time the parts check of each runtime kind
// takes, statically and with execution, per installation: this machine's
// JDKs, Go, Node.js, Perl and system essentials, and the Debian Ruby, PHP
// and real .NET runtime fixtures (root filesystems run chrooted):
//
//	go test -run '^$' -bench Parts -benchtime 3x ./internal/scan/runtimes/
func BenchmarkParts(b *testing.B) {
	host := func(dir string) func(testing.TB) (string, bool) {
		return func(testing.TB) (string, bool) { return dir, dir == "/" }
	}
	for _, tc := range []struct {
		kind string
		tree func(testing.TB) (dir string, rootFS bool)
		only string // the directory the walk visits, "" for all of the tree, "-" for none
	}{
		{runtimes.KindJava, host("/usr/lib/jvm"), ""},
		{runtimes.KindGo, host("/usr/local"), "/go"},
		{runtimes.KindNode, host("/"), "/usr/bin"},
		{runtimes.KindPerl, host("/"), "/usr/bin"},
		{runtimes.KindSystem, host("/"), "-"},
		{runtimes.KindRuby, func(tb testing.TB) (string, bool) { return rubyRootFS(tb, false), true }, ""},
		{runtimes.KindPHP, func(tb testing.TB) (string, bool) { return phpRootFS(tb, false), true }, ""},
		{runtimes.KindDotnetRuntime, func(tb testing.TB) (string, bool) { return dotnetToolFolder(tb, ""), false }, ""},
	} {
		for _, mode := range modes() {
			b.Run(tc.kind+"/"+mode.name, func(b *testing.B) {
				dir, rootFS := tc.tree(b)
				if _, err := os.Stat(dir); err != nil {
					b.Skip(err)
				}
				var runner source.Runner
				if mode.execute {
					runner = sandbox.NewLocal(dir)
					if rootFS && dir != "/" {
						testenv.Require(b, sandbox.Permitted() == nil, "needs chroot execution: %v", sandbox.Permitted())
						r, err := sandbox.NewChroot(dir, sandbox.ChrootOptions{})
						if err != nil {
							b.Fatal(err)
						}
						runner = r
					}
				}
				installs := 0
				for b.Loop() {
					tg := &source.Tree{Dir: dir, RootFS: rootFS, Runner: runner}
					f := runtimes.NewFinder(runtimes.Options{Kinds: []string{tc.kind}})
					switch tc.only {
					case "-":
					case "":
						mustWalk(b, tg, f, "/")
					default:
						entries, err := os.ReadDir(dir + tc.only)
						if err != nil {
							b.Fatal(err)
						}
						f.Visit(tc.only, entries)
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
