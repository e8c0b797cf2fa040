package runtimes

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// ErrNoVersion is returned by the parsers when the file is readable but does
// not say which version it belongs to.
var ErrNoVersion = errors.New("no version found")

var nodeDefine = regexp.MustCompile(`(?m)^\s*#\s*define\s+NODE_(MAJOR|MINOR|PATCH)_VERSION\s+(\d+)\s*$`)

// ParseNodeHeader returns the version ("20.1.0") that Node.js's
// include/node/node_version.h declares.
func ParseNodeHeader(data []byte) (string, error) {
	var parts [3]string
	for _, m := range nodeDefine.FindAllSubmatch(data, -1) {
		i := map[string]int{"MAJOR": 0, "MINOR": 1, "PATCH": 2}[string(m[1])]
		// The header defines each once; a second definition (inside an
		// #if) must not override the first.
		if parts[i] == "" {
			parts[i] = canonicalInt(string(m[2]))
		}
	}
	if parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", fmt.Errorf("node_version.h: %w", ErrNoVersion)
	}
	return parts[0] + "." + parts[1] + "." + parts[2], nil
}

// canonicalInt drops leading zeros so that "020" and "20" are one version.
func canonicalInt(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return s
	}
	return strconv.FormatUint(n, 10)
}

// ParseJavaRelease returns JAVA_VERSION from a JDK's or JRE's release file
// (shell-style KEY="value" lines).
func ParseJavaRelease(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.TrimSpace(k) != "JAVA_VERSION" {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		if !plausibleVersion(v) {
			return "", fmt.Errorf("release: JAVA_VERSION %q: %w", v, ErrNoVersion)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	return "", fmt.Errorf("release: %w", ErrNoVersion)
}

// ParseGoVersionFile returns the version ("1.26.8") from a GOROOT's VERSION
// file, whose first line is "go1.26.8" (later lines carry the build time).
func ParseGoVersionFile(data []byte) (string, error) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	v, ok := strings.CutPrefix(strings.TrimSpace(string(first)), "go")
	if !ok || !plausibleVersion(v) {
		return "", fmt.Errorf("VERSION: %w", ErrNoVersion)
	}
	return v, nil
}

// plausibleVersion accepts what runtimes use as versions ("17.0.15",
// "1.8.0_292", "1.22rc1", "3.4.0-preview1") and rejects empty or free text,
// so that a stray file named like a marker is not taken for an installation.
func plausibleVersion(v string) bool {
	if v == "" || len(v) > 64 || v[0] < '0' || v[0] > '9' {
		return false
	}
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r == '.', r == '-', r == '_', r == '+', r == '~':
		default:
			return false
		}
	}
	return true
}

// ParsePackageJSON returns the name and version a package.json declares.
func ParsePackageJSON(data []byte) (snapshot.RuntimePackage, error) {
	var pj struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return snapshot.RuntimePackage{}, fmt.Errorf("package.json: %w", err)
	}
	if pj.Name == "" || pj.Version == "" {
		return snapshot.RuntimePackage{}, fmt.Errorf("package.json: name or version missing: %w", ErrNoVersion)
	}
	return snapshot.RuntimePackage{Name: pj.Name, Version: pj.Version}, nil
}

// RbConfig is what a Ruby installation's rbconfig.rb says about itself, with
// make-style $(var) references expanded.
type RbConfig struct {
	// Version is RUBY_PROGRAM_VERSION ("3.1.2").
	Version string
	// Prefix, BinDir and Executable are paths inside the image.
	Prefix, BinDir, Executable string
	// RubyVersion is the library ABI directory name ("3.1.0").
	RubyVersion string
}

var (
	rbConfigLine = regexp.MustCompile(`^\s*CONFIG\["([A-Za-z0-9_]+)"\]\s*=\s*(.*?)\s*$`)
	rbTopDir     = regexp.MustCompile(`^\s*TOPDIR\s*=\s*File\.dirname\(__FILE__\)\.chomp!\(\s*"([^"]*)"\s*\)`)
	rbPrefixExpr = regexp.MustCompile(`^\(\s*TOPDIR\s*\|\|\s*DESTDIR\s*\+\s*"([^"]*)"\s*\)$`)
	rbVarRef     = regexp.MustCompile(`\$\(([A-Za-z0-9_]+)\)`)
)

// ParseRbConfig reads rbconfig.rb, found at file (its path inside the image).
// Ruby computes its prefix at run time from where rbconfig.rb lies (TOPDIR),
// so a relocated installation (a tool cache) reports its real prefix; the
// same rule is applied here.
func ParseRbConfig(data []byte, file string) (RbConfig, error) {
	vars := map[string]string{}
	topDir := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := rbTopDir.FindStringSubmatch(line); m != nil {
			if dir, ok := strings.CutSuffix(path.Dir(file), m[1]); ok && m[1] != "" {
				topDir = dir
				if topDir == "" {
					topDir = "/"
				}
			}
			continue
		}
		m := rbConfigLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, seen := vars[m[1]]; seen {
			continue
		}
		if v, ok := rubyString(m[2]); ok {
			vars[m[1]] = v
			continue
		}
		if p := rbPrefixExpr.FindStringSubmatch(m[2]); p != nil && m[1] == "prefix" {
			vars["prefix"] = p[1]
			if topDir != "" {
				vars["prefix"] = topDir
			}
		}
	}
	if err := sc.Err(); err != nil {
		return RbConfig{}, fmt.Errorf("rbconfig.rb: %w", err)
	}
	expand := newMakeExpander(vars).variable
	c := RbConfig{
		Version:     expand("RUBY_PROGRAM_VERSION"),
		Prefix:      expand("prefix"),
		BinDir:      expand("bindir"),
		RubyVersion: expand("ruby_version"),
	}
	if c.Version == "" && vars["MAJOR"] != "" {
		c.Version = expand("MAJOR") + "." + expand("MINOR") + "." + expand("TEENY")
	}
	if !plausibleVersion(c.Version) {
		return RbConfig{}, fmt.Errorf("rbconfig.rb: %w", ErrNoVersion)
	}
	if c.BinDir == "" && c.Prefix != "" {
		c.BinDir = path.Join(c.Prefix, "bin")
	}
	name := expand("ruby_install_name")
	if name == "" {
		name = "ruby"
	}
	if c.BinDir != "" && path.IsAbs(c.BinDir) && !strings.Contains(name, "/") {
		c.BinDir = path.Clean(c.BinDir)
		c.Executable = path.Join(c.BinDir, name+expand("EXEEXT"))
	}
	if c.Prefix != "" {
		c.Prefix = path.Clean(c.Prefix)
	}
	return c, nil
}

// rubyString decodes a Ruby string literal: "..." with backslash escapes, or
// '...'. Anything else (an expression) is not a plain value.
func rubyString(s string) (string, bool) {
	if len(s) < 2 {
		return "", false
	}
	q := s[0]
	if (q != '"' && q != '\'') || s[len(s)-1] != q {
		return "", false
	}
	body := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == q {
			// An unescaped quote inside means this was an expression such
			// as "a" + "b".
			return "", false
		}
		if c == '\\' && i+1 < len(body) {
			i++
			b.WriteByte(body[i])
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// maxExpanded caps an expanded rbconfig value: real ones are paths and
// compiler flags, and a hostile file must not make the scan build a huge
// string.
const maxExpanded = 4096

// makeExpander replaces $(name) with its value, as RbConfig.expand does.
// Each variable is expanded once (memoised), a reference cycle expands to
// nothing, and values are capped, so no input makes it slow.
type makeExpander struct {
	vars   map[string]string
	done   map[string]string
	active map[string]bool
}

func newMakeExpander(vars map[string]string) *makeExpander {
	return &makeExpander{vars: vars, done: map[string]string{}, active: map[string]bool{}}
}

func (e *makeExpander) variable(name string) string {
	if v, ok := e.done[name]; ok {
		return v
	}
	if e.active[name] {
		return ""
	}
	e.active[name] = true
	v := e.expand(e.vars[name])
	delete(e.active, name)
	e.done[name] = v
	return v
}

func (e *makeExpander) expand(s string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	var b strings.Builder
	for {
		m := rbVarRef.FindStringSubmatchIndex(s)
		if m == nil {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:m[0]])
		b.WriteString(e.variable(s[m[2]:m[3]]))
		s = s[m[1]:]
		if b.Len() > maxExpanded {
			break
		}
	}
	out := b.String()
	if len(out) > maxExpanded {
		out = out[:maxExpanded]
	}
	return out
}

var pathVersion = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)$`)

// versionFromPath returns the version an installation's path names
// (/opt/hostedtoolcache/node/20.1.0/x64, ~/.nvm/versions/node/v20.1.0), the
// closest component to the end winning.
func versionFromPath(p string) string {
	parts := strings.Split(p, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if m := pathVersion.FindStringSubmatch(parts[i]); m != nil {
			return m[1]
		}
	}
	return ""
}

// debianChangelogHead is a Debian changelog's first line:
// "nodejs (18.20.4+dfsg-1~deb12u3) bookworm-security; urgency=high".
var debianChangelogHead = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]* \((?:\d+:)?(\d+\.\d+\.\d+)[^)]*\)`)

// maxChangelogHead bounds what is decompressed of a changelog: only its
// first line is read.
const maxChangelogHead = 4096

// ParseDebianChangelog returns the upstream version ("18.20.4") the newest
// entry of a gzipped Debian changelog (changelog.Debian.gz) packages.
func ParseDebianChangelog(gz []byte) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return "", fmt.Errorf("changelog.Debian.gz: %w", err)
	}
	head := make([]byte, maxChangelogHead)
	n, err := io.ReadFull(zr, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("changelog.Debian.gz: %w", err)
	}
	first, _, _ := bytes.Cut(head[:n], []byte("\n"))
	m := debianChangelogHead.FindSubmatch(first)
	if m == nil {
		return "", fmt.Errorf("changelog.Debian.gz: %w", ErrNoVersion)
	}
	return string(m[1]), nil
}
