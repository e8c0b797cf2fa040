package snapshot

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
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
		return nil, fmt.Errorf("%w: %s", ErrSchema, describeJSONError(data, err))
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

// describeJSONError says where and why data is not a snapshot, in JSON's
// terms rather than Go's ("tools: want a list, got an object" rather than
// "expected []snapshot.Tool"). The fast decoder's offsets and wording are
// not reliable, so the standard library, which is, parses the document
// again: only on this error path, and the answer is worth the time.
func describeJSONError(data []byte, err error) string {
	var v Snapshot
	if serr := json.Unmarshal(data, &v); serr != nil {
		err = serr
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// Offset counts the bytes read, the bad one included.
		off := syn.Offset
		if off > 0 && int(off) <= len(data) && !strings.HasPrefix(syn.Error(), "unexpected end") {
			off--
		}
		return fmt.Sprintf("invalid JSON at %s: %s", position(data, off), syn.Error())
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		where := "the document"
		if typ.Field != "" {
			where = fmt.Sprintf("field %q", typ.Field)
		}
		return fmt.Sprintf("%s at %s: want %s, got %s", where, position(data, valueStart(data, typ.Offset)), jsonKind(typ.Type), article(typ.Value))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON document ends early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// valueStart turns the offset the standard library gives for a value of
// the wrong type (the bytes read: past the opening bracket of a list or
// object, past the whole of a scalar) into the offset where it starts.
func valueStart(data []byte, offset int64) int64 {
	end := int(min(max(offset, 0), int64(len(data))))
	if end == 0 {
		return 0
	}
	switch c := data[end-1]; {
	case c == '[' || c == '{':
		return int64(end - 1)
	case c == '"':
		for i := end - 2; i >= 0; i-- {
			if data[i] == '"' {
				bs := 0
				for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
					bs++
				}
				if bs%2 == 0 {
					return int64(i)
				}
			}
		}
		return 0
	}
	i := end
	for i > 0 && !bytes.ContainsRune([]byte(" \t\r\n:,[{"), rune(data[i-1])) {
		i--
	}
	return int64(i)
}

// position is "line L, column C (offset N)" of a zero-based byte offset:
// lines and columns count from 1, as editors show them.
func position(data []byte, offset int64) string {
	off := int(min(max(offset, 0), int64(len(data))))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Sprintf("line %d, column %d (offset %d)", line, col, off)
}

// jsonKind names what a Go type is written as in JSON.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value"
}

// article words the standard library's UnmarshalTypeError.Value ("array",
// "object", "string", "number 5", "bool").
func article(v string) string {
	switch {
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "bool":
		return "true or false"
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "string":
		return "a string"
	}
	return v
}

// ReadFile reads a snapshot from a file.
func ReadFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// "PATH: no such file or directory", still errors.Is
		// fs.ErrNotExist, rather than "open PATH: ...".
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
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
