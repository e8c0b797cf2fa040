package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestScanRemovesTempDirOnBrokenPipe is `imagegate scan docker-archive:X
// -v -o json 2>&1 | head -0`: the reader is gone before the scan writes
// anything, so its first write (the log line saying the image is
// extracted) meets a broken pipe while the extraction directory exists,
// and that directory must still be removed.
func TestScanRemovesTempDirOnBrokenPipe(t *testing.T) {
	img, err := random.Image(4<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	tag, err := name.NewTag("random:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	temp := t.TempDir()
	// --exec local extracts the image (--exec none keeps it in memory).
	cmd := helperCommand(t, "scan", "docker-archive:"+archive, "-v", "-o", "json", "--exec", "local", "--temp-dir", temp)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	cmd.Wait()
	left, err := os.ReadDir(temp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left in --temp-dir after the reader went away (%v): %v", cmd.ProcessState, left)
	}
}
