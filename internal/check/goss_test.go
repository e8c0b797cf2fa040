package check_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/snapshot"
)

func TestParseGossErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown type", "file:\n  /etc/passwd: {exists: true}\nfiles:\n  /x: {exists: true}\n",
			`goss.yaml:3: unknown goss resource type "files"; did you mean "file"?`},
		{"unknown attribute", "file:\n  /etc/passwd:\n    exists: true\n    mod: \"0644\"\n",
			`goss.yaml:4: file./etc/passwd: unknown file attribute "mod"; did you mean "mode"?`},
		{"required attribute", "command:\n  echo hi:\n    stdout: [hi]\n",
			`goss.yaml:2: command.echo hi: exit-status is required for a command resource`},
		{"unknown matcher", "user:\n  app:\n    exists: true\n    home: {have-prefx: /home}\n",
			`goss.yaml:4: user.app.home.have-prefx: unknown matcher "have-prefx"; did you mean "have-prefix"?`},
		{"two matchers at one level", "user:\n  app:\n    exists: true\n    uid: {gt: 1, lt: 9}\n",
			`goss.yaml:4: user.app.uid: one matcher per level, found gt, lt`},
		{"gjson refused", "command:\n  cat x.json:\n    exit-status: 0\n    stdout: {gjson: {a: b}}\n",
			`goss.yaml:4: command.cat x.json.stdout.gjson: the gjson matcher is not supported`},
		{"pattern not a string", "file:\n  /x:\n    exists: true\n    contents: [{have-prefix: a}]\n",
			`goss.yaml:4: file./x.contents[0]: a pattern is a string`},
		{"bad regexp", "file:\n  /x:\n    exists: true\n    contents: [\"/a(/\"]\n",
			`goss.yaml:4: file./x.contents[0]: invalid regular expression`},
		{"template missing key", "file:\n  /a: {exists: true}\n  {{ .Vars.path }}: {exists: true}\n",
			`goss.yaml:3: goss template: at <.Vars.path>: map has no entry for key "path"`},
		{"template syntax", "file:\n{{range mkSlice \"/a\"}}\n  {{.}}: {exists: true}\n",
			`goss.yaml:4: goss template: unexpected EOF`},
		{"template unbounded repeat", "matching:\n  m: {content: '{{ repeat 100000000 \"ab\" }}', matches: x}\n",
			`goss.yaml:2: goss template: at <repeat 100000000 "ab">: error calling repeat: repeat 100000000: the result would exceed 16 MiB`},
		{"rendered not YAML", "file:\n{{ \"  [\" }}\n",
			`goss.yaml:2: did not find expected node content (in the file as its template rendered it)`},
		{"missing include", "gossfile:\n  other.yaml: {}\n",
			`goss.yaml:2: gossfile.other.yaml: no files match "other.yaml"`},
		{"nothing to test", "gossfile:\n  empty.yaml: {}\n", `goss.yaml: found no goss tests`},
		{"not a mapping", "file: [a, b]\n", `goss.yaml:1: file: expected a mapping of file resources, got a list`},
		{"bad timeout", "command:\n  x:\n    exit-status: 0\n    timeout: soon\n", `goss.yaml:4: command.x.timeout: expected an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"goss.yaml": {Data: []byte(tt.doc)}, "empty.yaml": {Data: []byte("# nothing\n")}}
			_, err := check.ParseGoss(fsys, "goss.yaml", check.GossTemplate{})
			var se *check.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SpecError", err, err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n %s\nwant prefix:\n %s", err, tt.want)
			}
		})
	}
}

// TestParseSpecRecognisesGoss: --spec takes a goss file as it is, and
// a spec with a field of its own is never read as goss.
func TestParseSpecRecognisesGoss(t *testing.T) {
	s, err := check.ParseSpec("goss.yaml", []byte("package:\n  dpkg: {installed: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Goss == nil || len(s.Goss.Resources) != 1 {
		t.Fatalf("goss file not recognised: %+v", s)
	}
	_, err = check.ParseSpec("spec.yaml", []byte("packages:\n  deb: [dpkg]\nfile: {}\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown field "file"`) {
		t.Errorf("a spec with a goss key: %v, want the spec's unknown-field error", err)
	}
}

// TestGossIncludes: relative to the including file, globs in name order,
// skip: true not read, a later duplicate replacing an earlier one.
func TestGossIncludes(t *testing.T) {
	fsys := fstest.MapFS{
		"suite/goss.yaml":       {Data: []byte("gossfile:\n  parts/*.yaml: {}\n  ../shared/base.yaml: {}\n  off.yaml: {skip: true}\npackage:\n  dpkg: {installed: true}\n")},
		"suite/parts/b.yaml":    {Data: []byte("package:\n  curl: {installed: false}\n")},
		"suite/parts/a.yaml":    {Data: []byte("package:\n  dpkg: {installed: false}\n  bash: {installed: true}\n")},
		"shared/base.yaml":      {Data: []byte("group:\n  root: {exists: true}\ngossfile:\n  /abs/more.yaml: {}\n")},
		"abs/more.yaml":         {Data: []byte("user:\n  root: {exists: true}\n")},
		"suite/parts/notes.txt": {Data: []byte("not yaml: [")},
	}
	g, err := check.ParseGoss(fsys, "suite/goss.yaml", check.GossTemplate{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range g.Resources {
		got = append(got, r.Type+" "+r.Key+" "+r.File+" "+r.Attrs[0].Expect())
	}
	want := []string{
		"package dpkg suite/parts/a.yaml false",
		"group root shared/base.yaml true",
		"user root abs/more.yaml true",
		"package bash suite/parts/a.yaml true",
		"package curl suite/parts/b.yaml false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], `package "dpkg" was also defined at suite/goss.yaml:6`) {
		t.Errorf("warnings %q, want the dpkg override", g.Warnings)
	}
	loop := fstest.MapFS{"a.yaml": {Data: []byte("gossfile:\n  a.yaml: {}\n")}}
	if _, err := check.ParseGoss(loop, "a.yaml", check.GossTemplate{}); err == nil || !strings.Contains(err.Error(), "probably a loop") {
		t.Errorf("include loop: %v", err)
	}
}

// TestGossMatchers runs goss's documented matcher examples (docs/gossfile.md,
// "Matchers") through matching resources, which need no image.
func TestGossMatchers(t *testing.T) {
	tests := []struct {
		content, matches string
		want             string // status
	}{
		{"foo", "foo", "pass"},
		{"foo", "bar", "fail"},
		{"42", "42", "pass"},     // a number matched numerically
		{"42", "'42'", "pass"},   // a string matched as text
		{"'042'", "42", "pass"},  // "042" read as a number
		{"true", "true", "pass"}, // bools are equal
		{"'true'", "true", "fail"},
		{"[group1, group2, group3]", "[group1, group2]", "pass"},
		{"[group1, group2, group3]", "[group1, group2, group2]", "fail"},
		{"some string", "{match-regexp: some str}", "pass"},
		{"[2]", "{contain-element: 2}", "pass"},
		{"{foo: bar, baz: bing}", "{and: [{have-key: baz}]}", "pass"},
		{"{foo: bar}", "{have-key: baz}", "fail"},
		{"42", "{and: ['42', {have-prefix: '4'}, {have-suffix: '2'}, {match-regexp: '\\d{2}'}, {contain-substring: '2'}]}", "pass"},
		{"'42'", "{and: [42, 42.0, {gt: 40}, {lt: 45}]}", "pass"},
		{"'42'", "{ge: 43}", "fail"},
		{"[foo, bar, moo]", "{and: [{contain-elements: [foo, bar]}, [foo, bar], {equal: [foo, bar, moo]}, {consist-of: [foo, {have-prefix: m}, bar]}, {contain-element: {have-prefix: b}}]}", "pass"},
		{"[foo, bar, moo]", "{equal: [foo, bar]}", "fail"},
		{"[foo, bar, moo]", "{consist-of: [foo, bar]}", "fail"},
		{"[foo, bar, moo]", "{have-len: 3}", "pass"},
		{"abc", "{have-len: 2}", "fail"},
		{"FAIL", "[{not: FAIL}]", "fail"}, // a list wants a list: "FAIL" is not one
		{"PASS", "{not: FAIL}", "pass"},
		{"x", "{or: [y, {have-prefix: x}]}", "pass"},
		{"[1.0.1, 1.9.9]", "{semver-constraint: '>1.0.0 <2.0.0 !=1.5.0'}", "pass"},
		{"[1.0.1, 1.5.0, 1.9.9]", "{not: {semver-constraint: '>1.0.0 <2.0.0 !=1.5.0'}}", "pass"},
		{"1.0.1", "{semver-constraint: '>5.0.0 || < 1.5.0'}", "pass"},
		{"\"a\\nb\"", "{contain-element: b}", "pass"}, // contain-element splits text into lines
		{"'abc'", "{gt: 1}", "fail"},                  // not a number: fails with the reason
	}
	for _, tt := range tests {
		t.Run(tt.content+" "+tt.matches, func(t *testing.T) {
			doc := "matching:\n  m:\n    content: " + tt.content + "\n    matches: " + tt.matches + "\n"
			g, err := check.ParseGoss(fstest.MapFS{"goss.yaml": {Data: []byte(doc)}}, "goss.yaml", check.GossTemplate{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := check.Run(context.Background(), &snapshot.Snapshot{}, check.Options{Goss: g})
			if err != nil {
				t.Fatal(err)
			}
			res := r.Results[len(r.Results)-1]
			if res.Status != tt.want {
				t.Errorf("status %s (%s), want %s", res.Status, res.Message, tt.want)
			}
		})
	}
}

// TestGossPatterns: goss's line patterns, for text read from files and
// command output, with the content given as-reader.
func TestGossPatterns(t *testing.T) {
	text := `"root:x:0:0:root:/root:/bin/bash\nGoss is here\n!bang\n"`
	tests := []struct {
		patterns, want string
	}{
		{`[root, "!daemon", "/[Gg]oss/"]`, "pass"},
		{`["/^goss/i"]`, "pass"},
		{`["/^goss/"]`, "fail"},
		{`["!Goss"]`, "fail"},
		{`["\\!bang"]`, "pass"}, // goss strips the escape and the "!" alike
		{`[""]`, "pass"},
		{`[nothere]`, "fail"},
		{`{and: [{contain-element: {match-regexp: "^Goss"}}, {not: {contain-element: daemon}}]}`, "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.patterns, func(t *testing.T) {
			doc := "matching:\n  m:\n    as-reader: true\n    content: " + text + "\n    matches: " + tt.patterns + "\n"
			g, err := check.ParseGoss(fstest.MapFS{"goss.yaml": {Data: []byte(doc)}}, "goss.yaml", check.GossTemplate{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := check.Run(context.Background(), &snapshot.Snapshot{}, check.Options{Goss: g})
			if err != nil {
				t.Fatal(err)
			}
			if res := r.Results[0]; res.Status != tt.want {
				t.Errorf("status %s (%s %q), want %s", res.Status, res.Message, res.Evidence, tt.want)
			}
		})
	}
}

// TestGossWithoutImage: resources that need the image's files fail saying
// so against a snapshot file; runtime ones are skipped, never passed.
func TestGossWithoutImage(t *testing.T) {
	doc := "file:\n  /etc/passwd: {exists: true}\nport:\n  tcp:80: {listening: true}\npackage:\n  dpkg: {installed: true}\n"
	g, err := check.ParseGoss(fstest.MapFS{"goss.yaml": {Data: []byte(doc)}}, "goss.yaml", check.GossTemplate{})
	if err != nil {
		t.Fatal(err)
	}
	snap := &snapshot.Snapshot{Packages: []snapshot.Package{{Type: snapshot.PackageDeb, Name: "dpkg", Version: "1.22.21"}}}
	r, err := check.Run(context.Background(), snap, check.Options{Goss: g})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range r.Results {
		got = append(got, res.Status+" "+res.ID+" "+res.Message)
	}
	want := []string{
		"fail spec/goss/file[/etc/passwd].exists exists: needs the image's files",
		"info spec/goss/port[tcp:80].listening listening: skipped: a listening port needs a running container",
		"pass spec/goss/package[dpkg].installed installed: matches expectation: true",
	}
	for i := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("results:\n%s\nwant prefixes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func FuzzParseGoss(f *testing.F) {
	for _, seed := range []string{
		"file:\n  /etc/passwd:\n    exists: true\n    mode: \"0644\"\n    contents: [root, \"!x\", \"/^r/i\"]\n",
		"command:\n  echo hi:\n    exit-status: {lt: 1}\n    stdout: {and: [{have-prefix: h}, {not: {contain-substring: x}}]}\n",
		"gossfile:\n  '*.yaml': {}\nuser:\n  a: {exists: true, groups: {consist-of: [a, {have-suffix: b}]}}\n",
		"matching:\n  m: {content: [1, 2], matches: {contain-elements: [1, {gt: 1}]}}\n",
		"package:\n  x: {installed: true, versions: {semver-constraint: '>1'}}\n",
		"port:\n  tcp:80: {listening: true, ip: [0.0.0.0]}\n",
		"file:\n{{- range mkSlice \"/etc/passwd\" \"/etc/group\"}}\n  {{.}}: {exists: true}\n{{end}}\n",
		"user:\n{{range .Vars.users}}\n  {{.}}: {exists: true, home: /home/{{. | toLower}}}\n{{end}}\n",
		"matching:\n  m: {content: '{{ getEnv \"OS\" \"x\" | upper }}{{ readFile \"other.yaml\" | len }}', matches: {have-prefix: DEB}}\n",
		"{{if .Env.OS | regexMatch \"deb\"}}group:\n  {{ .Vars.port }}: {exists: true}{{end}}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		fsys := fstest.MapFS{"goss.yaml": {Data: []byte(doc)}, "other.yaml": {Data: []byte("group:\n  root: {exists: true}\n")}}
		tmpl := check.GossTemplate{Vars: map[string]any{"users": []any{"A", "b"}, "port": 8000}, Env: map[string]string{"OS": "debian"}}
		g, err := check.ParseGoss(fsys, "goss.yaml", tmpl)
		if err != nil {
			var se *check.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SpecError", err, err)
			}
			return
		}
		if len(g.Resources) == 0 {
			t.Fatal("a goss suite without resources was accepted")
		}
		// Matching resources need nothing of an image: they must run.
		if _, err := check.Run(context.Background(), &snapshot.Snapshot{}, check.Options{Goss: g}); err != nil {
			t.Fatal(err)
		}
	})
}
