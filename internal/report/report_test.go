package report_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/report"
)

type doc struct{ Text string }

var formats = report.Formats[doc]{
	{Name: report.JSON, Write: report.WriteJSON[doc]},
	{Name: report.Table, Write: func(w io.Writer, d doc) error {
		tw := report.NewTable(w)
		io.WriteString(tw, "A\tB\n"+d.Text+"\tx\n")
		return tw.Flush()
	}},
	{Name: report.Markdown, Aliases: []string{"md"}, Write: func(w io.Writer, d doc) error {
		_, err := io.WriteString(w, "| "+report.MDText(d.Text)+" |\n")
		return err
	}},
}

func TestFormatsWrite(t *testing.T) {
	d := doc{Text: "a<b|c"}
	for _, tt := range []struct {
		name, want string
	}{
		{report.JSON, "{\n  \"Text\": \"a<b|c\"\n}\n"},
		{report.Table, "A      B\na<b|c  x\n"},
		{report.Markdown, "| a<b\\|c |\n"},
		{"md", "| a<b\\|c |\n"},
	} {
		var buf bytes.Buffer
		if err := formats.Write(&buf, tt.name, d); err != nil {
			t.Fatalf("Write(%q): %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
			t.Errorf("Write(%q) (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestFormatsUnknown(t *testing.T) {
	for _, name := range []string{"yaml", "", "Table"} {
		err := formats.Check(name)
		if !errors.Is(err, report.ErrUnknownFormat) {
			t.Fatalf("Check(%q) = %v, want ErrUnknownFormat", name, err)
		}
		want := `unknown output format "` + name + `": use json, table or markdown`
		if err.Error() != want {
			t.Errorf("Check(%q) = %q, want %q", name, err, want)
		}
		if err := formats.Write(io.Discard, name, doc{}); !errors.Is(err, report.ErrUnknownFormat) {
			t.Errorf("Write(%q) = %v, want ErrUnknownFormat", name, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatsWriteError(t *testing.T) {
	err := formats.Write(failingWriter{}, report.Markdown, doc{Text: "x"})
	if err == nil || err.Error() != "disk full" {
		t.Errorf("Write to a failing writer = %v, want its error unwrapped", err)
	}
}

func TestText(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	for _, tt := range []struct {
		name string
		f    func(string) string
		in   string
		want string
	}{
		{"OrDash empty", report.OrDash, "", "-"},
		{"OrDash", report.OrDash, "x", "x"},
		{"FirstLine", report.FirstLine, "  Traceback: \n  line 2\nline 3 ", "Traceback:"},
		{"RestLines", report.RestLines, "  Traceback: \n  line 2\nline 3 ", "line 2\nline 3"},
		{"RestLines one line", report.RestLines, " one \n", ""},
		{"LastLine", report.LastLine, "Traceback\n  File x\nImportError: no\tthing\n", "ImportError: no thing"},
		{"LastLine bounded", report.LastLine, long, strings.Repeat("é", 100) + "…"},
		{"LastLine cut inside a rune", report.LastLine, "x" + long, "x" + strings.Repeat("é", 99) + "…"},
		{"JoinLines", report.JoinLines, "a\r\nb\nc", "a ⏎ b ⏎ c"},
		{"OneLine", report.OneLine, "open x:\n\tno such  file\n", "open x: no such file"},
		{"MDText", report.MDText, "a|b\nc`d`", "a\\|b c`d`"},
		{"MDCode", report.MDCode, "a|b\nc`d`", "a\\|b c'd'"},
		{"MDHTML", report.MDHTML, "a|b\r\n<c> & d", "a\\|b<br>&lt;c&gt; &amp; d"},
	} {
		if got := tt.f(tt.in); got != tt.want {
			t.Errorf("%s(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "libraries", 1: "library", 2: "libraries"} {
		if got := report.Plural(n, "library", "libraries"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatsNames(t *testing.T) {
	if diff := cmp.Diff([]string{"json", "table", "markdown"}, formats.Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	if got, want := formats[:1].String(), "json"; got != want {
		t.Errorf("String() of one format = %q, want %q", got, want)
	}
}
