package check

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/report"
)

// WriteChanges writes a changes file that declares every failure of r with
// a TODO reason, so that a team can adopt the gate on an image that fails
// today (a build without _dbm) and tighten it later: run check with the
// file, and delete each entry once its cause is fixed. Each entry's
// comment quotes the failure. Failures no changes file can declare (spec
// tests) are listed as comments, so the file says the gate still fails.
// It returns the number of declarations written.
func (r *Report) WriteChanges(w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Changes file written by imagegate check --write-changes for %s.\n", r.Source)
	fmt.Fprintln(bw, "# Each entry accepts a failure the gate found. Replace every TODO with why it")
	fmt.Fprintln(bw, "# is acceptable, or fix the cause and delete the entry: an entry that matches")
	fmt.Fprintln(bw, "# nothing any more is reported as stale.")
	fmt.Fprintln(bw, "changes:")
	n := 0
	var undeclarable []Result
	for _, res := range r.Results {
		if res.Status != StatusFail {
			continue
		}
		if res.declareAs == "" {
			undeclarable = append(undeclarable, res)
			continue
		}
		n++
		fmt.Fprintf(bw, "  # %s\n", report.OneLine(res.Message))
		fmt.Fprintf(bw, "  - %s: %s\n", res.declareAs, strconv.Quote(res.ID))
		fmt.Fprintf(bw, "    reason: %s\n", strconv.Quote("TODO: accepted when adopting the gate: "+report.OneLine(res.Message)))
	}
	if n == 0 {
		fmt.Fprintln(bw, "  []")
	}
	if len(undeclarable) > 0 {
		fmt.Fprintln(bw, "# These fail and cannot be declared here (fix the image or the spec):")
		for _, res := range undeclarable {
			fmt.Fprintf(bw, "#   %s: %s\n", res.label(), strings.ReplaceAll(report.OneLine(res.Message), "\n", " "))
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write changes file: %w", err)
	}
	return n, nil
}
