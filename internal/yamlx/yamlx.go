// Package yamlx reads the YAML files people write for imagegate (check
// specs, changes files, the serve config) strictly and with one error
// format: every problem is an *Error naming the file, the line and the path
// of the offending value, so that a typo is reported where it is instead of
// silently leaving a default in place.
package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem in a YAML file, located by line. It prints as
// "file:line: path: msg", the form editors and CI annotations understand;
// the line and the path are left out when unknown.
type Error struct {
	File string
	Line int
	// Path locates the value, e.g. "fileTests[2]" or "tools.node".
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns an *Error at node n (its line) and path.
func Errorf(file string, n *yaml.Node, path, format string, args ...any) error {
	return &Error{File: file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads the first YAML document of data and returns its top node, or
// nil when the document is empty (nothing, or only comments). A syntax error
// is an *Error at the line yaml reports.
func Parse(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, &Error{File: file, Line: line, Msg: msg}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// splitLine takes yaml's "line 4: did not find …" apart.
func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, msg[len(m[0]):]
}

// IsNull reports whether n is an explicit or implied null ("key:" with
// nothing after it).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Unmarshaler is implemented by types whose YAML shape is not a plain struct
// (a mapping from tool names to constraints, a duration with its own
// spelling). DecodeYAML fills the receiver from n and reports problems with
// d.Errorf, so they carry the file, line and path like every other.
type Unmarshaler interface {
	DecodeYAML(d *Decoder, n *yaml.Node, path string) error
}

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

// DefaultMaxNodes bounds the values one Decoder visits, so that a document
// built from nested aliases cannot expand without limit.
const DefaultMaxNodes = 200_000

// Decoder fills Go values from YAML nodes strictly: the shape must match
// (a struct wants a mapping, a slice a list), every mapping key must name a
// field (by its yaml tag; a field without one is not decodable), and no key
// may be given twice. A struct field named Line of type int and tagged
// yaml:"-" receives the line of the mapping it was decoded from.
//
// Strings, ints and bools are decoded here, with messages such as
// `expected an integer, got "zero"`; other scalar types (floats,
// time.Duration, ...) are decoded by yaml itself and keep its message.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	// File names the document in errors.
	File string
	// MaxNodes overrides DefaultMaxNodes when positive.
	MaxNodes int
	// UnknownField words the message for a key that names no field; hint
	// is "; did you mean \"x\"?" or the list of known fields. When nil the
	// message is `unknown field "key"` followed by the hint.
	UnknownField func(key, hint string) string

	nodes int
}

// NewDecoder returns a Decoder whose errors name file.
func NewDecoder(file string) *Decoder {
	return &Decoder{File: file}
}

// Errorf returns an *Error at node n (its line) and path in d's file.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) error {
	return Errorf(d.File, n, path, format, args...)
}

// Decode fills the value v points to from n; path prefixes the paths in
// errors ("" at the top of a document). A null node leaves it unchanged.
func (d *Decoder) Decode(n *yaml.Node, v any, path string) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("yamlx: Decode wants a non-nil pointer, got %T", v)
	}
	return d.decode(n, rv.Elem(), path)
}

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return d.Errorf(n, path, "broken alias")
		}
		n = n.Alias
	}
	maxNodes := d.MaxNodes
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	if d.nodes++; d.nodes > maxNodes {
		return d.Errorf(n, path, "document too large (more than %d values)", maxNodes)
	}
	if IsNull(n) {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem(), path)
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		return v.Addr().Interface().(Unmarshaler).DecodeYAML(d, n, path)
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.Errorf(n, path, "expected a list, got %s", Describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return d.Errorf(n, path, "expected a string, got %s", Describe(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			return d.Errorf(n, path, "expected an integer, got %s", Describe(n))
		}
		v.SetInt(int64(i))
		return nil
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return d.Errorf(n, path, "expected true or false, got %s", Describe(n))
		}
		v.SetBool(b)
		return nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		// yaml knows these spellings (time.Duration's "24h", "1e3", "0x10"),
		// and a scalar cannot hide unknown fields.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return d.Errorf(n, path, "%s", yamlMessage(err))
		}
		return nil
	}
	return d.Errorf(n, path, "internal: cannot decode into %s", v.Type())
}

// yamlMessage is the first of yaml's messages without its "yaml:" and
// "line N:" prefixes, which an *Error carries in its own fields.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		_, msg := splitLine(te.Errors[0])
		return msg
	}
	_, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return msg
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "expected a mapping of fields, got %s", Describe(n))
	}
	t := v.Type()
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		key := k.Value
		f, ok := index[key]
		if !ok {
			if d.UnknownField != nil {
				return d.Errorf(k, path, "%s", d.UnknownField(key, Suggest(key, names)))
			}
			return d.Errorf(k, path, "unknown field %q%s", key, Suggest(key, names))
		}
		if seen[key] {
			return d.Errorf(k, path, "field %q given twice", key)
		}
		seen[key] = true
		if err := d.decode(n.Content[i+1], v.Field(f), JoinPath(path, key)); err != nil {
			return err
		}
	}
	if f, ok := t.FieldByName("Line"); ok && f.Type.Kind() == reflect.Int && f.Tag.Get("yaml") == "-" && f.IsExported() {
		v.FieldByIndex(f.Index).SetInt(int64(n.Line))
	}
	return nil
}

// decodeMap fills a map keyed by strings (labels, names); a key with a null
// value gets the zero value, as yaml itself does.
func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		return d.Errorf(n, path, "internal: cannot decode into %s", t)
	}
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "expected a mapping, got %s", Describe(n))
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := reflect.New(t.Key()).Elem()
		if err := d.decode(n.Content[i], k, path); err != nil {
			return err
		}
		key := k.String()
		if seen[key] {
			return d.Errorf(n.Content[i], path, "key %q given twice", key)
		}
		seen[key] = true
		e := reflect.New(t.Elem()).Elem()
		if err := d.decode(n.Content[i+1], e, JoinPath(path, key)); err != nil {
			return err
		}
		v.SetMapIndex(k, e)
	}
	return nil
}

// JoinPath appends a mapping key to a value's path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Describe names what a node holds, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// Suggest names the known field closest to a misspelt one, if any is close
// (`; did you mean "mode"?`), else lists the known fields.
func Suggest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(strings.ToLower(key), strings.ToLower(n))
		if d < bestD || (strings.HasPrefix(n, key) && len(key) >= 3 && bestD > 1) {
			best, bestD = n, min(d, 2)
		}
	}
	if best == "" {
		return "; known fields: " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
