package diff_test

import (
	"bytes"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/diff/difftest"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// BenchmarkCompare1M measures a diff end to end as `imagegate diff -o json`
// runs it: decode two snapshots of 1,000,000 entries each from JSON bytes
// (concurrently, as LoadPair does), compare them, write the JSON report.
// The acceptance target is under 2 s and 1 GB on two cores.
func BenchmarkCompare1M(b *testing.B) {
	oldJSON, newJSON := encodePair(b, difftest.OneMillion)
	b.SetBytes(int64(len(oldJSON) + len(newJSON)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		var (
			wg       sync.WaitGroup
			old, new *snapshot.Snapshot
			errOld   error
		)
		wg.Go(func() { old, errOld = snapshot.Decode(bytes.NewReader(oldJSON)) })
		new, err := snapshot.Decode(bytes.NewReader(newJSON))
		wg.Wait()
		if err != nil || errOld != nil {
			b.Fatal(err, errOld)
		}
		r := diff.Compare(old, new, nil)
		if err := r.Write(io.Discard, "json"); err != nil {
			b.Fatal(err)
		}
		if !r.Failed() {
			b.Fatal("the synthetic pair has removals; it must fail")
		}
	}
	// CPU seconds per run tell the cost apart from waiting for a shared
	// machine's cores; on two idle cores wall time is about half of it.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func encodePair(tb testing.TB, size difftest.Size) (oldJSON, newJSON []byte) {
	tb.Helper()
	old, new := difftest.Pair(size)
	var o, n bytes.Buffer
	if err := snapshot.Encode(&o, old); err != nil {
		tb.Fatal(err)
	}
	if err := snapshot.Encode(&n, new); err != nil {
		tb.Fatal(err)
	}
	return o.Bytes(), n.Bytes()
}

// The synthetic pair itself is checked small, so that the benchmark
// measures a diff that finds what it should.
func TestSyntheticPair(t *testing.T) {
	size := difftest.Size{Packages: 2000, Runtimes: 3, ModulesPerRuntime: 500, Tools: 100, ChangeRate: 0.05}
	oldJSON, newJSON := encodePair(t, size)
	old, err := snapshot.Decode(bytes.NewReader(oldJSON))
	if err != nil {
		t.Fatal(err)
	}
	new, err := snapshot.Decode(bytes.NewReader(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	r := diff.Compare(old, new, nil)
	entries := size.Entries()
	if n := len(r.Changes); n < entries/50 || n > entries/10 {
		t.Errorf("%d changes among %d entries at a 5%% change rate", n, entries)
	}
	for _, class := range []string{diff.ClassAdded, diff.ClassRemoved, diff.ClassUpgraded, diff.ClassDowngraded, diff.ClassBroken} {
		if r.Summary.Classes[class] == 0 {
			t.Errorf("no %s change in the synthetic pair: %v", class, r.Summary.Classes)
		}
	}
	if again := diff.Compare(old, old, nil); len(again.Changes) != 0 || again.Failed() {
		t.Errorf("a snapshot compared with itself has %d changes", len(again.Changes))
	}
}
