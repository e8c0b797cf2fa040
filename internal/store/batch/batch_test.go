package batch_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/imagegate/imagegate/internal/store/batch"
)

type item struct {
	n     int
	group int // set by write: which group wrote it
}

// Concurrent calls are written in groups no larger than MaxSize, every
// call exactly once, each told its group's error.
func TestGroupWritesEveryCallOnceWithinMaxSize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	fail := errors.New("disk full")
	write := func(_ context.Context, items []*item) error {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, it := range items {
			total += it.n
			it.group = len(sizes) + 1
		}
		sizes = append(sizes, total)
		for _, it := range items {
			if it.n == 7 {
				return fail
			}
		}
		return nil
	}
	g := batch.NewGroup(write, func(it *item) int { return it.n }, batch.Options{MaxSize: 10})
	defer g.Close()
	const calls = 200
	items := make([]*item, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		items[i] = &item{n: 1 + i%4}
		if i == 100 {
			items[i].n = 7
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Do(context.Background(), items[i])
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i, s := range sizes {
		if s > 10 {
			t.Errorf("group %d holds size %d, over MaxSize 10", i+1, s)
		}
	}
	for i, it := range items {
		if it.group == 0 {
			t.Fatalf("call %d was never written", i)
		}
		failed := false
		for _, o := range items {
			if o.group == it.group && o.n == 7 {
				failed = true
			}
		}
		if failed != errors.Is(errs[i], fail) {
			t.Errorf("call %d: error %v, its group failed: %v", i, errs[i], failed)
		}
	}
	if len(sizes) >= calls {
		t.Logf("no two calls shared a group (%d groups): the machine ran them one by one", len(sizes))
	}
}

func TestGroupClosed(t *testing.T) {
	g := batch.NewGroup(func(context.Context, []*item) error { return nil }, nil, batch.Options{})
	g.Close()
	if err := g.Do(context.Background(), &item{n: 1}); !errors.Is(err, batch.ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
}
