// Package cpython is what imagegate knows about CPython itself, apart from
// any image: which top-level standard-library modules each version ships on
// Linux, which modules exist only on other platforms, and how the
// interpreter words an import that finds no module. The scan uses it to
// know what to import, the check to know what must be there, and the diff
// to link a module's breakage to the module it names.
//
// It imports nothing of imagegate's.
package cpython

import "strings"

// ModuleNotFound is the interpreter's message for an import of name (dotted)
// that finds no such module: Python 3 quotes the whole name ("No module
// named 'a.b'"), Python 2 names only the last part, unquoted ("No module
// named b").
func ModuleNotFound(name string, py2 bool) string {
	if py2 {
		return noModuleNamed2 + name[strings.LastIndexByte(name, '.')+1:]
	}
	return "No module named '" + name + "'"
}

// IsModuleNotFound reports whether msg is exactly the message for module
// name not existing, in either wording: importing it found no files at
// all, so it is absent rather than broken.
func IsModuleNotFound(msg, name string) bool {
	return msg == ModuleNotFound(name, false) || msg == noModuleNamed2+name
}

// noModuleNamed2 starts Python 2's message; the functions that read
// messages take it with the whole name after it, as for top-level modules.
const noModuleNamed2 = "No module named "

// ReportsMissing reports whether text (an error and its evidence, one or
// more lines) says that module name could not be found. Python 2's unquoted
// wording must end its line, so that "No module named tk" does not report
// tkinter.
func ReportsMissing(text, name string) bool {
	return strings.Contains(text, ModuleNotFound(name, false)) || strings.Contains(text+"\n", noModuleNamed2+name+"\n")
}

// NamesModule reports whether an import error names module at all: quoted
// anywhere, as Python 3 does ("No module named '_sqlite3'", "cannot import
// name '_ssl'"), or as the end of Python 2's unquoted "No module named X".
// It is looser than ReportsMissing: a module that another one's error
// merely mentions is still that error's cause.
func NamesModule(evidence, module string) bool {
	return strings.Contains(evidence, "'"+module+"'") || strings.HasSuffix(evidence, noModuleNamed2+module)
}
