package source_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// mkTree makes files (empty) and directories (names ending in /) under a
// fresh directory.
func mkTree(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		p := filepath.Join(root, e)
		if e[len(e)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestOpenDirRootFSByContent: a root filesystem is recognised by what one
// has, not by a bin/ that every installation prefix has too.
func TestOpenDirRootFSByContent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		want    bool
	}{
		{"python prefix", []string{"bin/python3.11", "lib/python3.11/os.py", "include/python3.11/patchlevel.h", "share/man/"}, false},
		{"jdk", []string{"bin/java", "lib/libjvm.so", "conf/", "release"}, false},
		{"conda environment", []string{"bin/python", "etc/conda/", "conda-meta/history", "lib/"}, false},
		{"tool cache", []string{"Python/3.11.7/x64/bin/python3", "Python/3.11.7/x64.complete"}, false},
		{"os-release", []string{"etc/os-release"}, true},
		{"merged-usr os-release", []string{"usr/lib/os-release", "bin/sh"}, true},
		{"dynamic loader", []string{"lib64/ld-linux-x86-64.so.2", "bin/sh"}, true},
		{"musl loader", []string{"lib/ld-musl-x86_64.so.1"}, true},
		{"libc", []string{"lib/x86_64-linux-gnu/libc.so.6", "bin/"}, true},
		{"etc and usr", []string{"etc/", "usr/bin/"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := mkTree(t, tc.entries...)
			tree, err := source.Open(context.Background(), "dir:"+root, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tree.RootFS != tc.want {
				t.Errorf("RootFS = %v, want %v", tree.RootFS, tc.want)
			}
		})
	}
}

// TestOriginFromInsideTree: the answer depends on the in-image path and on
// markers inside the tree, never on where the tree lives on this machine.
func TestOriginFromInsideTree(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		prefix  string
		want    string
	}{
		{"toolcache path", []string{"opt/hostedtoolcache/Python/3.11.7/x64/bin/"}, "/opt/hostedtoolcache/Python/3.11.7/x64", snapshot.OriginToolcache},
		{"complete marker", []string{"Python/3.11.7/x64/bin/", "Python/3.11.7/x64.complete"}, "/Python/3.11.7/x64", snapshot.OriginToolcache},
		{"pyenv path", []string{"root/.pyenv/versions/3.9.18/bin/"}, "/root/.pyenv/versions/3.9.18", snapshot.OriginPyenv},
		{"conda-meta", []string{"opt/conda/conda-meta/"}, "/opt/conda", snapshot.OriginConda},
		{"nothing", []string{"3.9.18/bin/"}, "/3.9.18", snapshot.OriginSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The same tree in two places, one of them under a path that
			// looks like a pyenv root, answers the same.
			var got []string
			for _, under := range []string{"", ".pyenv/versions/x"} {
				root := mkTree(t, prefixed(under, tc.entries)...)
				tree, err := source.Open(context.Background(), "dir:"+filepath.Join(root, under), source.Options{})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, tree.Origin(tc.prefix))
			}
			if got[0] != tc.want || got[1] != tc.want {
				t.Errorf("Origin(%s) = %q, want %q in both places", tc.prefix, got, tc.want)
			}
		})
	}
}

func prefixed(dir string, entries []string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = filepath.Join(dir, e)
		if e[len(e)-1] == '/' {
			out[i] += "/"
		}
	}
	return out
}

func TestOriginOfPath(t *testing.T) {
	for in, want := range map[string]string{
		"/root/.pyenv/versions/3.9.18":           snapshot.OriginPyenv,
		"/opt/hostedtoolcache/Python/3.8.18/x64": snapshot.OriginToolcache,
		"/home/u/.nvm/versions/node/v20.1.0":     snapshot.OriginNVM,
		"/root/.sdkman/candidates/java/17":       snapshot.OriginSDKMAN,
		"/usr":                                   snapshot.OriginSource,
		"":                                       snapshot.OriginSource,
	} {
		if got := source.OriginOfPath(in); got != want {
			t.Errorf("OriginOfPath(%q) = %q, want %q", in, got, want)
		}
	}
}
