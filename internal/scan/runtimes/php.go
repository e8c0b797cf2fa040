package runtimes

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// KindPHP is PHP's runtime kind (snapshot.Runtime.Kind).
const KindPHP = "php"

// phpInterpreter is the part that stands for the php binary itself: a
// library it cannot load stops every extension at once.
const phpInterpreter = "php"

//go:embed probes/php.php
var phpProbe string

// phpBinaryName matches the CLI binaries a PHP prefix holds: php, and
// Debian's versioned php8.2 (the alternatives system links php to it).
var phpBinaryName = regexp.MustCompile(`^php(\d+(\.\d+)?)?$`)

// PHPBuild is what a php binary's own bytes say about its build: the
// version and the paths configure compiled in (PHP_EXTENSION_DIR,
// PHP_CONFIG_FILE_PATH, PHP_CONFIG_FILE_SCAN_DIR).
type PHPBuild struct {
	Version      string
	ExtensionDir string
	ConfigPath   string // the directory php.ini is read from
	ScanDir      string // the conf.d directory; "" when built without one
}

var (
	// php_main's "X-Powered-By: PHP/" PHP_VERSION is concatenated at
	// compile time, so every build carries its version in this form.
	phpPoweredBy = regexp.MustCompile(`X-Powered-By: PHP/(\d+\.\d+\.\d+[0-9A-Za-z.-]*)`)
	// Debian: /usr/lib/php/20220829; source builds:
	// /usr/local/lib/php/extensions/no-debug-non-zts-20220829.
	phpExtDir  = regexp.MustCompile(`(/[\x21-\x7e]*?/php/(?:extensions/[a-z-]+-)?(\d{8}))\x00`)
	phpScanDir = regexp.MustCompile(`/[\x21-\x7e]*/conf\.d\x00`)
)

// ParsePHPBinary reads a php binary's build facts from its bytes, without
// running it. ErrNoVersion when it names no PHP version.
func ParsePHPBinary(data []byte) (PHPBuild, error) {
	var b PHPBuild
	m := phpPoweredBy.FindSubmatch(data)
	if m == nil {
		return b, fmt.Errorf("php: %w in the binary", ErrNoVersion)
	}
	b.Version = string(m[1])
	if m := phpExtDir.FindSubmatch(data); m != nil {
		b.ExtensionDir = string(m[1])
	}
	// configure's --with-config-file-scan-dir is a path ending in conf.d
	// (Debian: /etc/php/8.2/cli/conf.d; the Docker images:
	// /usr/local/etc/php/conf.d); php.ini is read from its parent unless
	// the build has none.
	for _, loc := range phpScanDir.FindAllIndex(data, -1) {
		// A C string of its own, not the tail of a longer one.
		if loc[0] == 0 || data[loc[0]-1] == 0 {
			b.ScanDir = string(data[loc[0] : loc[1]-1])
			break
		}
	}
	if b.ScanDir != "" {
		b.ConfigPath = path.Dir(b.ScanDir)
	}
	return b, nil
}

// PHPExtension is one extension an ini file asks PHP to load.
type PHPExtension struct {
	Name  string // as php -m names it, lower case: sockets, opcache
	Value string // the ini value: sockets.so, sockets, /opt/ext/x.so
	Zend  bool   // zend_extension= (opcache, xdebug)
	File  string // the ini file that asks for it
}

// ParsePHPIni returns the extensions one ini file asks for, in order, and
// the extension_dir it sets ("" when it does not).
func ParsePHPIni(data []byte, file string) (exts []PHPExtension, extensionDir string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' || line[0] == '#' || line[0] == '[' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if q := len(val); q >= 2 && (val[0] == '"' || val[0] == '\'') {
			if end := strings.IndexByte(val[1:], val[0]); end >= 0 {
				val = val[1 : 1+end]
			}
		} else if i := strings.IndexByte(val, ';'); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
		switch key {
		case "extension", "zend_extension":
			if val == "" {
				continue
			}
			name := strings.ToLower(strings.TrimSuffix(path.Base(val), ".so"))
			exts = append(exts, PHPExtension{Name: name, Value: val, Zend: key == "zend_extension", File: file})
		case "extension_dir":
			extensionDir = val
		}
	}
	return exts, extensionDir
}

// readPHP confirms the PHP CLI binaries of a prefix (bin/php, bin/php8.2),
// one runtime per distinct binary.
func readPHP(t *source.Tree, prefix string) ([]snapshot.Runtime, string) {
	entries, err := t.ReadDir(path.Join(prefix, "bin"))
	if err != nil {
		return nil, ""
	}
	var (
		out  []snapshot.Runtime
		seen = map[string]bool{}
	)
	for _, e := range entries {
		if !phpBinaryName.MatchString(e.Name()) {
			continue
		}
		exe := path.Join(prefix, "bin", e.Name())
		if real, err := t.Resolve(exe); err == nil {
			exe = real
		}
		if seen[exe] || !isExecutable(t, exe) {
			continue
		}
		seen[exe] = true
		data, err := readFile(t, exe)
		if err != nil {
			return out, fmt.Sprintf("php at %s: %v", exe, err)
		}
		b, err := ParsePHPBinary(data)
		if err != nil {
			continue // a script or wrapper named php
		}
		out = append(out, snapshot.Runtime{Kind: KindPHP, Version: b.Version, Path: prefix, Executable: exe})
	}
	return out, ""
}

// phpConfig is what a PHP installation's ini files ask for.
type phpConfig struct {
	build        PHPBuild
	extensionDir string // the build's, or the last extension_dir an ini sets
	exts         []PHPExtension
}

// readPHPConfig reads php.ini and the scan directory's *.ini in PHP's own
// order (php.ini, then conf.d alphabetically), as the binary was built to.
func readPHPConfig(t *source.Tree, exe string) (phpConfig, error) {
	var c phpConfig
	data, err := readFile(t, exe)
	if err != nil {
		return c, err
	}
	if c.build, err = ParsePHPBinary(data); err != nil {
		return c, err
	}
	c.extensionDir = c.build.ExtensionDir
	var files []string
	if c.build.ConfigPath != "" {
		files = append(files, path.Join(c.build.ConfigPath, "php.ini"))
	}
	if c.build.ScanDir != "" {
		m, _ := t.Glob(path.Join(c.build.ScanDir, "*.ini"))
		slices.Sort(m)
		files = append(files, m...)
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := readFile(t, f)
		if err != nil {
			continue // no php.ini: PHP runs on its defaults
		}
		exts, dir := ParsePHPIni(data, f)
		if dir != "" {
			c.extensionDir = dir
		}
		for _, e := range exts {
			// PHP warns "Module already loaded" and keeps the first.
			if !seen[e.Name] {
				seen[e.Name] = true
				c.exts = append(c.exts, e)
			}
		}
	}
	return c, nil
}

// phpCandidates are the files PHP's php_load_extension tries for an ini
// value, in its order: the value under extension_dir, then with ".so"
// appended; a value with a slash as it is.
func phpCandidates(extDir, value string) []string {
	if strings.Contains(value, "/") {
		return []string{value}
	}
	if extDir == "" {
		return nil
	}
	return []string{path.Join(extDir, value), path.Join(extDir, value+".so")}
}

// phpLoadError is PHP's startup warning for an extension it cannot load,
// in its own words, with the loader's reason for each file it tried.
func phpLoadError(value string, tried, reasons []string) string {
	parts := make([]string, len(tried))
	for i := range tried {
		parts[i] = tried[i] + " (" + reasons[i] + ")"
	}
	return fmt.Sprintf("PHP Startup: Unable to load dynamic library '%s' (tried: %s)", value, strings.Join(parts, ", "))
}

// checkPHP gives a PHP installation its parts: the extensions its ini files
// ask for (conf.d, php.ini), each a shared object present and resolved
// inside the image, and with execution those compiled in (php -m) and each
// ini extension confirmed loaded by the running PHP, or loaded with dl()
// for PHP's own error.
func checkPHP(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	var warnings []string
	mods := map[string]*snapshot.Module{}
	interp := &snapshot.Module{Name: phpInterpreter, Kind: PartTool, Status: snapshot.StatusOK}
	mods[phpInterpreter] = interp
	if miss := missingLibraries(t, res, r.Executable, path.Join(r.Path, "lib")); len(miss) > 0 {
		interp.Status, interp.Error, interp.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(miss[0]), miss
	}
	c, err := readPHPConfig(t, r.Executable)
	if err != nil {
		return mods, []string{fmt.Sprintf("php at %s: %v; extensions not checked", r.Executable, err)}
	}
	byPart := map[string]*snapshot.Module{}
	var parts []string
	for _, e := range c.exts {
		m := &snapshot.Module{Name: e.Name, Kind: snapshot.ModuleExtension, Status: snapshot.StatusOK}
		mods[e.Name] = m
		tried := phpCandidates(c.extensionDir, e.Value)
		var reasons []string
		loaded := false
		for _, f := range tried {
			if _, err := stat(t, f); err != nil {
				reasons = append(reasons, ldso.NotFoundError(f))
				continue
			}
			if miss := missingLibraries(t, res, f); len(miss) > 0 {
				reasons = append(reasons, ldso.NotFoundError(miss[0]))
				m.MissingLibraries = miss
				continue
			}
			loaded = true
			break
		}
		if !loaded {
			m.Status = snapshot.StatusBroken
			if len(tried) == 0 {
				m.Error = fmt.Sprintf("PHP Startup: Unable to load dynamic library '%s': extension_dir is not set", e.Value)
			} else {
				m.Error = phpLoadError(e.Value, tried, reasons)
			}
		}
		part := "ext:" + e.Value
		if e.Zend {
			part = "zend:" + e.Value
		}
		parts = append(parts, part)
		byPart[part] = m
	}
	if t.Runner == nil || r.Executable == "" {
		return mods, warnings
	}
	out, w := runPartsSweep(ctx, t.Runner, sweepSpec{
		what:    fmt.Sprintf("php at %s", r.Executable),
		parts:   parts,
		timeout: opts.PartTimeout,
		command: func(parts []string) sandbox.Command {
			// The image's own ini files, as every job's php reads them;
			// startup warnings go to stderr, out of the protocol's way,
			// and dl() gives the probe PHP's words for what did not load.
			args := append([]string{"-d", "enable_dl=1", "-d", "display_errors=stderr", "-d", "display_startup_errors=1",
				"-d", "error_reporting=-1", "-r", phpProbe, "--", strconv.FormatInt(opts.PartTimeout.Milliseconds(), 10)}, parts...)
			return sandbox.Command{Path: r.Executable, Args: args,
				Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}}
		},
	})
	if out.hello == nil {
		if interp.Status == snapshot.StatusOK {
			interp.Status = snapshot.StatusImportError
		}
		interp.Error = out.startErr
		return mods, warnings
	}
	if w != "" {
		warnings = append(warnings, w)
	}
	interp.Status, interp.Error, interp.MissingLibraries = snapshot.StatusOK, "", nil
	// What the running PHP has loaded and no ini asked for is compiled
	// in (php -m's Core, date, pcre, ...): the binary holds it.
	for _, name := range out.hello.Modules {
		if _, ok := mods[name]; !ok && name != "" {
			mods[name] = &snapshot.Module{Name: name, Kind: snapshot.ModuleBuiltin, Status: snapshot.StatusOK}
		}
	}
	for part, res := range out.results {
		m := byPart[part]
		if m == nil {
			continue
		}
		if res.Status == snapshot.StatusOK {
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusOK, "", nil
			continue
		}
		if m.Status == snapshot.StatusOK {
			m.Status = res.Status
		}
		m.Error = res.Err // PHP's words over the files'
	}
	return mods, warnings
}
