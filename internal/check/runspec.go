package check

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

const (
	// maxCommandOutput bounds what a command test keeps of stdout/stderr.
	maxCommandOutput = 1 << 20
	// maxContent bounds how much of a file a content test reads.
	maxContent = 64 << 20
	// tailLines is how much of a failed command's output is shown.
	tailLines = 5
)

var (
	errNoTarget = errors.New("needs the image's files: TARGET was a snapshot file; pass a scan SOURCE (" + source.Prefixes + ") instead")
	errNoRunner = errors.New("needs to run programs, but the scan ran nothing (--exec none, or chroot not permitted); use --exec local or --exec chroot")
)

func runSpec(ctx context.Context, snap *snapshot.Snapshot, s *Spec, t *source.Tree, run *GossRun) ([]Result, error) {
	if s.Goss != nil {
		return runGoss(ctx, snap, s.Goss, t, run)
	}
	var out []Result
	for _, w := range s.Warnings {
		out = append(out, Result{ID: "spec/warning", Origin: OriginSpec, Kind: "spec", Status: StatusInfo, Message: w})
	}
	var img imageConfig
	if snap.Image != nil {
		img = imageConfig{env: snap.Image.Env, user: snap.Image.User, workingDir: snap.Image.WorkingDir}
	}
	if o := s.ContainerRunOptions; o != nil && o.AllocateTty && len(s.CommandTests) > 0 {
		out = append(out, Result{ID: "spec/containerRunOptions/allocateTty", Origin: OriginSpec, Kind: "option", Status: StatusInfo,
			Message: "allocateTty ignored: command tests get pipes, not a terminal"})
	}
	var rc *runContext
	if len(s.CommandTests) > 0 {
		rc = newRunContext(s, img, t)
	}
	for i := range s.CommandTests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, runCommandTest(ctx, rc, &s.CommandTests[i], fmt.Sprintf("spec/commandTests[%d]", i), t))
	}
	var users *idNames
	imageEnv := envOf(img.env)
	for _, list := range []struct {
		name  string
		tests []FileTest
		// how reads the path as container-structure-test does: $VAR
		// expanded against the image's Env, and for existence the entry
		// itself (a link's own mode), not what it points to.
		how fileReading
	}{{"fileTests", s.FileTests, followLinks}, {"fileExistenceTests", s.FileExistenceTests, cstExistence}, {"fileContentTests", s.FileContentTests, cstContent}} {
		for i := range list.tests {
			ft := &list.tests[i]
			if users == nil && (ft.Owner != "" || ft.Group != "") && t != nil {
				users = readIDNames(t)
			}
			out = append(out, runFileTest(ft, fmt.Sprintf("spec/%s[%d]", list.name, i), t, users, list.how, imageEnv))
		}
	}
	for i := range s.LicenseTests {
		out = append(out, runLicenseTest(&s.LicenseTests[i], fmt.Sprintf("spec/licenseTests[%d]", i), t))
	}
	for i := range s.Tools {
		out = append(out, checkTool(snap, &s.Tools[i]))
	}
	for i := range s.Python {
		out = append(out, checkPython(snap, &s.Python[i], fmt.Sprintf("spec/python[%d]", i))...)
	}
	if len(s.Packages) > 0 {
		pkgs := make(map[string][]*snapshot.Package)
		for i := range snap.Packages {
			p := &snap.Packages[i]
			k := p.Type + "/" + p.Name
			pkgs[k] = append(pkgs[k], p)
		}
		for i := range s.Packages {
			out = append(out, checkPackage(pkgs, &s.Packages[i]))
		}
	}
	if s.MetadataTest != nil {
		out = append(out, checkMetadata(snap.Image, s.MetadataTest)...)
	}
	return out, nil
}

func specResult(id, kind, name string) Result {
	return Result{ID: id, Origin: OriginSpec, Kind: kind, Status: StatusPass, Name: name}
}

func (r *Result) fail(format string, args ...any) {
	r.Status = StatusFail
	r.Message = fmt.Sprintf(format, args...)
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// fileReading is how a file test finds its file.
type fileReading int

const (
	followLinks  fileReading = iota // imagegate's fileTests: links resolved inside the image
	cstExistence                    // the entry itself, path expanded
	cstContent                      // links followed, path expanded
)

// lookPath finds name on the image's PATH, inside the image.
func lookPath(t *source.Tree, name string, env []string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return name, nil
	}
	p := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range strings.Split(p, ":") {
		if !strings.HasPrefix(dir, "/") {
			continue
		}
		cand := path.Join(dir, name)
		host, err := t.HostPath(cand)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: not found on the image's PATH (%s)", name, p)
}

func runCommandTest(ctx context.Context, rc *runContext, ct *CommandTest, id string, t *source.Tree) Result {
	r := specResult(id, "command", ct.Name)
	switch {
	case t == nil:
		r.fail("%v", errNoTarget)
		return r
	case t.Runner == nil:
		r.fail("%v", errNoRunner)
		return r
	case rc.refused != "":
		r.fail("not run: %s", rc.refused)
		return r
	case rc.userErr != nil:
		r.fail("not run: cannot run as the image's user: %v", rc.userErr)
		return r
	}
	// As container-structure-test: the test's variables and the command
	// line are expanded against the image's Env (with globalEnvVars), not
	// against each other; a shell script expands its own.
	base := envOf(rc.env)
	e := base.clone()
	for _, v := range ct.EnvVars {
		e.set(v.Key, base.expand(v.Value))
	}
	env := e.list()
	var prog string
	var args []string
	if ct.Shell != "" {
		prog, args = "/bin/sh", []string{"-c", ct.Shell}
	} else {
		prog = base.expand(ct.Command[0])
		for _, a := range ct.Args {
			args = append(args, base.expand(a))
		}
	}
	prog, err := lookPath(t, prog, env)
	if err != nil {
		r.fail("%v", err)
		return r
	}
	var before, after [][]string
	for _, steps := range []struct {
		list [][]string
		out  *[][]string
	}{{ct.Setup, &before}, {ct.Teardown, &after}} {
		for _, argv := range steps.list {
			p, err := lookPath(t, argv[0], env)
			if err != nil {
				r.fail("set-up or tear-down: %v", err)
				return r
			}
			*steps.out = append(*steps.out, append([]string{p}, argv[1:]...))
		}
	}
	timeout := cmp.Or(time.Duration(ct.Timeout), DefaultCommandTimeout)
	var stdout, stderr bytes.Buffer
	res, err := t.Runner.Run(ctx, sandbox.Command{
		Path: prog, Args: args, Env: env, Dir: cmp.Or(ct.Workdir, rc.dir), User: rc.user,
		Before: before, After: after,
		Stdout: &stdout, Stderr: &stderr, Timeout: timeout, MaxOutput: maxCommandOutput,
	})
	if err != nil {
		r.fail("could not start %s: %v", prog, err)
		return r
	}
	var problems []string
	switch {
	case res.TimedOut:
		problems = append(problems, fmt.Sprintf("timed out after %s", timeout))
	case res.Signal != "":
		problems = append(problems, "killed by "+res.Signal)
	case res.ExitCode != ct.ExitCode:
		problems = append(problems, fmt.Sprintf("exit code %d, expected %d", res.ExitCode, ct.ExitCode))
	}
	problems = append(problems, matchAll("stdout", stdout.String(), ct.expectedOutput, ct.excludedOutput)...)
	problems = append(problems, matchAll("stderr", stderr.String(), ct.expectedError, ct.excludedError)...)
	if len(problems) == 0 {
		r.Message = fmt.Sprintf("exit code %d", res.ExitCode)
		return r
	}
	r.fail("%s", problems[0])
	r.Evidence = append(r.Evidence, problems[1:]...)
	r.Evidence = append(r.Evidence, "command: "+shellQuote(append([]string{prog}, args...)))
	if tail := tailOf(stdout.String()); tail != "" {
		r.Evidence = append(r.Evidence, "stdout (tail): "+tail)
	}
	if tail := tailOf(stderr.String()); tail != "" {
		r.Evidence = append(r.Evidence, "stderr (tail): "+tail)
	}
	return r
}

// matchAll checks text against the expected and excluded expressions and
// describes every mismatch.
func matchAll(what, text string, expected, excluded []*regexp.Regexp) []string {
	var out []string
	for _, re := range expected {
		if !re.MatchString(text) {
			out = append(out, fmt.Sprintf("%s does not match %q", what, re.String()))
		}
	}
	for _, re := range excluded {
		if loc := re.FindStringIndex(text); loc != nil {
			out = append(out, fmt.Sprintf("%s matches excluded %q: %q", what, re.String(), lineAround(text, loc[0])))
		}
	}
	return out
}

func lineAround(text string, at int) string {
	start := strings.LastIndexByte(text[:at], '\n') + 1
	end := strings.IndexByte(text[at:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += at
	}
	return truncate(text[start:end], 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tailOf is the last few lines of output, joined with " ⏎ " so that the
// evidence stays one line in every format.
func tailOf(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	for i, l := range lines {
		lines[i] = truncate(l, 300)
	}
	return strings.Join(lines, " ⏎ ")
}

func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// idNames maps user and group names of the image to ids.
type idNames struct {
	users, groups map[string]int
	err           error
}

func readIDNames(t *source.Tree) *idNames {
	n := &idNames{}
	n.users, n.err = readIDFile(t, "/etc/passwd")
	if n.err == nil {
		n.groups, n.err = readIDFile(t, "/etc/group")
	}
	return n
}

// readIDFile reads name:x:id lines (passwd and group share the layout).
func readIDFile(t *source.Tree, p string) (map[string]int, error) {
	host, err := t.HostPath(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if err != nil {
		return nil, fmt.Errorf("read the image's %s: %w", p, err)
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 4)
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if id, err := strconv.Atoi(fields[2]); err == nil {
			if _, dup := m[fields[0]]; !dup {
				m[fields[0]] = id
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the image's %s: %w", p, err)
	}
	return m, nil
}

func runFileTest(ft *FileTest, id string, t *source.Tree, names *idNames, how fileReading, imageEnv *env) Result {
	r := specResult(id, "file", ft.Name)
	if t == nil {
		r.fail("%v", errNoTarget)
		return r
	}
	shouldExist := ft.ShouldExist == nil || *ft.ShouldExist
	p := ft.Path
	if how != followLinks {
		p = imageEnv.expand(p)
	}
	var host string
	var fi os.FileInfo
	var err error
	if how == cstExistence {
		host, fi, err = lstatInImage(t, p)
	} else if host, err = t.HostPath(p); err == nil {
		fi, err = os.Stat(host)
	}
	exists := err == nil
	switch {
	case !shouldExist && exists:
		r.fail("%s exists, expected absent", p)
		return r
	case !shouldExist:
		r.Message = p + " is absent"
		return r
	case !exists:
		if errors.Is(err, os.ErrNotExist) {
			r.fail("%s does not exist", p)
		} else {
			r.fail("%s: %v", p, err)
		}
		return r
	}
	var problems, got []string
	if ft.IsExecutableBy != "" {
		bits := map[string]os.FileMode{"owner": 0o100, "group": 0o010, "other": 0o001, "any": 0o111}[ft.IsExecutableBy]
		if fi.Mode()&bits == 0 {
			problems = append(problems, fmt.Sprintf("not executable by %s (%s)", ft.IsExecutableBy, fi.Mode()))
		}
	}
	if ft.mode != nil {
		want := *ft.mode
		if how == cstExistence && want.withType {
			// container-structure-test compares FileMode.String(), so
			// "-rwxr-xr-x" does not match a setuid file's "urwxr-xr-x".
			want.goForm = true
		}
		if !want.matches(fi.Mode()) {
			problems = append(problems, fmt.Sprintf("mode %s, expected %s", want.format(fi.Mode()), want.text))
		}
		got = append(got, "mode "+want.format(fi.Mode()))
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	checkID := func(what string, want *int, name string, table map[string]int, have uint32) {
		if want == nil && name == "" {
			return
		}
		if st == nil {
			problems = append(problems, what+" unknown on this platform")
			return
		}
		got = append(got, fmt.Sprintf("%s %d", what, have))
		if want != nil && uint32(*want) != have {
			problems = append(problems, fmt.Sprintf("%s %d, expected %d", what, have, *want))
		}
		if name == "" {
			return
		}
		if names == nil || names.err != nil {
			msg := "no name table"
			if names != nil {
				msg = names.err.Error()
			}
			problems = append(problems, fmt.Sprintf("%s %q cannot be resolved: %s", what, name, msg))
			return
		}
		idv, ok := table[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %q is not defined in the image", what, name))
		case uint32(idv) != have:
			problems = append(problems, fmt.Sprintf("%s %d, expected %s (%d)", what, have, name, idv))
		}
	}
	var users, groups map[string]int
	if names != nil {
		users, groups = names.users, names.groups
	}
	if st != nil {
		checkID("uid", ft.UID, ft.Owner, users, st.Uid)
		checkID("gid", ft.GID, ft.Group, groups, st.Gid)
	} else {
		checkID("uid", ft.UID, ft.Owner, users, 0)
		checkID("gid", ft.GID, ft.Group, groups, 0)
	}
	if len(ft.expectedContents)+len(ft.excludedContents) > 0 {
		if how == cstExistence && fi.Mode()&os.ModeSymlink != 0 {
			// Content is the target's, as everywhere else.
			host, _ = t.HostPath(p)
			if fi, err = os.Stat(host); err != nil {
				problems = append(problems, fmt.Sprintf("content: %v", err))
			}
		}
	}
	if len(ft.expectedContents)+len(ft.excludedContents) > 0 && fi != nil {
		content, err := readBounded(host, fi)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			problems = append(problems, matchAll("content", content, ft.expectedContents, ft.excludedContents)...)
		}
	}
	if len(problems) == 0 {
		r.Message = strings.Join(append([]string{p + " exists"}, got...), ", ")
		return r
	}
	r.fail("%s: %s", p, problems[0])
	r.Evidence = problems[1:]
	return r
}

func readBounded(host string, fi os.FileInfo) (string, error) {
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("content: not a regular file (%s)", lsMode(fi.Mode()))
	}
	f, err := os.Open(host)
	if err != nil {
		return "", fmt.Errorf("content: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxContent+1))
	if err != nil {
		return "", fmt.Errorf("content: %w", err)
	}
	if len(b) > maxContent {
		return "", fmt.Errorf("content: larger than %d MiB, not checked", maxContent>>20)
	}
	return string(b), nil
}

// checkTool passes when at least one installation of the name — a tool on
// PATH or a runtime of that kind — has a version the constraint accepts.
func checkTool(snap *snapshot.Snapshot, req *ToolRequirement) Result {
	r := specResult("spec/tools/"+req.Name, "tool-version", "")
	var found []string
	for _, t := range snap.Tools {
		if t.Name == req.Name && t.Version != "" {
			if req.c.Match(t.Version) {
				r.Message = fmt.Sprintf("%s %s at %s", t.Name, t.Version, t.Path)
				return r
			}
			found = append(found, fmt.Sprintf("%s at %s", t.Version, t.Path))
		}
	}
	for _, rt := range snap.Runtimes {
		if rt.Kind == req.Name && rt.Version != "" {
			if req.c.Match(rt.Version) {
				r.Message = fmt.Sprintf("%s %s at %s", rt.Kind, rt.Version, rt.Path)
				return r
			}
			found = append(found, fmt.Sprintf("%s at %s", rt.Version, rt.Path))
		}
	}
	if len(found) == 0 {
		r.fail("%s not found (no tool on PATH with a known version, no runtime of that kind)", req.Name)
		return r
	}
	r.fail("%s %s required, found %s", req.Name, req.Constraint, strings.Join(found, ", "))
	return r
}

func checkPython(snap *snapshot.Snapshot, req *PythonRequirement, id string) []Result {
	sel := cmp.Or(req.Runtime, "*")
	var out []Result
	matched := 0
	for _, rt := range snap.Runtimes {
		if rt.Kind != snapshot.RuntimePython || (req.c != nil && !req.c.Match(rt.Version)) {
			continue
		}
		matched++
		r := specResult(id, "python-module", "python "+rt.Version)
		status := make(map[string]*snapshot.Module, len(rt.Modules))
		for i := range rt.Modules {
			status[rt.Modules[i].Name] = &rt.Modules[i]
		}
		var problems []string
		for _, name := range req.Modules {
			m, ok := status[name]
			switch {
			case !ok:
				problems = append(problems, name+": not found")
			case m.Status != snapshot.StatusOK:
				p := name + ": " + m.Status
				if len(m.MissingLibraries) > 0 {
					p += ": missing " + strings.Join(m.MissingLibraries, ", ")
				} else if m.Error != "" {
					p += ": " + report.FirstLine(m.Error)
				}
				problems = append(problems, p)
			}
		}
		if len(problems) == 0 {
			r.Message = strings.Join(req.Modules, ", ") + " ok at " + rt.Path
		} else {
			r.fail("%s", problems[0])
			r.Evidence = append(problems[1:], "python "+rt.Version+" at "+rt.Path)
		}
		out = append(out, r)
	}
	if matched == 0 {
		r := specResult(id, "python-module", "")
		r.fail("no Python runtime matches %q", sel)
		out = append(out, r)
	}
	return out
}

func checkPackage(pkgs map[string][]*snapshot.Package, req *PackageRequirement) Result {
	r := specResult("spec/packages/"+req.Type+"/"+req.Name, "package", "")
	found := pkgs[req.Type+"/"+req.Name]
	if len(found) == 0 {
		r.fail("%s package %s is not installed", req.Type, req.Name)
		return r
	}
	var versions []string
	for _, p := range found {
		if req.c == nil || req.c.Match(p.Version) {
			r.Message = fmt.Sprintf("%s %s installed", p.Name, p.Version)
			return r
		}
		versions = append(versions, p.Version)
	}
	r.fail("%s %s required, installed %s", req.Name, req.Constraint, strings.Join(versions, ", "))
	return r
}
