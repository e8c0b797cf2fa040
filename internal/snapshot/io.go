package snapshot

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	fastjson "github.com/segmentio/encoding/json"
)

// ErrSchema is returned by Read for a document that is not a v1 snapshot.
var ErrSchema = errors.New("not an imagegate snapshot")

// Normalize sorts every list into its canonical order and turns nil lists
// into empty ones, so that the same image always encodes to the same bytes.
func (s *Snapshot) Normalize() {
	if s.Schema == "" {
		s.Schema = SchemaV1
	}
	s.Packages = orEmpty(s.Packages)
	s.Runtimes = orEmpty(s.Runtimes)
	s.Tools = orEmpty(s.Tools)
	slices.SortFunc(s.Packages, func(a, b Package) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Version, b.Version))
	})
	for i := range s.Runtimes {
		r := &s.Runtimes[i]
		slices.SortFunc(r.Modules, func(a, b Module) int { return cmp.Compare(a.Name, b.Name) })
		for j := range r.Modules {
			slices.Sort(r.Modules[j].MissingLibraries)
		}
		slices.SortFunc(r.Packages, func(a, b RuntimePackage) int {
			return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Version, b.Version))
		})
	}
	slices.SortFunc(s.Runtimes, func(a, b Runtime) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Path, b.Path))
	})
	slices.SortFunc(s.Tools, func(a, b Tool) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Path, b.Path))
	})
	slices.SortFunc(s.Skipped, func(a, b SkippedEntry) int { return cmp.Compare(a.Path, b.Path) })
	slices.Sort(s.Warnings)
	s.Warnings = slices.Compact(s.Warnings)
	if s.Image != nil {
		slices.Sort(s.Image.ExposedPorts)
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Encode writes s, normalized, as indented JSON followed by a newline.
func Encode(w io.Writer, s *Snapshot) error {
	s.Normalize()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return nil
}

// Decode reads one snapshot. It rejects documents whose schema is not v1 and
// trailing garbage; unknown fields are ignored so that newer v1 writers stay
// readable.
func Decode(r io.Reader) (*Snapshot, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return decode(data)
}

// decode parses a whole document at once: a snapshot of a large image is
// ~100 MB, and segmentio's decoder, a drop-in for encoding/json with the
// same error types, parses it about four times faster than the standard
// library's, which matters because diff reads two of them. Strings point
// into data instead of being copied (a million fewer allocations); data is
// never written to again, so they stay valid.
func decode(data []byte) (*Snapshot, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrSchema)
	}
	var s Snapshot
	rest, err := fastjson.Parse(data, &s, fastjson.DontCopyString)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrSchema, describeJSONError(err))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrSchema)
	}
	if s.Schema != SchemaV1 {
		if s.Schema == "" {
			return nil, fmt.Errorf("%w: no \"schema\" field", ErrSchema)
		}
		return nil, fmt.Errorf("%w: schema %q, this imagegate reads %q", ErrSchema, s.Schema, SchemaV1)
	}
	s.Normalize()
	return &s, nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %q: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	}
	if errors.Is(err, io.EOF) {
		return "empty input"
	}
	return err.Error()
}

// ReadFile reads a snapshot from a file.
func ReadFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LooksLikeSnapshot reports whether the start of a file is a JSON object, so
// that commands accepting "a snapshot file or a scan SOURCE" can tell them
// apart without guessing from the name.
func LooksLikeSnapshot(head []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n\ufeff"), []byte("{"))
}
