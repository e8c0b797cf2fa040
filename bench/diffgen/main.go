// Command diffgen writes the two synthetic snapshots that bench/diff-1m
// compares: by default 1,000,000 entries each (300k OS packages, 50 Python
// runtimes with 14k modules each, 2k tools) with about 1% changed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imagegate/imagegate/internal/diff/difftest"
	"github.com/imagegate/imagegate/internal/snapshot"
)

func main() {
	size := difftest.OneMillion
	dir := flag.String("dir", ".", "folder to write old.json and new.json into")
	flag.IntVar(&size.Packages, "packages", size.Packages, "OS packages per snapshot")
	flag.IntVar(&size.Runtimes, "runtimes", size.Runtimes, "Python runtimes per snapshot")
	flag.IntVar(&size.ModulesPerRuntime, "modules", size.ModulesPerRuntime, "stdlib modules per runtime")
	flag.IntVar(&size.Tools, "tools", size.Tools, "tools per snapshot")
	flag.Float64Var(&size.ChangeRate, "change", size.ChangeRate, "share of entries that differ")
	flag.Parse()
	if err := run(*dir, size); err != nil {
		fmt.Fprintln(os.Stderr, "diffgen:", err)
		os.Exit(1)
	}
}

func run(dir string, size difftest.Size) error {
	old, new := difftest.Pair(size)
	for name, s := range map[string]*snapshot.Snapshot{"old.json": old, "new.json": new} {
		if err := write(filepath.Join(dir, name), s); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s/old.json and %s/new.json, %d entries each\n", dir, dir, size.Entries())
	return nil
}

func write(path string, s *snapshot.Snapshot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := snapshot.Encode(w, s); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
