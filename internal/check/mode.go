package check

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// fileMode is an expected mode. Written the ls -l way ("-rwxr-xr-x") it
// includes the file type; written in octal ("0755", "4755") it does not.
type fileMode struct {
	text     string
	goForm   bool // compared as fs.FileMode.String(), as container-structure-test does
	withType bool
	perm     fs.FileMode // permission and setuid/setgid/sticky bits
	typ      byte        // ls type letter when withType
}

func parseFileMode(s string) (fileMode, error) {
	if len(s) == 10 && strings.ContainsRune("-dlcbps", rune(s[0])) {
		var perm fs.FileMode
		for i, c := range s[1:] {
			bit := fs.FileMode(1) << (8 - i)
			pos := i % 3
			switch {
			case c == '-':
			case pos == 0 && c == 'r', pos == 1 && c == 'w', pos == 2 && c == 'x':
				perm |= bit
			case pos == 2 && i < 6 && (c == 's' || c == 'S'):
				if i == 2 {
					perm |= fs.ModeSetuid
				} else {
					perm |= fs.ModeSetgid
				}
				if c == 's' {
					perm |= bit
				}
			case i == 8 && (c == 't' || c == 'T'):
				perm |= fs.ModeSticky
				if c == 't' {
					perm |= bit
				}
			default:
				return fileMode{}, fmt.Errorf("mode %q: %q is not allowed at position %d; write it like ls -l (\"-rwxr-xr-x\") or in octal (\"0755\")", s, c, i+2)
			}
		}
		return fileMode{text: s, withType: true, perm: perm, typ: s[0]}, nil
	}
	if goModeRE.MatchString(s) {
		return fileMode{text: s, goForm: true}, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 07777 || len(s) < 3 {
		return fileMode{}, fmt.Errorf("mode %q: write it like ls -l (\"-rwxr-xr-x\") or in octal (\"0755\")", s)
	}
	perm := fs.FileMode(n & 0777)
	if n&04000 != 0 {
		perm |= fs.ModeSetuid
	}
	if n&02000 != 0 {
		perm |= fs.ModeSetgid
	}
	if n&01000 != 0 {
		perm |= fs.ModeSticky
	}
	return fileMode{text: s, perm: perm}, nil
}

const specialBits = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// goModeRE is Go's FileMode.String(): type and special-bit letters
// (dalTLDpSugct?) before the nine permission characters.
var goModeRE = regexp.MustCompile(`^[dalTLDpSugct?]*[r-][w-][x-][r-][w-][x-][r-][w-][x-]$`)

// matches reports whether m is what the spec expects.
func (e fileMode) matches(m fs.FileMode) bool {
	if e.goForm {
		return m.String() == e.text
	}
	if e.withType && typeLetter(m) != e.typ {
		return false
	}
	return m&(fs.ModePerm|specialBits) == e.perm
}

// format renders m the way the expectation was written, so that a failure
// shows like against like.
func (e fileMode) format(m fs.FileMode) string {
	if e.goForm {
		return m.String()
	}
	if e.withType {
		return lsMode(m)
	}
	return octalMode(m)
}

func octalMode(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 02000
	}
	if m&fs.ModeSticky != 0 {
		n |= 01000
	}
	return fmt.Sprintf("%04o", n)
}

func typeLetter(m fs.FileMode) byte {
	switch {
	case m.IsDir():
		return 'd'
	case m&fs.ModeSymlink != 0:
		return 'l'
	case m&fs.ModeNamedPipe != 0:
		return 'p'
	case m&fs.ModeSocket != 0:
		return 's'
	case m&fs.ModeCharDevice != 0:
		return 'c'
	case m&fs.ModeDevice != 0:
		return 'b'
	}
	return '-'
}

// lsMode is m as ls -l prints it (Go's FileMode.String differs for special
// bits and device files).
func lsMode(m fs.FileMode) string {
	b := []byte{typeLetter(m)}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	set := func(i int, on bool, lower, upper byte) {
		if !on {
			return
		}
		if b[i] == '-' {
			b[i] = upper
		} else {
			b[i] = lower
		}
	}
	set(3, m&fs.ModeSetuid != 0, 's', 'S')
	set(6, m&fs.ModeSetgid != 0, 's', 'S')
	set(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
