// Package junit writes JUnit XML reports, the format CI systems (GitLab,
// Jenkins, GitHub test reporters) read to show gate results as tests.
package junit

import (
	"encoding/xml"
	"io"
)

// Suites is the <testsuites> root.
type Suites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	// Errors is a pointer so a report can write errors="0" or leave the
	// attribute out (nil) as its existing consumers expect.
	Errors  *int    `xml:"errors,attr,omitempty"`
	Skipped int     `xml:"skipped,attr"`
	Suites  []Suite `xml:"testsuite"`
}

// Suite is one <testsuite>. An empty Time leaves the attribute out.
type Suite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Time     string `xml:"time,attr,omitempty"`
	Cases    []Case `xml:"testcase"`
}

// Case is one <testcase>: failed when Failure is set, skipped when Skipped
// is set, passed otherwise. An empty Time leaves the attribute out.
type Case struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      string   `xml:"time,attr,omitempty"`
	Failure   *Message `xml:"failure,omitempty"`
	Skipped   *Message `xml:"skipped,omitempty"`
	SystemOut string   `xml:"system-out,omitempty"`
}

// Message is the body of <failure> or <skipped>: a one-line message, an
// optional type and the full text.
type Message struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Write writes s as an XML document: the XML header, s indented by two
// spaces, and a final newline.
func Write(w io.Writer, s Suites) error {
	// Errors come back unwrapped: they are the caller's writer's own, and
	// the callers add their context.
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
