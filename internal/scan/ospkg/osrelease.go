package ospkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// osReleasePaths are tried in order, as os-release(5) prescribes: the
// /etc file wins, the /usr/lib one is the vendor's fallback.
var osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}

// ReadOS reads /etc/os-release, falling back to /usr/lib/os-release, inside
// the image. When neither exists (a tool folder, a scratch image) it
// returns the zero OS and a nil error; any other failure to read is an
// error naming the file.
func ReadOS(ctx context.Context, t *source.Tree) (snapshot.OS, error) {
	for _, p := range osReleasePaths {
		if err := ctx.Err(); err != nil {
			return snapshot.OS{}, err
		}
		data, err := t.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return snapshot.OS{}, fmt.Errorf("read os-release %s: %w", p, err)
		}
		return ParseOSRelease(data), nil
	}
	return snapshot.OS{}, nil
}

// ParseOSRelease parses os-release(5) text: KEY=VALUE lines whose values
// follow shell quoting (single quotes, double quotes with \" \\ \$ \`
// escapes, backslash escapes outside quotes). Comments, blank lines and
// lines that are not assignments are ignored rather than rejected, because
// a scan should still name the OS of an image with one odd line.
func ParseOSRelease(data []byte) snapshot.OS {
	var o snapshot.OS
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(s, "=")
		if !ok || !validOSReleaseKey(key) {
			continue
		}
		val := shellUnquote(raw)
		switch key {
		case "ID":
			o.ID = val
		case "VERSION_ID":
			o.VersionID = val
		case "PRETTY_NAME":
			o.PrettyName = val
		case "ID_LIKE":
			o.IDLike = val
		case "VERSION_CODENAME":
			o.Codename = val
		}
	}
	return o
}

func validOSReleaseKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// shellUnquote undoes the subset of shell quoting os-release(5) allows. An
// unterminated quote keeps the rest of the line literally: being lenient
// here costs nothing, failing would lose the whole OS.
func shellUnquote(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				b.WriteString(s[i+1:])
				return b.String()
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
