package source_test

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/source"
)

// keptReader reads only what was kept: a read elsewhere fails, as a
// reader of the tables must never need to.
type keptReader []source.KeptPiece

func (k keptReader) ReadAt(p []byte, off int64) (int, error) {
	for _, pc := range k {
		if off >= pc.Off && off+int64(len(p)) <= pc.Off+int64(len(pc.Data)) {
			return copy(p, pc.Data[off-pc.Off:]), nil
		}
	}
	return 0, io.ErrUnexpectedEOF
}

// elfFacts is what the ELF readers of the scan (ldso, python) read.
func elfFacts(tb testing.TB, r io.ReaderAt) string {
	tb.Helper()
	f, err := elf.NewFile(r)
	if err != nil {
		tb.Fatalf("parse ELF: %v", err)
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		tb.Fatalf("DT_NEEDED: %v", err)
	}
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	syms, _ := f.DynamicSymbols()
	imported, _ := f.ImportedSymbols()
	var b bytes.Buffer
	b.WriteString(f.Class.String() + " " + f.Machine.String() + "\n")
	for _, p := range f.Progs {
		b.WriteString(p.Type.String() + "\n")
	}
	for _, s := range f.Sections {
		b.WriteString(s.Name + " " + s.Type.String() + "\n")
	}
	for _, n := range append(needed, runpath...) {
		b.WriteString("needs " + n + "\n")
	}
	for _, s := range syms {
		b.WriteString(s.Name + "@" + s.Version + " " + s.Library + "\n")
	}
	for _, s := range imported {
		b.WriteString("imports " + s.Name + "@" + s.Version + " " + s.Library + "\n")
	}
	return b.String()
}

// TestKeptELFTables streams this machine's ELF files (an executable, the
// C library with its symbol versions, the C++ library, Go's toolchain)
// in reads of several sizes and checks that what is kept answers every
// question the scan asks of them, with nothing else read, and that every
// kept byte is the file's.
func TestKeptELFTables(t *testing.T) {
	var files []string
	for _, pat := range []string{"/usr/bin/ls", "/lib/*-linux-gnu/libc.so.6", "/usr/lib/*-linux-gnu/libstdc++.so.6",
		filepath.Join(runtime.GOROOT(), "pkg/tool/*/compile")} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) < 2 {
		t.Skipf("too few ELF files on this machine: %v", files)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want := elfFacts(t, bytes.NewReader(body))
		for _, chunk := range []int{3, 4096, 256 << 10} {
			kept, err := source.Kept("usr/lib/x", body, chunk)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			var size int
			for _, p := range kept {
				if !bytes.Equal(p.Data, body[p.Off:p.Off+int64(len(p.Data))]) {
					t.Fatalf("%s (reads of %d): kept bytes at %d differ from the file's", file, chunk, p.Off)
				}
				size += len(p.Data)
			}
			t.Logf("%s (reads of %d): kept %d pieces, %d bytes", file, chunk, len(kept), size)
			if diff := cmp.Diff(want, elfFacts(t, keptReader(kept))); diff != "" {
				t.Errorf("%s (reads of %d): the kept tables answer differently (-file +kept):\n%s", file, chunk, diff)
			}
			if len(body) > 4<<20 && size > len(body)/4 {
				t.Errorf("%s: kept %d of %d bytes", file, size, len(body))
			}
		}
	}
}

// FuzzKept streams arbitrary contents, ELF-looking or not, in reads of
// arbitrary sizes: what is kept must be the file's own bytes, within it,
// whatever its headers claim.
func FuzzKept(f *testing.F) {
	if b, err := os.ReadFile("/usr/bin/ls"); err == nil {
		f.Add(b[:min(len(b), 8192)], uint16(4096))
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"), uint16(1))
	f.Add([]byte("\x7fELF\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x34\x00\x00\x00\xff\xff\xff\xf0"), uint16(7))
	f.Add([]byte("plain text"), uint16(2))
	f.Fuzz(func(t *testing.T, body []byte, chunk uint16) {
		kept, err := source.Kept("etc/x", body, 1+int(chunk))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range kept {
			if p.Off < 0 || p.Off+int64(len(p.Data)) > int64(len(body)) {
				t.Fatalf("kept [%d, %d) of a %d-byte file", p.Off, p.Off+int64(len(p.Data)), len(body))
			}
			if !bytes.Equal(p.Data, body[p.Off:p.Off+int64(len(p.Data))]) {
				t.Fatalf("kept bytes at %d differ from the file's", p.Off)
			}
		}
	})
}
