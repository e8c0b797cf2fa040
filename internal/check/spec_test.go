package check_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
)

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{
			name: "misspelt field in the third file test",
			spec: `fileTests:
  - path: /a
  - path: /b
  - path: /c
    mod: "0755"
`,
			want: `spec.yaml:5: fileTests[2]: unknown field "mod"; did you mean "mode"?`,
		},
		{
			name: "misspelt section",
			spec: "commandTest:\n  - command: /bin/true\n",
			want: `spec.yaml:1: unknown field "commandTest"; did you mean "commandTests"?`,
		},
		{
			name: "unrelated field lists the known ones",
			spec: "fileTests:\n  - path: /a\n    colour: blue\n",
			want: `spec.yaml:3: fileTests[0]: unknown field "colour"; known fields: name, path, shouldExist, mode, permissions, uid, gid, owner, group, expectedContents, excludedContents, isExecutableBy`,
		},
		{
			name: "exit code is not a number",
			spec: "commandTests:\n  - command: /bin/true\n    exitCode: zero\n",
			want: `spec.yaml:3: commandTests[0].exitCode: expected an integer, got "zero"`,
		},
		{
			name: "invalid regular expression",
			spec: "commandTests:\n  - name: x\n    command: /bin/true\n    expectedOutput: [\"ok\", \"(\"]\n",
			want: "spec.yaml:2: commandTests[0].expectedOutput[1]: invalid regular expression: error parsing regexp: missing closing ): `(`",
		},
		{
			name: "bad mode",
			spec: "fileTests:\n  - path: /a\n    mode: rwx\n",
			want: `spec.yaml:2: fileTests[0]: mode "rwx": write it like ls -l ("-rwxr-xr-x") or in octal ("0755")`,
		},
		{
			name: "command and shell",
			spec: "commandTests:\n  - command: /bin/true\n    shell: echo\n",
			want: `spec.yaml:2: commandTests[0]: give either command or shell, not both`,
		},
		{
			name: "neither command nor shell",
			spec: "commandTests:\n  - name: nothing\n",
			want: `spec.yaml:2: commandTests[0]: give command (with args) or shell`,
		},
		{
			name: "relative path",
			spec: "fileExistenceTests:\n  - path: etc/passwd\n",
			want: `spec.yaml:2: fileExistenceTests[0]: path "etc/passwd" must be absolute (a path inside the image)`,
		},
		{
			name: "unknown package type",
			spec: "packages:\n  pip: [requests]\n",
			want: `spec.yaml:2: packages: unknown package type "pip"; use one of apk, deb, rpm`,
		},
		{
			name: "tools is a list",
			spec: "tools:\n  - node\n",
			want: `spec.yaml:2: tools: expected a mapping of tool names to version constraints (node: ">=18 <23"), got a list`,
		},
		{
			name: "entrypoint is a string",
			spec: "metadataTest:\n  entrypoint: /bin/sh\n",
			want: `spec.yaml:2: metadataTest.entrypoint: expected a list, got "/bin/sh"`,
		},
		{
			name: "python without modules",
			spec: "python:\n  - runtime: \"3.*\"\n",
			want: `spec.yaml:2: python[0]: list the modules this runtime must have`,
		},
		{
			name: "bad timeout",
			spec: "commandTests:\n  - command: /bin/true\n    timeout: soon\n",
			want: `spec.yaml:3: commandTests[0].timeout: expected a positive duration such as "30s" or a number of seconds, got "soon"`,
		},
		{
			name: "duplicate field",
			spec: "fileTests:\n  - path: /a\n    path: /b\n",
			want: `spec.yaml:3: fileTests[0]: field "path" given twice`,
		},
		{
			name: "syntax error",
			spec: "fileTests:\n  - path: /a\n    mode: \"0755\n",
			want: "spec.yaml:3: found unexpected end of stream",
		},
		{
			name: "empty",
			spec: "# nothing\n",
			want: "spec.yaml: empty spec: add commandTests, fileTests, tools, python, packages or metadataTest",
		},
		{
			name: "top level list",
			spec: "- a\n",
			want: "spec.yaml:1: expected a mapping of fields, got a list",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := check.ParseSpec("spec.yaml", []byte(tt.spec))
			if err == nil {
				t.Fatalf("ParseSpec accepted:\n%s", tt.spec)
			}
			var se *check.SpecError
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *check.SpecError", err)
			}
			got := err.Error()
			if strings.HasSuffix(tt.want, ":") {
				if !strings.HasPrefix(got, tt.want) {
					t.Errorf("error %q, want prefix %q", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestParseSpecFields(t *testing.T) {
	spec, err := check.ParseSpec("s.yaml", []byte(`schemaVersion: "2.0.0"
commandTests:
  - name: hello
    command: echo
    args: [hi]
    envVars:
      - {key: A, value: b}
    exitCode: 3
    timeout: 2.5
  - shell: "true"
    timeout: 1m
fileTests:
  - path: /etc/passwd
    mode: "-rw-r--r--"
    uid: 0
    owner: root
tools:
  node: ">=18 <23"
  git: ">=2.30"
python:
  - runtime: "3.*"
    modules: [sqlite3, ssl]
packages:
  deb: [libsqlite3-0, "openssl>=3", "tar >= 1.30 <2"]
metadataTest:
  entrypoint: []
  user: app
  labels:
    - {key: org.opencontainers.image.source, value: "^https://", isRegex: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Commands  []string
		Timeouts  []float64
		FileLines []int
		Tools     []string
		Packages  []string
		Python    []string
		Meta      string
	}
	var got summary
	for _, c := range spec.CommandTests {
		got.Commands = append(got.Commands, c.Name)
		got.Timeouts = append(got.Timeouts, float64(c.Timeout)/1e9)
	}
	for _, f := range spec.FileTests {
		got.FileLines = append(got.FileLines, f.Line)
	}
	for _, r := range spec.Tools {
		got.Tools = append(got.Tools, r.Name+" "+r.Constraint)
	}
	for _, p := range spec.Packages {
		got.Packages = append(got.Packages, p.Type+"/"+p.Name+" "+p.Constraint)
	}
	for _, p := range spec.Python {
		got.Python = append(got.Python, p.Runtime+" "+strings.Join(p.Modules, ","))
	}
	m := spec.MetadataTest
	got.Meta = *m.User + " " + m.Labels[0].Key
	if m.Entrypoint == nil || len(*m.Entrypoint) != 0 || m.Cmd != nil {
		t.Errorf("entrypoint %v (want set and empty), cmd %v (want unset)", m.Entrypoint, m.Cmd)
	}
	want := summary{
		Commands:  []string{"hello", "true"},
		Timeouts:  []float64{2.5, 60},
		FileLines: []int{13},
		Tools:     []string{"node >=18 <23", "git >=2.30"},
		Packages:  []string{"deb/libsqlite3-0 ", "deb/openssl >=3", "deb/tar >=1.30 <2"},
		Python:    []string{"3.* sqlite3,ssl"},
		Meta:      "app org.opencontainers.image.source",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parsed spec (-want +got):\n%s", diff)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"fileTests:\n  - path: /a\n    mode: \"0755\"\n",
		"commandTests:\n  - command: /bin/true\n    expectedOutput: [a]\n",
		"tools: {node: \">=18\"}\npackages: {deb: [a, \"b>=1\"]}\n",
		"python: [{runtime: \"3.*\", modules: [ssl]}]\n",
		"metadataTest: {envVars: [{key: A, value: b, isRegex: true}], exposedPorts: [\"80/tcp\"]}\n",
		"a: &x [*x]\n",
		"x: &a [1,2]\ny: &b [*a,*a,*a]\nz: [*b,*b,*b]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := check.ParseSpec("fuzz.yaml", data)
		if err != nil {
			if spec != nil {
				t.Fatalf("spec and error both returned")
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if spec == nil {
			t.Fatal("nil spec without error")
		}
		for _, c := range spec.CommandTests {
			if (len(c.Command) == 0) == (c.Shell == "") || len(c.Command) > 1 || (len(c.Command) == 1 && c.Command[0] == "") {
				t.Fatalf("accepted a command test with command %q and shell %q", c.Command, c.Shell)
			}
		}
	})
}
