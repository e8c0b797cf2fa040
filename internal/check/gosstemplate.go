package check

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"go.yaml.in/yaml/v3"
)

// goss renders every goss file as a Go text/template before it reads it
// (goss-org/goss, docs/gossfile.md "Templates"): .Vars holds the --vars
// file with --vars-inline over it, .Env the environment; the functions are
// text/template's, Sprig's, and goss's own (mkSlice, getEnv, readFile,
// regexMatch, toUpper, toLower, findStringSubmatch), which replace Sprig's
// of the same name; a missing map key is an error. imagegate renders on
// this machine, as `goss render` run here would: .Env is imagegate's own
// environment, readFile reads this machine's files (relative to the
// current directory, as goss's does).

// GossTemplate is what a goss file's template sees.
type GossTemplate struct {
	// Vars is .Vars (ReadGossVars); nil is an empty map, as goss without
	// --vars has.
	Vars map[string]any
	// Env is .Env and what getEnv reads; nil means this process's
	// environment.
	Env map[string]string
}

// maxRendered bounds a rendered goss file, so that a template cannot
// exhaust memory ({{ "x" | repeat 1000000000 }}).
const maxRendered = 16 << 20

// ReadGossVars reads goss's --vars FILE (YAML or JSON; "" for none) and
// applies --vars-inline (a YAML or JSON mapping; "" for none) over it, top-
// level key by key, as goss's "overwrites vars" does.
func ReadGossVars(file, inline string) (map[string]any, error) {
	vars := map[string]any{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read goss vars: %w", err)
		}
		m, err := decodeVars(data)
		if err != nil {
			return nil, fmt.Errorf("goss vars %s: %w", file, err)
		}
		maps.Copy(vars, m)
	}
	if inline != "" {
		m, err := decodeVars([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("goss vars-inline: %w", err)
		}
		maps.Copy(vars, m)
	}
	return vars, nil
}

func decodeVars(data []byte) (map[string]any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	if len(n.Content) == 0 {
		return map[string]any{}, nil
	}
	if top := resolveAlias(n.Content[0]); top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("expected a mapping of variables (YAML or JSON), got a %s", kindName(top))
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "document"
}

// isTemplate: goss renders every file, but one without an action renders
// to itself.
func isTemplate(data []byte) bool { return bytes.Contains(data, []byte("{{")) }

// templateError is text/template's "template: goss:LINE:COL: msg".
var templateError = regexp.MustCompile(`^template: goss:(\d+):(?:\d+:)? ?(.*)$`)

// render renders data as goss would; file names it in errors, readFile
// reads the files the template's readFile names.
func (t GossTemplate) render(file string, data []byte, readFile func(string) ([]byte, error)) ([]byte, error) {
	if !isTemplate(data) {
		return data, nil
	}
	env := t.Env
	if env == nil {
		env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	vars := t.Vars
	if vars == nil {
		vars = map[string]any{}
	}
	funcs := gossFuncs(env, readFile)
	tmpl, err := template.New("goss").Funcs(sprig.TxtFuncMap()).Funcs(funcs).Option("missingkey=error").Parse(string(data))
	if err != nil {
		return nil, templateSpecError(file, err)
	}
	out := &boundedBuffer{max: maxRendered}
	done := make(chan error, 1)
	go func() {
		done <- tmpl.Execute(out, struct {
			Env  map[string]string
			Vars map[string]any
		}{env, vars})
	}()
	// text/template cannot be stopped: a template that loops for ever
	// ({{range 9000000000}}) is abandoned, and the error ends the run.
	select {
	case err := <-done:
		if err != nil {
			return nil, templateSpecError(file, err)
		}
	case <-time.After(maxRenderTime):
		return nil, &SpecError{File: file, Msg: fmt.Sprintf("goss template: still rendering after %s; does a range loop run away?", maxRenderTime)}
	}
	return out.Bytes(), nil
}

// maxRenderTime bounds rendering one goss file.
const maxRenderTime = 10 * time.Second

func templateSpecError(file string, err error) error {
	msg := err.Error()
	if m := templateError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &SpecError{File: file, Line: line, Msg: "goss template: " + strings.Replace(m[2], `executing "goss" `, "", 1)}
	}
	return &SpecError{File: file, Msg: "goss template: " + strings.TrimPrefix(msg, "template: ")}
}

// gossFuncs are goss's own template functions, and bounded versions of
// Sprig's that could otherwise allocate without limit.
func gossFuncs(env map[string]string, readFile func(string) ([]byte, error)) template.FuncMap {
	return template.FuncMap{
		"mkSlice": func(args ...any) []any { return args },
		"readFile": func(name string) (string, error) {
			b, err := readFile(name)
			if err != nil {
				return "", err
			}
			return strings.TrimSpace(string(b)), nil
		},
		"getEnv": func(key string, def ...string) string {
			if v := env[key]; v != "" || len(def) == 0 {
				return v
			}
			return def[0]
		},
		"regexMatch": func(re, s string) (bool, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return false, err
			}
			return c.MatchString(s), nil
		},
		"findStringSubmatch": func(re, s string) ([]string, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return nil, err
			}
			return c.FindStringSubmatch(s), nil
		},
		// Sprig's env and expandenv read .Env too, not this process
		// behind the caller's back.
		"env":       func(key string) string { return env[key] },
		"expandenv": func(s string) string { return os.Expand(s, func(k string) string { return env[k] }) },
		"toUpper":   strings.ToUpper,
		"toLower":   strings.ToLower,
		"repeat": func(count int, s string) (string, error) {
			if count < 0 || (len(s) > 0 && count > maxRendered/len(s)) {
				return "", fmt.Errorf("repeat %d: the result would exceed %d MiB", count, maxRendered>>20)
			}
			return strings.Repeat(s, count), nil
		},
		"until": func(n int) ([]int, error) {
			if n < 0 {
				return boundedRange(0, n, -1)
			}
			return boundedRange(0, n, 1)
		},
		"untilStep": func(start, stop, step int) ([]int, error) {
			return boundedRange(start, stop, step)
		},
	}
}

// maxRange bounds the lists until and untilStep make.
const maxRange = 1 << 16

func boundedRange(start, stop, step int) ([]int, error) {
	var out []int
	if step == 0 || (step > 0) != (stop > start) {
		return out, nil
	}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(out) == maxRange {
			return nil, fmt.Errorf("a range of more than %d numbers", maxRange)
		}
		out = append(out, i)
	}
	return out, nil
}

// boundedBuffer fails a write beyond max, which ends the template.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

var errRenderedTooLarge = errors.New("the rendered goss file exceeds 16 MiB")

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errRenderedTooLarge
	}
	return b.Buffer.Write(p)
}
