package snapshot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// TestDecodeErrors: what a user reads for a file that is not a snapshot:
// JSON's words, not Go's, no doubled "json:", and the position of the
// offending byte itself.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello", `invalid JSON at line 1, column 1 (offset 0): invalid character 'h' looking for beginning of value`},
		{"[1,2]", `the document at line 1, column 1 (offset 0): want an object, got a list`},
		{`{"schema": 5}`, `field "schema" at line 1, column 12 (offset 11): want a string, got a number`},
		{`{"schema":"imagegate/snapshot/v1", "tools": {}}`, `field "tools" at line 1, column 45 (offset 44): want a list, got an object`},
		{"{\n  \"os\": \"x\\\"y\"}", `field "os" at line 2, column 9 (offset 10): want an object, got a string`},
		{"{\n\n  \"schema\": \"imagegate/snapshot/v1\",, }", `invalid JSON at line 3, column 37 (offset 39): invalid character ','`},
		{`{"schema":"imagegate/snapshot/v1", "runtimes": [`, `invalid JSON at line 1, column 49 (offset 48): unexpected end of JSON input`},
	} {
		_, err := snapshot.Decode(strings.NewReader(tc.in))
		if !errors.Is(err, snapshot.ErrSchema) {
			t.Errorf("%q: got %v, want ErrSchema", tc.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || strings.Contains(msg, "json:") || strings.Contains(msg, "snapshot.") {
			t.Errorf("%q:\n got %s\nwant %s, without Go type names or json:", tc.in, msg, tc.want)
		}
	}
}
