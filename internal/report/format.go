// Package report renders imagegate's documents (snapshots, diff and check
// reports) for people and programs: it owns the choice of output format
// and the helpers that keep tables and Markdown readable. It knows no
// document: each package declares its Formats and writes its own rows.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Output formats, as users name them after -o.
const (
	Table    = "table"
	JSON     = "json"
	Markdown = "markdown"
	JUnit    = "junit"
)

// ErrUnknownFormat is wrapped by the error for a format a document does not
// have.
var ErrUnknownFormat = errors.New("unknown output format")

// Format is one way to write a document of type T.
type Format[T any] struct {
	Name string
	// Aliases are other names accepted for it ("md"), never listed.
	Aliases []string
	Write   func(w io.Writer, doc T) error
}

// Formats are the ways a document can be written, in the order help and
// errors list them.
type Formats[T any] []Format[T]

func (fs Formats[T]) lookup(name string) (*Format[T], error) {
	for i := range fs {
		f := &fs[i]
		if f.Name == name {
			return f, nil
		}
		for _, a := range f.Aliases {
			if a == name {
				return f, nil
			}
		}
	}
	return nil, fmt.Errorf("%w %q: use %s", ErrUnknownFormat, name, fs)
}

// Check returns an error wrapping ErrUnknownFormat, which names the formats
// there are, unless name is one of them; commands call it before doing any
// work.
func (fs Formats[T]) Check(name string) error {
	_, err := fs.lookup(name)
	return err
}

// Write writes doc to w in the format called name, through a buffer. An
// unknown name gives Check's error; any other error is the format's or w's
// own, unwrapped, for the caller to say which document it was writing.
func (fs Formats[T]) Write(w io.Writer, name string, doc T) error {
	f, err := fs.lookup(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := f.Write(bw, doc); err != nil {
		return err
	}
	return bw.Flush()
}

// Names are the formats' names, without aliases, in order.
func (fs Formats[T]) Names() []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return names
}

// String lists the format names for people: "table, json or markdown".
func (fs Formats[T]) String() string {
	names := fs.Names()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// WriteJSON writes doc as indented JSON without HTML escaping (reports
// carry "<" and "&" in evidence, and are read by programs and people, not
// browsers), one document per call, ending in a newline.
func WriteJSON[T any](w io.Writer, doc T) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// NewTable returns the tabwriter every table is written with: columns two
// blanks apart, padded with blanks. The caller flushes it.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}
