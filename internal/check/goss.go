package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/yamlx"
	"go.yaml.in/yaml/v3"
)

// A goss file (goss-org/goss, docs/gossfile.md) read as goss reads it:
// resource types at the top (file:, package:, command:, …), each a mapping
// of resource keys to attributes whose values are goss matchers; gossfile:
// includes other files (relative to the including file, globs allowed),
// their resources merged after the including file's, a later duplicate
// replacing an earlier one. Stricter than goss in one way: an unknown type,
// attribute or matcher is an error naming the line, where goss ignores it.

// GossSuite is a goss file with its includes, ready to run.
type GossSuite struct {
	// Files are the files read, the given one first.
	Files []string
	// Resources in the order goss merges them.
	Resources []GossResource
	// Warnings are notes about the files (a duplicate resource, an empty
	// list that asserts nothing), reported as spec/warning results.
	Warnings []string

	parsed bool
}

// GossResource is one resource of a goss file: `file: {/etc/passwd: {…}}`.
type GossResource struct {
	// Type is goss's key: file, package, command, user, group, port, …
	Type string
	// Key is the resource's key in its file; Subject what it names
	// (the path, exec, name, username, … attribute, else the key).
	Key, Subject string
	Title        string
	Skip         bool
	File         string
	Line         int
	// Timeout bounds a command (goss's default 10 s).
	Timeout time.Duration
	// RetryCount extra attempts RetryDelay apart, for a command that fails.
	RetryCount int
	RetryDelay time.Duration
	// Attrs are the attributes to check, in the order goss validates them.
	Attrs []GossAttr

	content any // matching: the value matched
	asText  bool
	// opts are the parameters of a live resource (kOpt*): string, bool or
	// []string by kind.
	opts map[string]any
}

// GossAttr is one attribute of a resource and its expectation.
type GossAttr struct {
	Name string
	Line int
	m    gossMatcher
}

// Expect is the expectation in the gossfile's terms.
func (a GossAttr) Expect() string { return a.m.String() }

type attrKind int

const (
	kMatch     attrKind = iota // a goss matcher
	kText                      // a matcher; a list is line patterns (contents, stdout)
	kString                    // a plain parameter (path, exec)
	kMillis                    // a timeout in milliseconds
	kDelay                     // a retry delay: milliseconds or a Go duration
	kInt                       // a count
	kBool                      // skip, as-reader
	kAny                       // title, meta and parameters of resources imagegate never runs
	kContent                   // matching's content
	kOptString                 // a parameter of a runtime resource (method, ca-file)
	kOptBool                   // allow-insecure, no-follow-redirects
	kOptList                   // request-headers
)

type gossType struct {
	// name is goss's TypeName, which its output prefixes IDs with.
	name string
	// attrs are the matcher attributes in goss's validation order.
	attrs []string
	text  []string // those read as text
	// params are the other fields; subject names the one that overrides
	// the key.
	params  map[string]attrKind
	subject string
	// required attributes, as goss's documentation lists them.
	required []string
	// skipWhy is set for resources an image does not have; they are
	// reported as skipped with it.
	skipWhy string
	// live names what a resource checked against the running entrypoint
	// is ("a listening port"); without --run it is skipped saying so.
	live string
	// aliases are names goss still reads for an attribute.
	aliases map[string]string
}

// needsRun is why a live resource is skipped without --run.
const needsRun = " needs a running container: pass --run to start the image's entrypoint in the sandbox, as dgoss does"

var gossTypes = map[string]*gossType{
	"file": {name: "File", attrs: []string{"exists", "mode", "owner", "uid", "group", "gid", "linked-to", "filetype", "contents", "size", "md5", "sha256", "sha512"},
		text: []string{"contents"}, subject: "path", params: map[string]attrKind{"path": kString}, required: []string{"exists"},
		aliases: map[string]string{"contains": "contents"}},
	"package": {name: "Package", attrs: []string{"installed", "versions"}, subject: "name",
		params: map[string]attrKind{"name": kString, "retry_count": kInt, "retry_delay": kDelay}, required: []string{"installed"}},
	"command": {name: "Command", attrs: []string{"exit-status", "stdout", "stderr"}, text: []string{"stdout", "stderr"}, subject: "exec",
		params: map[string]attrKind{"exec": kString, "timeout": kMillis, "retry_count": kInt, "retry_delay": kDelay}, required: []string{"exit-status"}},
	"user": {name: "User", attrs: []string{"exists", "uid", "gid", "home", "groups", "shell"}, subject: "username",
		params: map[string]attrKind{"username": kString}, required: []string{"exists"}},
	"group": {name: "Group", attrs: []string{"exists", "gid"}, subject: "groupname",
		params: map[string]attrKind{"groupname": kString}, required: []string{"exists"}},
	"matching": {name: "Matching", attrs: []string{"matches"}, params: map[string]attrKind{"content": kContent, "as-reader": kBool},
		required: []string{"content", "matches"}},
	"kernel-param": {name: "KernelParam", attrs: []string{"value"}, subject: "name", params: map[string]attrKind{"name": kString},
		required: []string{"value"}, skipWhy: "a kernel parameter belongs to the host that runs the container, not to the image"},
	"port": {name: "Port", attrs: []string{"listening", "ip"}, subject: "port", params: map[string]attrKind{"port": kString},
		required: []string{"listening"}, live: "a listening port"},
	"process": {name: "Process", attrs: []string{"running"}, subject: "comm", params: map[string]attrKind{"comm": kString},
		required: []string{"running"}, live: "a process"},
	"service": {name: "Service", attrs: []string{"enabled", "running", "runlevels"}, subject: "name", params: map[string]attrKind{"name": kString},
		skipWhy: "a service is systemd's, upstart's or init's, and a container, like the sandbox, runs only the image's entrypoint: no service manager answers"},
	"http": {name: "HTTP", attrs: []string{"status", "headers", "body"}, text: []string{"headers", "body"}, subject: "url",
		params: map[string]attrKind{"url": kString, "method": kOptString, "allow-insecure": kOptBool, "no-follow-redirects": kOptBool, "timeout": kMillis,
			"request-headers": kOptList, "request-body": kOptString, "username": kOptString, "password": kOptString, "ca-file": kOptString,
			"cert-file": kOptString, "key-file": kOptString, "proxy": kOptString},
		required: []string{"status"}, live: "an HTTP endpoint"},
	"addr": {name: "Addr", attrs: []string{"reachable"}, subject: "address",
		params: map[string]attrKind{"address": kString, "local-address": kOptString, "timeout": kMillis}, required: []string{"reachable"},
		live: "reaching an address"},
	"dns": {name: "DNS", attrs: []string{"resolvable", "addrs"}, subject: "resolve",
		params:   map[string]attrKind{"resolve": kString, "server": kOptString, "timeout": kMillis, "retry_count": kAny, "retry_delay": kAny},
		required: []string{"resolvable"}, aliases: map[string]string{"resolveable": "resolvable"},
		live: "name resolution"},
	"interface": {name: "Interface", attrs: []string{"exists", "addrs", "mtu"}, subject: "name", params: map[string]attrKind{"name": kString},
		required: []string{"exists"}, skipWhy: "a container's network interfaces are the container runtime's (the sandbox's network has loopback only)"},
	"mount": {name: "Mount", attrs: []string{"exists", "opts", "vfs-opts", "source", "filesystem", "usage"}, subject: "mountpoint",
		params: map[string]attrKind{"mountpoint": kString, "timeout": kAny}, required: []string{"exists"},
		skipWhy: "a container's mounts are the container runtime's (volumes, bind mounts, its /proc and /dev), not the image's"},
	"registry": {name: "Registry", attrs: []string{"exists", "value", "type"}, subject: "name", params: map[string]attrKind{"name": kString},
		required: []string{"exists"}, skipWhy: "the Windows registry is not part of a Linux image"},
}

// gossCommon are the fields every resource has.
var gossCommon = map[string]attrKind{"title": kString, "meta": kAny, "skip": kBool}

// gossMaxDepth is goss's limit on nested includes (a loop ends there).
const gossMaxDepth = 50

// IsGoss reports whether a YAML document is a goss file: its top-level
// keys include a goss resource type and none of the spec's own fields.
func IsGoss(top *yaml.Node) bool {
	if top == nil || top.Kind != yaml.MappingNode {
		return false
	}
	found := false
	for i := 0; i < len(top.Content); i += 2 {
		k := top.Content[i].Value
		if specFields[k] {
			return false
		}
		if _, ok := gossTypes[k]; ok || k == "gossfile" {
			found = true
		}
	}
	return found
}

var specFields = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[Spec]()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			m[tag] = true
		}
	}
	return m
}()

// ReadGossFile reads a goss file and its includes from this machine, each
// rendered as a goss template first.
func ReadGossFile(file string, tmpl GossTemplate) (*GossSuite, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read goss file: %w", err)
	}
	return parseGossDocument(file, data, tmpl)
}

// ParseGoss reads the goss file name in fsys and the files it includes
// (relative to the including file; an absolute path from the root of
// fsys), each rendered as a goss template first; the template's readFile
// reads fsys too. Errors are *SpecError with the file and line.
func ParseGoss(fsys fs.FS, name string, tmpl GossTemplate) (*GossSuite, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read goss file: %w", err)
	}
	l := &gossLoader{fsys: fsys, tmpl: tmpl, suite: &GossSuite{}, index: map[string]int{}}
	l.readFile = func(p string) ([]byte, error) {
		return fs.ReadFile(fsys, strings.TrimPrefix(path.Clean("/"+p), "/"))
	}
	return l.finish(name, data)
}

// parseGossDocument reads a goss file of this machine, given by the name
// the user wrote.
func parseGossDocument(name string, data []byte, tmpl GossTemplate) (*GossSuite, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("goss file %s: %w", name, err)
	}
	fsName := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	l := &gossLoader{fsys: os.DirFS("/"), rooted: true, tmpl: tmpl, readFile: os.ReadFile,
		suite: &GossSuite{}, index: map[string]int{}, shown: map[string]string{fsName: name}}
	return l.finish(fsName, data)
}

type gossLoader struct {
	fsys fs.FS
	// rooted: fsys is this machine's root, names in it absolute paths
	// without their "/".
	rooted bool
	tmpl   GossTemplate
	// readFile is the template's readFile.
	readFile func(string) ([]byte, error)
	suite    *GossSuite
	index    map[string]int // type + key → position in suite.Resources
	shown    map[string]string
}

func (l *gossLoader) display(name string) string {
	if s, ok := l.shown[name]; ok {
		return s
	}
	if l.rooted {
		return "/" + name
	}
	return name
}

func (l *gossLoader) finish(name string, data []byte) (*GossSuite, error) {
	if err := l.load(name, data, 0); err != nil {
		return nil, err
	}
	if len(l.suite.Resources) == 0 {
		return nil, &SpecError{File: l.display(name), Msg: "found no goss tests (no resources in the file or its includes)"}
	}
	l.suite.parsed = true
	return l.suite, nil
}

var gossTypeNames = func() []string {
	names := []string{"gossfile"}
	for k := range gossTypes {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}()

func (l *gossLoader) load(name string, data []byte, depth int) error {
	file := l.display(name)
	l.suite.Files = append(l.suite.Files, file)
	rendered, err := l.tmpl.render(file, data, l.readFile)
	if err != nil {
		return err
	}
	top, err := yamlx.Parse(file, rendered)
	if err != nil {
		if isTemplate(data) {
			return fmt.Errorf("%w (in the file as its template rendered it)", err)
		}
		return err
	}
	if top == nil {
		return nil // an empty include adds nothing, as in goss
	}
	d := yamlx.NewDecoder(file)
	if top.Kind != yaml.MappingNode {
		return d.Errorf(top, "", "a goss file is a mapping of resource types (file:, command:, …), got %s", yamlx.Describe(top))
	}
	type include struct {
		key, target string
		line        int
	}
	var includes []include
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], resolveAlias(top.Content[i+1])
		typ := k.Value
		if yamlx.IsNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			return d.Errorf(v, typ, "expected a mapping of %s resources, got %s", typ, yamlx.Describe(v))
		}
		if typ == "gossfile" {
			for j := 0; j+1 < len(v.Content); j += 2 {
				gk, gv := v.Content[j], resolveAlias(v.Content[j+1])
				p := yamlx.JoinPath(typ, gk.Value)
				var g struct {
					File  string `yaml:"file"`
					Skip  bool   `yaml:"skip"`
					Title string `yaml:"title"`
					Meta  any    `yaml:"meta"`
				}
				if err := d.Decode(gv, &g, p); err != nil {
					return err
				}
				if !g.Skip {
					includes = append(includes, include{key: gk.Value, target: cmpOr(g.File, gk.Value), line: gk.Line})
				}
			}
			continue
		}
		gt, ok := gossTypes[typ]
		if !ok {
			return d.Errorf(k, "", "unknown goss resource type %q%s", typ, strings.Replace(yamlx.Suggest(typ, gossTypeNames), "known fields", "known types", 1))
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			r, err := l.parseResource(d, gt, typ, v.Content[j], resolveAlias(v.Content[j+1]))
			if err != nil {
				return err
			}
			l.add(r)
		}
	}
	// goss merges includes in the order of their keys.
	slices.SortStableFunc(includes, func(a, b include) int { return strings.Compare(a.key, b.key) })
	for _, inc := range includes {
		if depth+1 >= gossMaxDepth {
			return &SpecError{File: file, Line: inc.line, Path: "gossfile." + inc.key, Msg: fmt.Sprintf("includes nested %d deep, probably a loop", gossMaxDepth)}
		}
		pattern := inc.target
		if strings.HasPrefix(pattern, "/") {
			pattern = strings.TrimPrefix(path.Clean(pattern), "/")
		} else {
			pattern = path.Join(path.Dir(name), pattern)
		}
		matches, err := fs.Glob(l.fsys, pattern)
		if err != nil {
			return &SpecError{File: file, Line: inc.line, Path: "gossfile." + inc.key, Msg: fmt.Sprintf("glob %q: %v", inc.target, err)}
		}
		if len(matches) == 0 {
			return &SpecError{File: file, Line: inc.line, Path: "gossfile." + inc.key, Msg: fmt.Sprintf("no files match %q", l.display(pattern))}
		}
		for _, m := range matches {
			b, err := fs.ReadFile(l.fsys, m)
			if err != nil {
				return &SpecError{File: file, Line: inc.line, Path: "gossfile." + inc.key, Msg: fmt.Sprintf("read %s: %v", l.display(m), err)}
			}
			if err := l.load(m, b, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// add appends r, or replaces a resource of the same type and key read
// before, as goss's merge does.
func (l *gossLoader) add(r GossResource) {
	id := r.Type + "\x00" + r.Key
	if i, ok := l.index[id]; ok {
		old := l.suite.Resources[i]
		l.suite.Warnings = append(l.suite.Warnings, fmt.Sprintf("%s:%d: %s %q was also defined at %s:%d; the later one counts, as in goss",
			r.File, r.Line, r.Type, r.Key, old.File, old.Line))
		l.suite.Resources[i] = r
		return
	}
	l.index[id] = len(l.suite.Resources)
	l.suite.Resources = append(l.suite.Resources, r)
}

func (l *gossLoader) parseResource(d *yamlx.Decoder, gt *gossType, typ string, k, v *yaml.Node) (GossResource, error) {
	r := GossResource{Type: typ, Key: k.Value, Subject: k.Value, File: d.File, Line: k.Line}
	p := typ + "." + k.Value
	if yamlx.IsNull(v) {
		v = &yaml.Node{Kind: yaml.MappingNode, Line: k.Line}
	}
	if v.Kind != yaml.MappingNode {
		return r, d.Errorf(v, p, "expected a mapping of attributes, got %s", yamlx.Describe(v))
	}
	known := slices.Clone(gt.attrs)
	for name := range gt.params {
		known = append(known, name)
	}
	for name := range gossCommon {
		known = append(known, name)
	}
	slices.Sort(known)
	seen := map[string]bool{}
	attrs := map[string]GossAttr{}
	nodes := map[string]*yaml.Node{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		ak, av := v.Content[i], resolveAlias(v.Content[i+1])
		name := ak.Value
		ap := yamlx.JoinPath(p, name)
		if alias, ok := gt.aliases[name]; ok {
			l.suite.Warnings = append(l.suite.Warnings, fmt.Sprintf("%s:%d: %s: %s is goss's old name for %s; read as %s", d.File, ak.Line, p, name, alias, alias))
			name = alias
		}
		if seen[name] {
			return r, d.Errorf(ak, p, "attribute %q given twice", name)
		}
		seen[name] = true
		kind, isParam := gt.params[name]
		if !isParam {
			kind, isParam = gossCommon[name]
		}
		switch {
		case isParam:
			if err := l.param(d, &r, name, kind, av, ap); err != nil {
				return r, err
			}
		case slices.Contains(gt.attrs, name):
			if yamlx.IsNull(av) {
				return r, d.Errorf(av, ap, "missing value: give the expected value or a matcher")
			}
			if av.Kind == yaml.SequenceNode && len(av.Content) == 0 {
				if slices.Contains(gt.text, name) {
					l.suite.Warnings = append(l.suite.Warnings, fmt.Sprintf("%s:%d: %s: an empty list asserts nothing (as in goss); write \"\" to assert empty output", d.File, ak.Line, ap))
					continue
				}
			}
			m, err := compileGossMatcher(d, av, ap, slices.Contains(gt.text, name))
			if err != nil {
				return r, err
			}
			attrs[name] = GossAttr{Name: name, Line: ak.Line, m: m}
			nodes[name] = av
		default:
			return r, d.Errorf(ak, p, "unknown %s attribute %q%s", typ, name, yamlx.Suggest(name, known))
		}
	}
	for _, req := range gt.required {
		if !seen[req] {
			return r, d.Errorf(k, p, "%s is required for a %s resource", req, typ)
		}
	}
	if a, ok := attrs["matches"]; ok && r.asText {
		// as-reader: the content is text, so a list is line patterns.
		m, err := compileGossMatcher(d, nodes["matches"], p+".matches", true)
		if err != nil {
			return r, err
		}
		a.m = m
		attrs["matches"] = a
	}
	for _, name := range gt.attrs {
		if a, ok := attrs[name]; ok {
			r.Attrs = append(r.Attrs, a)
		}
	}
	return r, nil
}

func (l *gossLoader) param(d *yamlx.Decoder, r *GossResource, name string, kind attrKind, v *yaml.Node, p string) error {
	switch kind {
	case kString:
		var s string
		if err := d.Decode(v, &s, p); err != nil {
			return err
		}
		switch name {
		case "title":
			r.Title = s
		default:
			if s != "" {
				r.Subject = s
			}
		}
	case kBool:
		var b bool
		if err := d.Decode(v, &b, p); err != nil {
			return err
		}
		if name == "skip" {
			r.Skip = b
		} else {
			r.asText = b
		}
	case kInt:
		var n int
		if err := d.Decode(v, &n, p); err != nil {
			return err
		}
		if n < 0 || n > 1000 {
			return d.Errorf(v, p, "expected a count from 0 to 1000, got %d", n)
		}
		r.RetryCount = n
	case kMillis:
		var n int
		if err := d.Decode(v, &n, p); err != nil {
			return err
		}
		if n < 0 || n > 24*3600*1000 {
			return d.Errorf(v, p, "expected a timeout in milliseconds, got %d", n)
		}
		r.Timeout = time.Duration(n) * time.Millisecond
	case kDelay:
		dur, err := parseRetryDelay(v)
		if err != nil {
			return d.Errorf(v, p, "%v", err)
		}
		r.RetryDelay = dur
	case kOptString, kOptBool, kOptList:
		var v2 any
		var err error
		switch kind {
		case kOptString:
			var x string
			err = d.Decode(v, &x, p)
			v2 = x
		case kOptBool:
			var x bool
			err = d.Decode(v, &x, p)
			v2 = x
		default:
			var x []string
			err = d.Decode(v, &x, p)
			v2 = x
		}
		if err != nil {
			return err
		}
		if r.opts == nil {
			r.opts = map[string]any{}
		}
		r.opts[name] = v2
	case kContent:
		var c any
		if err := v.Decode(&c); err != nil {
			return d.Errorf(v, p, "%v", err)
		}
		r.content = normalize(c)
	case kAny:
	}
	return nil
}

// parseRetryDelay reads goss's retry_delay: milliseconds, or a duration
// string ("500ms", "2s").
func parseRetryDelay(v *yaml.Node) (time.Duration, error) {
	if v.Kind == yaml.ScalarNode {
		if n, err := strconv.Atoi(v.Value); err == nil && n >= 0 && n <= 3600*1000 {
			return time.Duration(n) * time.Millisecond, nil
		}
		if dur, err := time.ParseDuration(v.Value); err == nil && dur >= 0 && dur <= time.Hour {
			return dur, nil
		}
	}
	return 0, errors.New("expected milliseconds or a duration such as \"500ms\" (at most an hour)")
}
