package check

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/version"
	"github.com/imagegate/imagegate/internal/yamlx"
	"go.yaml.in/yaml/v3"
)

// Spec is a file of declarative tests written by an image's maintainers.
// Field names follow container-structure-test where it has one (commandTests,
// fileExistenceTests, fileContentTests, metadataTest, envVars, exitCode,
// expectedOutput, …) so that its users can bring their tests along; imagegate
// adds fileTests (existence, mode, owner and content in one test), tools,
// python and packages. The format is documented in SCHEMA.md.
type Spec struct {
	// SchemaVersion is accepted for container-structure-test compatibility
	// ("1.0.0" and "2.0.0" read alike: 1.0.0's list-form command is
	// accepted in every version) and otherwise ignored.
	SchemaVersion string `yaml:"schemaVersion"`
	// GlobalEnvVars are set for every command test, their values expanded
	// ($VAR, ${VAR}) against the image's Env as it grows, as
	// container-structure-test does.
	GlobalEnvVars      []EnvVar            `yaml:"globalEnvVars"`
	CommandTests       []CommandTest       `yaml:"commandTests"`
	FileTests          []FileTest          `yaml:"fileTests"`
	FileExistenceTests []FileTest          `yaml:"fileExistenceTests"`
	FileContentTests   []FileTest          `yaml:"fileContentTests"`
	Tools              ToolRequirements    `yaml:"tools"`
	Python             []PythonRequirement `yaml:"python"`
	Packages           PackageRequirements `yaml:"packages"`
	MetadataTest       *MetadataTest       `yaml:"metadataTest"`
	// LicenseTests check Debian copyright files and others, as
	// container-structure-test does.
	LicenseTests []LicenseTest `yaml:"licenseTests"`
	// ContainerRunOptions are container-structure-test's docker run
	// options: what the sandbox can honour safely it does (user, envVars,
	// envFile, capabilities of Docker's default set); what it cannot
	// (privileged, bindMounts, other capabilities) fails the command tests
	// with the reason, rather than running them differently.
	ContainerRunOptions *RunOptions `yaml:"containerRunOptions"`

	// Goss is set when the file was a goss file (IsGoss), which ParseSpec
	// reads with its includes; the fields above are then empty.
	Goss *GossSuite `yaml:"-"`

	// Warnings are notes about the file itself (legacy field names).
	Warnings []string `yaml:"-"`

	parsed bool // set by ParseSpec, which compiles what the tests need
}

// LicenseTest is container-structure-test's licenseTests entry.
type LicenseTest struct {
	// Debian checks /usr/share/doc/*/copyright.
	Debian bool     `yaml:"debian"`
	Files  []string `yaml:"files"`
	Line   int      `yaml:"-"`
}

// RunOptions are container-structure-test's containerRunOptions.
type RunOptions struct {
	// User replaces the image's User for command tests.
	User       string `yaml:"user"`
	Privileged bool   `yaml:"privileged"`
	// AllocateTty is ignored: programs get pipes, not a terminal.
	AllocateTty bool `yaml:"allocateTty"`
	// EnvVars names variables of imagegate's own environment passed to
	// command tests; EnvFile is a KEY=VALUE file (relative to the working
	// directory, as for container-structure-test) passed likewise.
	EnvVars      []string `yaml:"envVars"`
	EnvFile      string   `yaml:"envFile"`
	Capabilities []string `yaml:"capabilities"`
	BindMounts   []string `yaml:"bindMounts"`
	Line         int      `yaml:"-"`
}

// CommandTest runs one program inside the image and checks how it ended.
type CommandTest struct {
	Name string `yaml:"name"`
	// Command is the program (absolute, or looked up on the image's PATH)
	// and Args its arguments, both with $VAR and ${VAR} expanded against
	// the image's Env (and globalEnvVars), as container-structure-test
	// does; a list ("command: [echo, hi]", its schemaVersion 1.0.0 form)
	// is the program followed by arguments. Shell is the alternative: a
	// script run with /bin/sh -c.
	Command Program  `yaml:"command"`
	Args    []string `yaml:"args"`
	Shell   string   `yaml:"shell"`
	// Setup and Teardown are programs run before and after, in the same
	// sandbox (what Setup writes the test sees), as the same user; their
	// exit status and output are not checked.
	Setup    [][]string `yaml:"setup"`
	Teardown [][]string `yaml:"teardown"`
	// EnvVars are added to the image's own environment (its config Env, or
	// a standard PATH and HOME when it has none), their values expanded
	// against it.
	EnvVars []EnvVar `yaml:"envVars"`
	// Workdir replaces the image's WorkingDir.
	Workdir string `yaml:"workdir"`
	// ExitCode is the expected exit status (0 unless given).
	ExitCode int `yaml:"exitCode"`
	// Regular expressions (Go RE2 syntax) that stdout / stderr must match or
	// must not match.
	ExpectedOutput []string `yaml:"expectedOutput"`
	ExcludedOutput []string `yaml:"excludedOutput"`
	ExpectedError  []string `yaml:"expectedError"`
	ExcludedError  []string `yaml:"excludedError"`
	// Timeout kills the program; DefaultCommandTimeout when zero.
	Timeout Duration `yaml:"timeout"`
	Line    int      `yaml:"-"`

	expectedOutput, excludedOutput, expectedError, excludedError []*regexp.Regexp
}

// DefaultCommandTimeout limits a command test that sets no timeout.
const DefaultCommandTimeout = 60 * time.Second

// EnvVar is one environment variable for a command test.
type EnvVar struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Program is a command: one string, or a list of the program and its
// arguments.
type Program []string

// DecodeYAML implements yamlx.Unmarshaler.
func (p *Program) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, path string) error {
	if n.Kind == yaml.ScalarNode {
		*p = Program{n.Value}
		return nil
	}
	var list []string
	if err := d.Decode(n, &list, path); err != nil {
		return d.Errorf(n, path, "expected a program name or a list of the program and its arguments, got %s", yamlx.Describe(n))
	}
	*p = list
	return nil
}

// FileTest checks one path inside the image.
type FileTest struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	// ShouldExist defaults to true; false makes every other check moot.
	ShouldExist *bool `yaml:"shouldExist"`
	// Mode is "-rwxr-xr-x" (ls -l form, type letter included), Go's
	// FileMode.String() form ("Lrwxrwxrwx", "dtrwxrwxrwx", "urwxr-xr-x"),
	// or octal ("0755", "4755"). Permissions is container-structure-test's
	// name for the same thing; give one of them.
	Mode        string `yaml:"mode"`
	Permissions string `yaml:"permissions"`
	UID         *int   `yaml:"uid"`
	GID         *int   `yaml:"gid"`
	// Owner and Group are names looked up in the image's /etc/passwd and
	// /etc/group.
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
	// Regular expressions the file's content must / must not match.
	ExpectedContents []string `yaml:"expectedContents"`
	ExcludedContents []string `yaml:"excludedContents"`
	// IsExecutableBy is owner, group, other or any: that execute bit
	// must be set (of a link's own mode in fileExistenceTests).
	IsExecutableBy string `yaml:"isExecutableBy"`
	Line           int    `yaml:"-"`

	mode             *fileMode
	expectedContents []*regexp.Regexp
	excludedContents []*regexp.Regexp
}

// ToolRequirement is a version constraint on a tool or runtime, written as
// `tools: {node: ">=18 <23"}`.
type ToolRequirement struct {
	Name       string
	Constraint string
	Line       int

	c *version.Constraint
}

// ToolRequirements keeps the order of the spec file.
type ToolRequirements []ToolRequirement

// PythonRequirement requires modules to be ok in every Python runtime whose
// version matches Runtime ("3.*", ">=3.8", "3.11.*"; empty means all).
type PythonRequirement struct {
	Runtime string   `yaml:"runtime"`
	Modules []string `yaml:"modules"`
	Line    int      `yaml:"-"`

	c *version.Constraint
}

// PackageRequirement is one entry of `packages: {deb: ["openssl>=3"]}`.
type PackageRequirement struct {
	Type       string
	Name       string
	Constraint string
	Line       int

	c *version.Constraint
}

// PackageRequirements keeps the order of the spec file.
type PackageRequirements []PackageRequirement

// MetadataTest checks the image config, as container-structure-test's
// metadataTest does. A nil list or string is not checked; an empty list
// means "must be empty".
type MetadataTest struct {
	EnvVars []KeyValue `yaml:"envVars"`
	// Env is the name container-structure-test dropped for EnvVars;
	// accepted with a warning.
	Env []KeyValue `yaml:"env"`
	// UnboundEnvVars must not be set (only their keys count).
	UnboundEnvVars []KeyValue `yaml:"unboundEnvVars"`
	Labels         []KeyValue `yaml:"labels"`
	// Ports are compared as container-structure-test compares them: "8080"
	// is port 8080 of any protocol; "8080/udp" (an imagegate extension)
	// that protocol only.
	ExposedPorts   []string `yaml:"exposedPorts"`
	UnexposedPorts []string `yaml:"unexposedPorts"`
	// Volumes must be declared; UnmountedVolumes must not.
	Volumes          []string  `yaml:"volumes"`
	UnmountedVolumes []string  `yaml:"unmountedVolumes"`
	Entrypoint       *[]string `yaml:"entrypoint"`
	Cmd              *[]string `yaml:"cmd"`
	Workdir          *string   `yaml:"workdir"`
	User             *string   `yaml:"user"`
	Line             int       `yaml:"-"`

	envRe, labelRe []*regexp.Regexp // nil entries where IsRegex is false
}

// KeyValue is an expected environment variable or label; with IsRegex the
// value is a regular expression the whole value must match.
type KeyValue struct {
	Key     string `yaml:"key"`
	Value   string `yaml:"value"`
	IsRegex bool   `yaml:"isRegex"`
}

// Duration is a Go duration ("90s", "2m") or a number of seconds.
type Duration time.Duration

var (
	_ yamlx.Unmarshaler = (*Duration)(nil)
	_ yamlx.Unmarshaler = (*Program)(nil)
	_ yamlx.Unmarshaler = (*ToolRequirements)(nil)
	_ yamlx.Unmarshaler = (*PackageRequirements)(nil)
)

// SpecError is a problem in a spec file, located by line: the one error
// format of imagegate's YAML files.
type SpecError = yamlx.Error

// ParseSpec reads a YAML spec. name is used in error messages, which carry
// the line and the path of the offending value; unknown fields are errors,
// with a suggestion when a known field is close. A goss file (IsGoss) is
// read as goss reads it, its includes relative to name on this machine;
// ParseSpecTemplate gives its template variables.
func ParseSpec(name string, data []byte) (*Spec, error) {
	return ParseSpecTemplate(name, data, GossTemplate{})
}

// ParseSpecTemplate is ParseSpec with the variables a goss file's template
// sees. A file is rendered only when it is a goss file: before rendering
// by its resource types, or, when it is not YAML until rendered, by what
// it renders to; an imagegate or container-structure-test spec is never
// rendered ({{ }} in its commands is theirs).
func ParseSpecTemplate(name string, data []byte, tmpl GossTemplate) (*Spec, error) {
	top, err := yamlx.Parse(name, data)
	if err != nil {
		if !isTemplate(data) {
			return nil, err
		}
		rendered, rerr := tmpl.render(name, data, os.ReadFile)
		if rerr != nil {
			return nil, rerr
		}
		if rtop, perr := yamlx.Parse(name, rendered); perr == nil && IsGoss(rtop) {
			top = rtop
		} else {
			return nil, err
		}
	}
	var s Spec
	if IsGoss(top) {
		g, err := parseGossDocument(name, data, tmpl)
		if err != nil {
			return nil, err
		}
		return &Spec{Goss: g, parsed: true}, nil
	}
	if top == nil {
		return nil, &SpecError{File: name, Msg: "empty spec: add commandTests, fileTests, tools, python, packages or metadataTest"}
	}
	if err := yamlx.NewDecoder(name).Decode(top, &s, ""); err != nil {
		return nil, err
	}
	if err := s.validate(name); err != nil {
		return nil, err
	}
	s.parsed = true
	return &s, nil
}

// DecodeYAML implements yamlx.Unmarshaler.
func (t *Duration) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, path string) error {
	if n.Kind == yaml.ScalarNode {
		if secs, err := strconv.ParseFloat(n.Value, 64); err == nil && secs > 0 && secs < 1e6 {
			*t = Duration(secs * float64(time.Second))
			return nil
		}
		if v, err := time.ParseDuration(n.Value); err == nil && v > 0 {
			*t = Duration(v)
			return nil
		}
	}
	return d.Errorf(n, path, "expected a positive duration such as \"30s\" or a number of seconds, got %s", yamlx.Describe(n))
}

// DecodeYAML implements yamlx.Unmarshaler.
func (r *ToolRequirements) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "expected a mapping of tool names to version constraints (node: \">=18 <23\"), got %s", yamlx.Describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var c string
		if err := d.Decode(v, &c, yamlx.JoinPath(path, k.Value)); err != nil {
			return err
		}
		*r = append(*r, ToolRequirement{Name: k.Value, Constraint: normalizeConstraint(c), Line: k.Line})
	}
	return nil
}

// packageTypes are the package managers a snapshot records, each with the
// version order of its ecosystem.
var packageTypes = []string{snapshot.PackageAPK, snapshot.PackageDeb, snapshot.PackageRPM}

// DecodeYAML implements yamlx.Unmarshaler.
func (r *PackageRequirements) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, path, "expected a mapping of package types to lists (deb: [libsqlite3-0, \"openssl>=3\"]), got %s", yamlx.Describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := yamlx.JoinPath(path, k.Value)
		if !slices.Contains(packageTypes, k.Value) {
			return d.Errorf(k, path, "unknown package type %q; use one of %s", k.Value, strings.Join(packageTypes, ", "))
		}
		var entries []string
		if err := d.Decode(v, &entries, p); err != nil {
			return err
		}
		for j, e := range entries {
			name, constraint := splitRequirement(e)
			if name == "" {
				line := v.Line
				if j < len(v.Content) {
					line = v.Content[j].Line
				}
				return &SpecError{File: d.File, Line: line, Path: fmt.Sprintf("%s[%d]", p, j), Msg: fmt.Sprintf("%q names no package", e)}
			}
			line := v.Line
			if j < len(v.Content) {
				line = v.Content[j].Line
			}
			*r = append(*r, PackageRequirement{Type: k.Value, Name: name, Constraint: constraint, Line: line})
		}
	}
	return nil
}

// splitRequirement splits "openssl>=3" into the name and the constraint.
func splitRequirement(s string) (name, constraint string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "<>=!~^ ")
	if i < 0 {
		return s, ""
	}
	return strings.TrimSpace(s[:i]), normalizeConstraint(s[i:])
}

var bareMinor = regexp.MustCompile(`^\d+(\.\d+)?$`)

var opSpaceRE = regexp.MustCompile(`([<>=!~^]+)\s+`)

// normalizeConstraint accepts ">= 1.30" for ">=1.30", as people write both.
func normalizeConstraint(s string) string {
	return opSpaceRE.ReplaceAllString(strings.TrimSpace(s), "$1")
}

// validate compiles what the tests need and reports the first problem.
func (s *Spec) validate(file string) error {
	errAt := func(line int, path, format string, args ...any) error {
		return &SpecError{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	compile := func(line int, path string, exprs []string) ([]*regexp.Regexp, error) {
		var out []*regexp.Regexp
		for i, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, errAt(line, fmt.Sprintf("%s[%d]", path, i), "invalid regular expression: %v", err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	var err error
	for i := range s.CommandTests {
		t := &s.CommandTests[i]
		p := fmt.Sprintf("commandTests[%d]", i)
		if len(t.Command) > 1 {
			t.Args = append(slices.Clone(t.Command[1:]), t.Args...)
			t.Command = t.Command[:1]
		}
		switch {
		case len(t.Command) == 0 && t.Shell == "":
			return errAt(t.Line, p, "give command (with args) or shell")
		case len(t.Command) == 1 && t.Command[0] == "":
			return errAt(t.Line, p, "command is empty")
		case len(t.Command) != 0 && t.Shell != "":
			return errAt(t.Line, p, "give either command or shell, not both")
		case t.Shell != "" && len(t.Args) > 0:
			return errAt(t.Line, p, "args go with command; put them in the shell script instead")
		}
		for _, steps := range []struct {
			name string
			list [][]string
		}{{"setup", t.Setup}, {"teardown", t.Teardown}} {
			for j, argv := range steps.list {
				if len(argv) == 0 || argv[0] == "" {
					return errAt(t.Line, fmt.Sprintf("%s.%s[%d]", p, steps.name, j), "empty command; give the program and its arguments")
				}
			}
		}
		if t.Name == "" {
			t.Name = strings.TrimSpace(strings.Join(t.Command, " ") + " " + strings.Join(t.Args, " ") + t.Shell)
		}
		for j, e := range t.EnvVars {
			if e.Key == "" || strings.Contains(e.Key, "=") {
				return errAt(t.Line, fmt.Sprintf("%s.envVars[%d]", p, j), "key %q is not a variable name", e.Key)
			}
		}
		if t.expectedOutput, err = compile(t.Line, p+".expectedOutput", t.ExpectedOutput); err != nil {
			return err
		}
		if t.excludedOutput, err = compile(t.Line, p+".excludedOutput", t.ExcludedOutput); err != nil {
			return err
		}
		if t.expectedError, err = compile(t.Line, p+".expectedError", t.ExpectedError); err != nil {
			return err
		}
		if t.excludedError, err = compile(t.Line, p+".excludedError", t.ExcludedError); err != nil {
			return err
		}
	}
	for _, list := range []struct {
		name  string
		tests []FileTest
	}{{"fileTests", s.FileTests}, {"fileExistenceTests", s.FileExistenceTests}, {"fileContentTests", s.FileContentTests}} {
		for i := range list.tests {
			t := &list.tests[i]
			p := fmt.Sprintf("%s[%d]", list.name, i)
			// container-structure-test expands $VAR in its own test kinds.
			expands := list.name != "fileTests" && strings.HasPrefix(t.Path, "$")
			if !strings.HasPrefix(t.Path, "/") && !expands {
				return errAt(t.Line, p, "path %q must be absolute (a path inside the image)", t.Path)
			}
			if t.Name == "" {
				t.Name = t.Path
			}
			if t.Mode != "" && t.Permissions != "" {
				return errAt(t.Line, p, "give mode or permissions, not both")
			}
			switch t.IsExecutableBy {
			case "", "owner", "group", "other", "any":
			default:
				return errAt(t.Line, p+".isExecutableBy", "%q: use owner, group, other or any", t.IsExecutableBy)
			}
			if m := cmpOr(t.Mode, t.Permissions); m != "" {
				fm, err := parseFileMode(m)
				if err != nil {
					return errAt(t.Line, p, "%v", err)
				}
				t.mode = &fm
			}
			if t.expectedContents, err = compile(t.Line, p+".expectedContents", t.ExpectedContents); err != nil {
				return err
			}
			if t.excludedContents, err = compile(t.Line, p+".excludedContents", t.ExcludedContents); err != nil {
				return err
			}
		}
	}
	for i := range s.Tools {
		r := &s.Tools[i]
		p := "tools." + r.Name
		if r.Name == "" {
			return errAt(r.Line, "tools", "empty tool name")
		}
		if r.c, err = version.ParseConstraint(version.SchemeForTool(r.Name), r.Constraint); err != nil {
			return errAt(r.Line, p, "version constraint %q: %v", r.Constraint, err)
		}
	}
	for i := range s.Python {
		r := &s.Python[i]
		p := fmt.Sprintf("python[%d]", i)
		if len(r.Modules) == 0 {
			return errAt(r.Line, p, "list the modules this runtime must have")
		}
		if r.Runtime != "" && r.Runtime != "*" {
			sel := r.Runtime
			if bareMinor.MatchString(sel) {
				sel += ".*" // "3.12" means any 3.12, not 3.12.0
			}
			if r.c, err = version.ParseConstraint(version.SchemeForRuntime(snapshot.RuntimePython), sel); err != nil {
				return errAt(r.Line, p+".runtime", "version selector %q: %v", r.Runtime, err)
			}
		}
	}
	for i := range s.Packages {
		r := &s.Packages[i]
		if r.Constraint == "" {
			continue
		}
		if r.c, err = version.ParseConstraint(version.SchemeForPackage(r.Type), r.Constraint); err != nil {
			return errAt(r.Line, "packages."+r.Type, "version constraint %q for %s: %v", r.Constraint, r.Name, err)
		}
	}
	for i, e := range s.GlobalEnvVars {
		if e.Key == "" || strings.Contains(e.Key, "=") {
			return errAt(0, fmt.Sprintf("globalEnvVars[%d]", i), "key %q is not a variable name", e.Key)
		}
	}
	for i, l := range s.LicenseTests {
		if !l.Debian && len(l.Files) == 0 {
			return errAt(l.Line, fmt.Sprintf("licenseTests[%d]", i), "give debian: true or files to check")
		}
		for j, f := range l.Files {
			if !strings.HasPrefix(f, "/") {
				return errAt(l.Line, fmt.Sprintf("licenseTests[%d].files[%d]", i, j), "path %q must be absolute (a path inside the image)", f)
			}
		}
	}
	if m := s.MetadataTest; m != nil && len(m.Env) > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: metadataTest.env is the name container-structure-test dropped; read as envVars", file, m.Line))
		m.EnvVars = append(m.EnvVars, m.Env...)
		m.Env = nil
	}
	if m := s.MetadataTest; m != nil {
		for _, kv := range []struct {
			name string
			list []KeyValue
			out  *[]*regexp.Regexp
		}{{"envVars", m.EnvVars, &m.envRe}, {"labels", m.Labels, &m.labelRe}} {
			for j, e := range kv.list {
				p := fmt.Sprintf("metadataTest.%s[%d]", kv.name, j)
				if e.Key == "" {
					return errAt(m.Line, p, "key is empty")
				}
				var re *regexp.Regexp
				if e.IsRegex {
					if re, err = regexp.Compile(e.Value); err != nil {
						return errAt(m.Line, p, "invalid regular expression: %v", err)
					}
				}
				*kv.out = append(*kv.out, re)
			}
		}
	}
	if s.empty() {
		return errAt(0, "", "spec has no tests: add commandTests, fileTests, tools, python, packages or metadataTest")
	}
	return nil
}

func (s *Spec) empty() bool {
	return len(s.CommandTests)+len(s.FileTests)+len(s.FileExistenceTests)+len(s.FileContentTests)+
		len(s.Tools)+len(s.Python)+len(s.Packages)+len(s.LicenseTests) == 0 && s.MetadataTest == nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
