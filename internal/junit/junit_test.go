package junit_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/junit"
)

// parsed mirrors the JUnit schema independently of the package's types, so
// a wrong tag in junit shows up as a mismatch here.
type parsed struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   string   `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Time     string `xml:"time,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Time    string `xml:"time,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type counts struct {
	Tests, Failures, Skipped int
	Errors                   string
	Suites                   []suiteCounts
}

type suiteCounts struct {
	Name                                          string
	Tests, Failures, Skipped                      int
	Time                                          string
	CaseTests, CaseFailures, CaseSkipped, CaseOut int
	FailureTexts                                  []string
}

func TestWriteParsesBack(t *testing.T) {
	zero := 0
	tests := []struct {
		name string
		in   junit.Suites
		want counts
	}{
		{
			name: "empty",
			in:   junit.Suites{Name: "none"},
			want: counts{},
		},
		{
			name: "two suites, errors and time written",
			in: junit.Suites{Name: "gate", Tests: 4, Failures: 1, Skipped: 1, Errors: &zero, Suites: []junit.Suite{
				{Name: "a", Tests: 3, Failures: 1, Skipped: 1, Time: "0", Cases: []junit.Case{
					{Name: "broken <import>", Classname: "x.a", Time: "0", Failure: &junit.Message{
						Message: `No module named '_sqlite3' & more`, Type: "module", Text: "line 1\nline 2 \"quoted\""}},
					{Name: "stale", Classname: "x.a", Skipped: &junit.Message{Message: "remove it"}},
					{Name: "ok", Classname: "x.a", SystemOut: "declared: intended\n"},
				}},
				{Name: "b", Tests: 1, Cases: []junit.Case{{Name: "ok", Classname: "x.b"}}},
			}},
			want: counts{Tests: 4, Failures: 1, Skipped: 1, Errors: "0", Suites: []suiteCounts{
				{Name: "a", Tests: 3, Failures: 1, Skipped: 1, Time: "0", CaseTests: 3, CaseFailures: 1, CaseSkipped: 1, CaseOut: 1,
					FailureTexts: []string{"line 1\nline 2 \"quoted\""}},
				{Name: "b", Tests: 1, CaseTests: 1},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := junit.Write(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.HasPrefix(out, xml.Header) || !strings.HasSuffix(out, ">\n") {
				t.Errorf("output lacks the XML header or the final newline:\n%s", out)
			}
			var p parsed
			if err := xml.Unmarshal(buf.Bytes(), &p); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			got := counts{Tests: p.Tests, Failures: p.Failures, Skipped: p.Skipped, Errors: p.Errors}
			for _, s := range p.Suites {
				sc := suiteCounts{Name: s.Name, Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time,
					CaseTests: len(s.Cases)}
				for _, c := range s.Cases {
					if c.Failure != nil {
						sc.CaseFailures++
						sc.FailureTexts = append(sc.FailureTexts, c.Failure.Text)
					}
					if c.Skipped != nil {
						sc.CaseSkipped++
					}
					if c.SystemOut != "" {
						sc.CaseOut++
					}
				}
				got.Suites = append(got.Suites, sc)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parsed back (-want +got):\n%s", diff)
			}
			// Optional attributes left unset are left out, not written empty.
			root, _, _ := strings.Cut(strings.TrimPrefix(out, xml.Header), "\n")
			if tt.in.Errors == nil && strings.Contains(root, "errors=") {
				t.Errorf("nil Errors written: %s", root)
			}
			if strings.Contains(out, `time=""`) || strings.Contains(out, `type=""`) {
				t.Errorf("empty optional attribute written:\n%s", out)
			}
		})
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriteReportsWriterErrors(t *testing.T) {
	for n := range 3 {
		if err := junit.Write(&failingWriter{n: n}, junit.Suites{Name: "x"}); err == nil {
			t.Errorf("writer failing after %d writes: Write returned nil", n)
		}
	}
}
