package check_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
)

// TestGossTemplates renders goss's documented template examples
// (docs/gossfile.md "Templates") and reads what they render to.
func TestGossTemplates(t *testing.T) {
	vars := map[string]any{
		"users":          []any{"user1", "user2"},
		"debian":         map[string]any{"packages": map[string]any{"kernel": []any{"6.1.0", "6.1.1"}}},
		"instance_count": 14, "status": "PASS",
	}
	env := map[string]string{"OS": "debian", "GREETING": "Hello"}
	tests := []struct {
		name, doc string
		want      []string // type key: first attribute's expectation
	}{
		{"mkSlice", "file:\n{{- range mkSlice \"/etc/passwd\" \"/etc/group\"}}\n  {{.}}:\n    exists: true\n{{end}}\n",
			[]string{"file /etc/passwd: true", "file /etc/group: true"}},
		{"vars and env", "package:\n{{range $name, $vers := index .Vars .Env.OS \"packages\"}}\n  {{$name}}:\n    installed: true\n    versions:\n    {{range $vers}}\n      - {{.}}\n    {{end}}\n{{end}}\n{{if .Env.OS | regexMatch \"[Cc]ent(OS|os)\"}}\n  libselinux:\n    installed: true\n{{end}}\nuser:\n{{range .Vars.users}}\n  {{.}}:\n    exists: true\n    home: /home/{{.}}\n{{end}}\n",
			[]string{"package kernel: true", "user user1: true", "user user2: true"}},
		{"matching vars", "matching:\n  count:\n    content: {{ .Vars.instance_count }}\n    matches: {gt: 0}\n  status:\n    content: {{ .Vars.status }}\n    matches: [{not: FAIL}]\n",
			[]string{"matching count: gt 0", "matching status: contain-elements [not \"FAIL\"]"}},
		{"sprig and goss functions", "matching:\n  sprig:\n    content: {{ \"hello!\" | upper | repeat 5 }}\n    matches: {match-regexp: \"HELLO!HELLO!HELLO!HELLO!HELLO!\"}\n  lower:\n    content: {{ getEnv \"GREETING\" | toLower }}-{{ getEnv \"MISSING\" \"fallback\" }}-{{ getEnv \"MISSING\" }}\n    matches: hello-fallback-\n  token:\n    content: {{ readFile \"token.txt\" }}\n    matches: s3cr3t\n  sub:\n    content: {{ index (findStringSubmatch \"v(\\\\d+)\" \"v42\") 1 }}\n    matches: 42\n  env:\n    content: {{ env \"OS\" }}{{ expandenv \"-$GREETING\" }}\n    matches: debian-Hello\n",
			[]string{"matching sprig: match-regexp \"HELLO!HELLO!HELLO!HELLO!HELLO!\"", "matching lower: \"hello-fallback-\"", "matching token: \"s3cr3t\"", "matching sub: 42", "matching env: \"debian-Hello\""}},
		{"includes rendered", "gossfile:\n  part.yaml: {}\n", []string{"group users-debian: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"goss.yaml": {Data: []byte(tt.doc)},
				"token.txt": {Data: []byte("  s3cr3t\n")},
				"part.yaml": {Data: []byte("group:\n  users-{{ .Env.OS }}: {exists: true}\n")},
			}
			g, err := check.ParseGoss(fsys, "goss.yaml", check.GossTemplate{Vars: vars, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range g.Resources {
				got = append(got, r.Type+" "+r.Key+": "+r.Attrs[0].Expect())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGossVars: --vars (YAML or JSON) with --vars-inline over it, key by
// key; and a goss template given to --spec is rendered, while a
// container-structure-test spec's {{ }} is left alone.
func TestGossVars(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "vars.yaml")
	if err := os.WriteFile(yml, []byte("port: 8000\nusers: [a, b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsn := filepath.Join(dir, "vars.json")
	if err := os.WriteFile(jsn, []byte(`{"port": 9000}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, inline string
		want         map[string]any
		err          string
	}{
		{file: yml, want: map[string]any{"port": 8000, "users": []any{"a", "b"}}},
		{file: jsn, inline: `{"users": ["c"]}`, want: map[string]any{"port": 9000, "users": []any{"c"}}},
		{inline: "port: 1", want: map[string]any{"port": 1}},
		{want: map[string]any{}},
		{inline: "[1, 2]", err: "goss vars-inline: expected a mapping of variables (YAML or JSON), got a list"},
		{file: filepath.Join(dir, "missing.yaml"), err: "read goss vars: open "},
	}
	for _, tt := range tests {
		got, err := check.ReadGossVars(tt.file, tt.inline)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("ReadGossVars(%q, %q) error %v, want %q", tt.file, tt.inline, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ReadGossVars(%q, %q) (-want +got):\n%s", tt.file, tt.inline, diff)
		}
	}

	vars, err := check.ReadGossVars(yml, "")
	if err != nil {
		t.Fatal(err)
	}
	goss := filepath.Join(dir, "goss.yaml")
	doc := "port:\n  tcp:{{ .Vars.port }}:\n    listening: true\nuser:\n{{- range .Vars.users }}\n  {{ . }}: {exists: true}\n{{- end }}\n"
	if err := os.WriteFile(goss, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() (*check.GossSuite, error){
		func() (*check.GossSuite, error) { return check.ReadGossFile(goss, check.GossTemplate{Vars: vars}) },
		func() (*check.GossSuite, error) {
			s, err := check.ParseSpecTemplate(goss, []byte(doc), check.GossTemplate{Vars: vars})
			if err != nil {
				return nil, err
			}
			return s.Goss, nil
		},
	} {
		g, err := read()
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range g.Resources {
			keys = append(keys, r.Type+" "+r.Key)
		}
		if diff := cmp.Diff([]string{"port tcp:8000", "user a", "user b"}, keys); diff != "" {
			t.Errorf("rendered resources (-want +got):\n%s", diff)
		}
	}
	cst := "schemaVersion: 2.0.0\ncommandTests:\n  - name: fmt\n    command: echo\n    args: ['{{ .Config.User }}']\n    expectedOutput: ['{{ .Config.User }}']\n"
	s, err := check.ParseSpecTemplate("cst.yaml", []byte(cst), check.GossTemplate{Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	if s.Goss != nil || len(s.CommandTests) != 1 || s.CommandTests[0].Args[0] != "{{ .Config.User }}" {
		t.Errorf("a container-structure-test spec was rendered: %+v", s)
	}
}
