package ospkg

import (
	"bytes"
	"strings"
)

// paragraph is one deb822 stanza: the fields a caller asked for, keyed by
// their lower-cased names (deb822 field names are case-insensitive).
type paragraph map[string]string

// deb822Paragraphs splits deb822 text (dpkg's status file, a distroless
// status.d entry) into paragraphs and calls fn with each. Only fields for
// which keep returns true are stored: the status file is mostly long
// Description and Conffiles fields that a scan does not need.
//
// It accepts what real files contain and what hand edits produce: CRLF line
// ends, runs of blank (or whitespace-only) lines, continuation lines
// starting with a space or tab, '#' comment lines, and no final newline.
func deb822Paragraphs(data []byte, keep func(lowerKey string) bool, fn func(paragraph)) {
	var (
		cur     paragraph
		lastKey string // "" when the previous field was not kept
	)
	flush := func() {
		if cur != nil {
			fn(cur)
		}
		cur, lastKey = nil, ""
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		switch line[0] {
		case ' ', '\t':
			if lastKey != "" {
				cur[lastKey] += "\n" + string(bytes.TrimSpace(line))
			}
			continue
		case '#':
			continue
		}
		if cur == nil {
			cur = paragraph{}
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			// Not a field: deb822 has no such line, so drop it rather than
			// guess what it meant.
			lastKey = ""
			continue
		}
		key := strings.ToLower(string(bytes.TrimSpace(k)))
		if !keep(key) {
			lastKey = ""
			continue
		}
		cur[key] = string(bytes.TrimSpace(v))
		lastKey = key
	}
	flush()
}
