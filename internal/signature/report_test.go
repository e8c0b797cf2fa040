package signature_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/signature"
)

func TestMatchReport(t *testing.T) {
	m := signature.NewMiner(signature.Options{})
	job := m.Add(signature.Extract("Traceback (most recent call last):\n  File \"/home/runner/work/a/a/app.py\", line 3, in <module>\n" +
		"    import sqlite3\nModuleNotFoundError: No module named '_sqlite3'\nError: Process completed with exit code 1."))
	before := m.Len()
	tests := []struct {
		name, text string
		id         string
		known      bool
	}{
		{"the error line alone", "ModuleNotFoundError: No module named '_sqlite3'", job.ID, true},
		{"another log around it", "$ pytest\nTraceback (most recent call last):\n  File \"/x/y.py\", line 9\nModuleNotFoundError: No module named '_sqlite3'\n", job.ID, true},
		{"another module", "ModuleNotFoundError: No module named 'requests'", signature.IDOf("ModuleNotFoundError: No module named 'requests'"), false},
		{"prose", "our builds fail since this morning, sqlite is broken", signature.IDOf(signature.Mask("our builds fail since this morning, sqlite is broken")), false},
		{"blank", " \n\t\n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, tmpl, known := m.MatchReport(tt.text)
			if id != tt.id || known != tt.known || (id != "" && signature.IDOf(tmpl) != id) {
				t.Errorf("MatchReport = %q %q %v, want id %q known %v", id, tmpl, known, tt.id, tt.known)
			}
		})
	}
	if m.Len() != before {
		t.Errorf("MatchReport added clusters: %d, had %d", m.Len(), before)
	}
}
