package examples_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The CI examples are checked against the built binary's --help rather than
// the cobra tree: cmd/imagegate is package main and cannot be imported.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func imagegateBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "examples-imagegate-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "imagegate")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/imagegate/imagegate/cmd/imagegate").CombinedOutput()
		if err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string {
	return "go build ./cmd/imagegate: " + e.err.Error() + "\n" + e.out
}

// commandHelp is what `imagegate PATH --help` says: its subcommands and
// every flag it accepts (its own and the global ones).
type commandHelp struct {
	subcommands []string
	flags       []string
	// runnable: the command does something itself (a group such as
	// `image` only lists its subcommands).
	runnable bool
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]commandHelp{}
	flagRe    = regexp.MustCompile(`^\s+(?:(-\w), )?(--[\w-]+)`)
)

func help(t *testing.T, path []string) commandHelp {
	t.Helper()
	key := strings.Join(path, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[key]; ok {
		return h
	}
	out, err := exec.Command(imagegateBin(t), append(slices.Clone(path), "--help")...).Output()
	if err != nil {
		t.Fatalf("imagegate %s --help: %v", key, err)
	}
	var h commandHelp
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && !strings.HasPrefix(line, " ") {
			section = line
			continue
		}
		switch section {
		case "Usage:":
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] != "[command]" {
				h.runnable = true
			}
		case "Available Commands:":
			if f := strings.Fields(line); len(f) > 0 {
				h.subcommands = append(h.subcommands, f[0])
			}
		case "Flags:", "Global Flags:":
			if m := flagRe.FindStringSubmatch(line); m != nil {
				h.flags = append(h.flags, m[2])
				if m[1] != "" {
					h.flags = append(h.flags, m[1])
				}
			}
		}
	}
	helpCache[key] = h
	return h
}

// invocation is one `imagegate …` command line of an example: the command
// path (image push) and the flags given.
type invocation struct {
	path  []string
	flags []string
	line  string
}

// checkInvocation fails when line names a command or a flag the CLI lacks.
func checkInvocation(t *testing.T, file string, words []string) invocation {
	t.Helper()
	inv := invocation{line: strings.Join(words, " ")}
	h := help(t, nil)
	i := 1
	for ; i < len(words) && slices.Contains(h.subcommands, words[i]); i++ {
		inv.path = append(inv.path, words[i])
		h = help(t, inv.path)
	}
	if len(inv.path) == 0 || !h.runnable {
		t.Errorf("%s: %q names no imagegate command", file, inv.line)
	}
	for _, w := range words[i:] {
		if !strings.HasPrefix(w, "-") {
			continue
		}
		name, _, _ := strings.Cut(w, "=")
		inv.flags = append(inv.flags, name)
		if !slices.Contains(h.flags, name) {
			t.Errorf("%s: %q: imagegate %s has no flag %s", file, inv.line, strings.Join(inv.path, " "), name)
		}
	}
	return inv
}

// shellWords splits a shell command line into words, keeping quoted parts
// together, and cuts it at the first operator, redirection or comment.
func shellWords(line string) [][]string {
	var cmds [][]string
	var cur []string
	var w strings.Builder
	inWord := false
	quote := rune(0)
	flush := func() {
		if inWord {
			cur = append(cur, w.String())
			w.Reset()
			inWord = false
		}
	}
	end := func() {
		flush()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !inWord:
			end()
			return cmds
		case r == ';' || r == '&' || r == '|':
			end()
		case r == '>' || r == '<':
			// A redirection: skip its target.
			flush()
			for i+1 < len(rs) && (rs[i+1] == '>' || rs[i+1] == ' ') {
				i++
			}
			for i+1 < len(rs) && rs[i+1] != ' ' {
				i++
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	end()
	return cmds
}

// scriptLines joins backslash continuations.
func scriptLines(s string) []string {
	return strings.Split(strings.ReplaceAll(s, "\\\n", " "), "\n")
}

// yamlScalars returns every string scalar of a YAML document.
func yamlScalars(n *yaml.Node, out []string) []string {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || n.Tag == "") {
		out = append(out, n.Value)
	}
	for _, c := range n.Content {
		out = yamlScalars(c, out)
	}
	return out
}

var hclStringRe = regexp.MustCompile(`"(imagegate [^"]*)"`)

func TestCIExamples(t *testing.T) {
	tests := []struct {
		file string
		// ref: the example registers the image by reference (a VM image
		// built by Packer has none).
		ref bool
	}{
		{"ci/github-actions.yml", true},
		{"ci/azure-pipelines.yml", true},
		{"ci/gitlab-ci.yml", true},
		{"ci/packer-imagegate.sh+ci/runner.pkr.hcl", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var texts []string
			for _, f := range strings.Split(tt.file, "+") {
				b := read(t, f)
				switch filepath.Ext(f) {
				case ".yml", ".yaml":
					var doc yaml.Node
					if err := yaml.Unmarshal(b, &doc); err != nil {
						t.Fatalf("%s is not well-formed YAML: %v", f, err)
					}
					if len(doc.Content) == 0 {
						t.Fatalf("%s is empty", f)
					}
					texts = append(texts, yamlScalars(&doc, nil)...)
				case ".hcl":
					if !strings.Contains(string(b), `script = "packer-imagegate.sh"`) {
						t.Errorf("%s does not run packer-imagegate.sh", f)
					}
					for _, m := range hclStringRe.FindAllStringSubmatch(string(b), -1) {
						texts = append(texts, m[1])
					}
				default:
					texts = append(texts, string(b))
				}
			}
			var invs []invocation
			for _, text := range texts {
				if text == "imagegate" {
					continue // a name (a job, a variable group), not a command line
				}
				for _, line := range scriptLines(text) {
					for _, words := range shellWords(line) {
						if words[0] == "imagegate" {
							invs = append(invs, checkInvocation(t, tt.file, words))
						}
					}
				}
			}
			// Each example does the whole job: gate, register, roll out.
			want := map[string][]string{
				"scan":          nil,
				"check":         {"-o"},
				"image push":    {"--snapshot", "--check-report"},
				"rollout start": nil,
			}
			if tt.ref {
				want["image push"] = append(want["image push"], "--ref")
			}
			for cmd, flags := range want {
				found := false
				for _, inv := range invs {
					if strings.Join(inv.path, " ") != cmd {
						continue
					}
					found = true
					for _, f := range flags {
						if !slices.Contains(inv.flags, f) {
							t.Errorf("%s: %q lacks %s", tt.file, inv.line, f)
						}
					}
				}
				if !found {
					t.Errorf("%s never runs imagegate %s", tt.file, cmd)
				}
			}
		})
	}
}
