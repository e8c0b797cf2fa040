package main

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestScanRemovesTempDirOnBrokenPipe is `imagegate scan docker-archive:X
// -v -o json 2>&1 | head -1`: the reader goes away after the first line,
// which the scan logs once the image is extracted, and the extraction
// directory must still be removed.
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
	for _, exec := range []string{"none", "local"} {
		t.Run(exec, func(t *testing.T) {
			temp := t.TempDir()
			cmd := helperCommand(t, "scan", "docker-archive:"+archive, "-v", "-o", "json", "--exec", exec, "--temp-dir", temp)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = pw, pw
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatalf("no first line: %v", err)
			}
			pr.Close()
			cmd.Wait()
			t.Logf("first line: %s, exit: %v", line, cmd.ProcessState)
			left, err := os.ReadDir(temp)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("left in --temp-dir after the reader went away: %v", left)
			}
		})
	}
}
