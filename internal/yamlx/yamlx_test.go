package yamlx_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/yamlx"
)

type ring struct {
	Name     string        `yaml:"name"`
	Percent  float64       `yaml:"percent"`
	BakeTime time.Duration `yaml:"bakeTime"`
	MinJobs  int           `yaml:"minJobs"`
	Manual   bool          `yaml:"manual"`
	Orgs     []string      `yaml:"orgs"`
	Line     int           `yaml:"-"`
}

type doc struct {
	Listen string          `yaml:"listen"`
	Rings  []ring          `yaml:"rings"`
	Images map[string]ring `yaml:"images"`
	Limit  *int            `yaml:"limit"`
}

func decode(t *testing.T, d *yamlx.Decoder, in string) (doc, error) {
	t.Helper()
	top, err := yamlx.Parse(d.File, []byte(in))
	if err != nil || top == nil {
		return doc{}, err
	}
	var v doc
	err = d.Decode(top, &v, "")
	return v, err
}

func TestDecode(t *testing.T) {
	got, err := decode(t, yamlx.NewDecoder("d.yaml"), `listen: 8080
rings:
  - {name: canary, orgs: [a], bakeTime: 2h, minJobs: 5, manual: true}
  - &all {name: all, percent: 100}
images:
  u: *all
  v:
limit: 3
`)
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	want := doc{
		Listen: "8080",
		Rings: []ring{
			{Name: "canary", Orgs: []string{"a"}, BakeTime: 2 * time.Hour, MinJobs: 5, Manual: true, Line: 3},
			{Name: "all", Percent: 100, Line: 4},
		},
		Images: map[string]ring{"u": {Name: "all", Percent: 100, Line: 4}, "v": {}},
		Limit:  &three,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	notFound := func(key, hint string) string { return "field " + key + " not found" + hint }
	tests := []struct {
		name, in, want string
		unknown        func(key, hint string) string
	}{
		{"misspelt field", "rings:\n  - nme: a\n", `d.yaml:2: rings[0]: unknown field "nme"; did you mean "name"?`, nil},
		{"unrelated field", "colour: blue\n", `d.yaml:1: unknown field "colour"; known fields: listen, rings, images, limit`, nil},
		{"own wording", "listne: x\n", `d.yaml:1: field listne not found; did you mean "listen"?`, notFound},
		{"twice", "listen: a\nlisten: b\n", `d.yaml:2: field "listen" given twice`, nil},
		{"key twice", "images: {u: {}, u: {}}\n", `d.yaml:1: images: key "u" given twice`, nil},
		{"list wanted", "rings: {name: a}\n", `d.yaml:1: rings: expected a list, got a mapping`, nil},
		{"mapping wanted", "images: [a]\n", `d.yaml:1: images: expected a mapping, got a list`, nil},
		{"struct wanted", "- a\n", `d.yaml:1: expected a mapping of fields, got a list`, nil},
		{"integer", "rings: [{minJobs: many}]\n", `d.yaml:1: rings[0].minJobs: expected an integer, got "many"`, nil},
		{"bool", "rings: [{manual: perhaps}]\n", `d.yaml:1: rings[0].manual: expected true or false, got "perhaps"`, nil},
		{"string", "listen: [a]\n", `d.yaml:1: listen: expected a string, got a list`, nil},
		{"duration keeps yaml's words", "images:\n  u: {bakeTime: tomorrow}\n", "d.yaml:2: images.u.bakeTime: cannot unmarshal !!str `tomorrow` into time.Duration", nil},
		{"float keeps yaml's words", "rings: [{percent: lots}]\n", "d.yaml:1: rings[0].percent: cannot unmarshal !!str `lots` into float64", nil},
		{"syntax", "rings: [\n", "d.yaml:1: did not find expected node content", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := yamlx.NewDecoder("d.yaml")
			d.UnknownField = tt.unknown
			_, err := decode(t, d, tt.in)
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Fatalf("error %v (%T) is not a *yamlx.Error", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

// TestDecodeAliasBomb: nested aliases count each time they expand, so the
// decoder stops instead of walking billions of values.
func TestDecodeAliasBomb(t *testing.T) {
	in := "a: &a [[], [], [], [], [], [], [], [], [], []]\n"
	prev := "a"
	for i := range 8 {
		name := string(rune('b' + i))
		in += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	top, err := yamlx.Parse("bomb.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	type nest []nest
	var v map[string]nest
	err = yamlx.NewDecoder("bomb.yaml").Decode(top, &v, "")
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("got %v, want a too-large error", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "\n\n"} {
		top, err := yamlx.Parse("e.yaml", []byte(in))
		if err != nil || top != nil {
			t.Errorf("Parse(%q) = %v, %v; want nil, nil", in, top, err)
		}
	}
	top, err := yamlx.Parse("e.yaml", []byte("~\n"))
	if err != nil || top == nil || !yamlx.IsNull(top) {
		t.Errorf("Parse(~) = %v, %v; want a null node", top, err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  yamlx.Error
		want string
	}{
		{yamlx.Error{File: "f.yaml", Line: 3, Path: "a.b[1]", Msg: "bad"}, "f.yaml:3: a.b[1]: bad"},
		{yamlx.Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{yamlx.Error{File: "f.yaml", Path: "rings", Msg: "bad"}, "f.yaml: rings: bad"},
		{yamlx.Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("listen: :80\nrings: [{name: a, bakeTime: 1h}]\nimages: {u: {percent: 1}}\n"))
	f.Add([]byte("a: &a [1]\nrings: *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		top, err := yamlx.Parse("f.yaml", b)
		if err != nil {
			var ye *yamlx.Error
			if !errors.As(err, &ye) || ye.File != "f.yaml" {
				t.Fatalf("Parse error %v is not a *yamlx.Error naming the file", err)
			}
			return
		}
		if top == nil {
			return
		}
		var v doc
		if err := yamlx.NewDecoder("f.yaml").Decode(top, &v, ""); err != nil {
			var ye *yamlx.Error
			if !errors.As(err, &ye) || ye.File != "f.yaml" {
				t.Fatalf("Decode error %v is not a *yamlx.Error naming the file", err)
			}
		}
	})
}
