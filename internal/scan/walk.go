package scan

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/imagegate/imagegate/internal/scan/python"
	"github.com/imagegate/imagegate/internal/scan/runtimes"
	"github.com/imagegate/imagegate/internal/source"
)

// Finder recognises installations while the scan walks the image once.
// python.Finder and runtimes.Finder implement it.
type Finder interface {
	// Visit is called for each directory the walk reaches, with its path
	// inside the image and its entries, from one goroutine at a time. It
	// returns true to keep the walk out of dir's subdirectories (e.g. a
	// Python standard library that the finder reads itself).
	Visit(dir string, entries []fs.DirEntry) (prune bool)
}

var (
	_ Finder = (*python.Finder)(nil)
	_ Finder = (*runtimes.Finder)(nil)
)

// maxWalkDepth bounds discovery. Installations sit at a bounded depth
// (/opt/hostedtoolcache/Python/3.7.16/x64/lib/python3.7 is 7 levels down,
// ~/.nvm/versions/node/v20.1.0/bin 6), and the bound keeps a scan of a whole
// machine from reading every file of every cache and checkout on it.
const maxWalkDepth = 9

// skipNames are directories that never hold an installation prefix but can
// hold millions of entries.
var skipNames = map[string]bool{
	".git": true, "node_modules": true, "__pycache__": true, ".cache": true,
	"site-packages": true, "dist-packages": true,
}

// hostSkip are the pseudo and volatile filesystems of a running machine.
var hostSkip = map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/run": true, "/tmp": true, "/var/tmp": true, "/lost+found": true}

// walk visits every directory of the image down to maxWalkDepth, calling each
// finder's Visit with in-image paths, never following symbolic links. Reading
// directories is spread over a few goroutines because a cold cache makes the
// walk wait on the disk; Visit calls are serialised.
func walk(ctx context.Context, t *source.Tree, finders []Finder) error {
	type job struct {
		dir   string
		depth int
	}
	var (
		mu      sync.Mutex // serialises Visit calls and the queue
		cond    = sync.NewCond(&mu)
		queue   = []job{{"/", 0}}
		pending = 1
		wg      sync.WaitGroup
	)
	isHost := t.Dir == "/"
	worker := func() {
		defer wg.Done()
		for {
			mu.Lock()
			for len(queue) == 0 && pending > 0 {
				cond.Wait()
			}
			if pending == 0 {
				mu.Unlock()
				return
			}
			j := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			mu.Unlock()

			var children []job
			if ctx.Err() == nil {
				entries, err := readDir(t, j.dir)
				if err == nil {
					mu.Lock()
					prune := false
					for _, f := range finders {
						if f.Visit(j.dir, entries) {
							prune = true
						}
					}
					mu.Unlock()
					if !prune && j.depth < maxWalkDepth {
						for _, e := range entries {
							if !e.IsDir() || skipNames[e.Name()] {
								continue
							}
							child := path.Join(j.dir, e.Name())
							if isHost && hostSkip[child] {
								continue
							}
							children = append(children, job{child, j.depth + 1})
						}
					}
				}
			}
			mu.Lock()
			// Finders must not depend on the visiting order: with several
			// workers it differs from run to run. Popping roughly in name
			// order keeps the walk depth-first and its queue short.
			slices.Reverse(children)
			queue = append(queue, children...)
			pending += len(children) - 1
			cond.Broadcast()
			mu.Unlock()
		}
	}
	const workers = 4
	wg.Add(workers)
	for range workers {
		go worker()
	}
	wg.Wait()
	return ctx.Err()
}

// readDir lists a directory the walk reached, which has no link on its
// way: on disk it is read directly, without resolving its path again.
func readDir(t *source.Tree, dir string) ([]fs.DirEntry, error) {
	if t.Dir == "" {
		return t.ReadDir(dir)
	}
	return os.ReadDir(filepath.Join(t.Dir, dir))
}
