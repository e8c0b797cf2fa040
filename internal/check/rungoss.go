package check

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// What goss reads from a running system, read from the image instead: its
// files (links resolved inside it, a link's own mode and owner, as goss's
// Lstat sees them), its /etc/passwd and /etc/group, the snapshot's
// packages, and commands run as dgoss runs them (sh -c, as the image's
// User in its WorkingDir with its Env, in the sandbox).

// defaultGossTimeout is goss's command timeout when none is given.
const defaultGossTimeout = 10 * time.Second

// gossActual yields the system's value of one attribute; an error fails
// it (a file owner with no name in the image).
type gossActual func(attr string) (any, error)

func runGoss(ctx context.Context, snap *snapshot.Snapshot, g *GossSuite, t *source.Tree, run *GossRun) ([]Result, error) {
	var out []Result
	for _, w := range g.Warnings {
		out = append(out, Result{ID: "spec/warning", Origin: OriginSpec, Kind: "spec", Status: StatusInfo, Message: w})
	}
	var img imageConfig
	if snap.Image != nil {
		img = imageConfig{env: snap.Image.Env, user: snap.Image.User, workingDir: snap.Image.WorkingDir}
	}
	r := &gossRun{snap: snap, t: t, img: img}
	byResource := make([][]Result, len(g.Resources))
	var live []int
	for i := range g.Resources {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if run != nil && (isLive(&g.Resources[i]) || isCommand(&g.Resources[i])) {
			live = append(live, i)
			continue
		}
		byResource[i] = r.resource(ctx, &g.Resources[i])
	}
	var runResult []Result
	if len(live) > 0 {
		res := make([]*GossResource, len(live))
		for j, i := range live {
			res[j] = &g.Resources[i]
		}
		liveResults, rr := r.runLive(ctx, res, run)
		for j, i := range live {
			byResource[i] = liveResults[j]
		}
		runResult = []Result{rr}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, rs := range byResource {
		out = append(out, rs...)
	}
	return append(out, runResult...), nil
}

type gossRun struct {
	snap *snapshot.Snapshot
	t    *source.Tree
	img  imageConfig
	rc   *runContext // made for the first command

	accounts *gossAccounts
}

func (r *gossRun) resource(ctx context.Context, res *GossResource) []Result {
	gt := gossTypes[res.Type]
	switch {
	case res.Skip:
		return r.skipped(res, "skip: true in the goss file")
	case gt.skipWhy != "":
		return r.skipped(res, gt.skipWhy)
	case gt.live != "":
		return r.skipped(res, gt.live+needsRun)
	}
	var actual gossActual
	// skipAfterFirst: goss skips the rest of a file, package, user or group
	// when its first attribute (exists, installed) fails or is false.
	skipAfterFirst := true
	switch res.Type {
	case "file":
		actual = r.file(res)
	case "package":
		actual = r.pkg(res)
	case "user":
		actual = r.user(res)
	case "group":
		actual = r.group(res)
	case "matching":
		skipAfterFirst = false
		content := res.content
		if res.asText {
			// goss formats the content with %v and reads it as text.
			s, ok := content.(string)
			if !ok {
				s = fmt.Sprint(content)
			}
			content = gossText(s)
		}
		actual = func(string) (any, error) { return content, nil }
	case "command":
		switch {
		case r.t == nil:
			return r.failedAll(res, errNoTarget)
		case r.t.Runner == nil:
			return r.failedAll(res, errNoRunner)
		}
		return r.command(ctx, res, r.t.Runner.Run, "")
	}
	if needsTree(res.Type) && r.t == nil {
		return r.failedAll(res, errNoTarget)
	}
	return r.evaluate(res, actual, skipAfterFirst)
}

func needsTree(typ string) bool { return typ == "file" || typ == "user" || typ == "group" }

func gossResult(res *GossResource, attr string) Result {
	name := res.Title
	if name == "" {
		name = gossTypes[res.Type].name + ": " + res.Key
		if res.Subject != res.Key {
			name += ": " + res.Subject
		}
	}
	return Result{ID: fmt.Sprintf("spec/goss/%s[%s].%s", res.Type, res.Key, attr), Origin: OriginSpec, Kind: res.Type,
		Status: StatusPass, Name: name}
}

func (r *gossRun) skipped(res *GossResource, why string) []Result {
	var out []Result
	for _, a := range res.Attrs {
		x := gossResult(res, a.Name)
		x.Status = StatusInfo
		x.Message = a.Name + ": skipped: " + why
		x.Evidence = []string{fmt.Sprintf("gossfile: %s:%d", res.File, a.Line)}
		out = append(out, x)
	}
	return out
}

func (r *gossRun) failedAll(res *GossResource, err error) []Result {
	var out []Result
	for _, a := range res.Attrs {
		x := gossResult(res, a.Name)
		x.fail("%s: %v", a.Name, err)
		x.Evidence = []string{fmt.Sprintf("gossfile: %s:%d", res.File, a.Line)}
		out = append(out, x)
	}
	return out
}

func (r *gossRun) evaluate(res *GossResource, actual gossActual, skipAfterFirst bool) []Result {
	var out []Result
	skipWhy := ""
	for i, a := range res.Attrs {
		x := gossResult(res, a.Name)
		x.Evidence = []string{fmt.Sprintf("gossfile: %s:%d", res.File, a.Line)}
		if skipWhy != "" {
			x.Status = StatusInfo
			x.Message = a.Name + ": skipped: " + skipWhy
			out = append(out, x)
			continue
		}
		v, err := actual(a.Name)
		ok := false
		detail := ""
		if err == nil {
			ok, detail, err = a.m.match(v)
		}
		switch {
		case err != nil:
			x.fail("%s: %v", a.Name, err)
		case ok:
			x.Message = fmt.Sprintf("%s: matches expectation: %s", a.Name, a.m)
		default:
			x.fail("%s: expected %s, got %s", a.Name, a.m, formatGot(v))
			if detail != "" {
				x.Evidence = append(x.Evidence, detail)
			}
			if _, isNum := a.m.(eqNumber); isNum && a.Name == "mode" {
				x.Evidence = append(x.Evidence, `goss compares mode as text: quote it ("0644"); YAML reads 0644 as the number 420`)
			}
		}
		if i == 0 && skipAfterFirst && (x.Status == StatusFail || v == false) {
			if x.Status == StatusFail {
				skipWhy = a.Name + " failed"
			} else {
				skipWhy = a.Name + " is false"
			}
		}
		out = append(out, x)
	}
	return out
}

// formatGot shows an actual value; text is shown as its tail.
func formatGot(v any) string {
	if s, ok := v.(gossText); ok {
		if s == "" {
			return `""`
		}
		return strconv.Quote(tailOf(string(s)))
	}
	return formatActual(v)
}

// filePath resolves a goss file path in the image: "~" and "~user" by the
// image's /etc/passwd (the image's User for "~"), a relative path from
// its WorkingDir, as goss in a container of the image would.
func (r *gossRun) filePath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~"); ok {
		name, tail, _ := strings.Cut(rest, "/")
		if name == "" {
			name = cmpOr(r.img.user, "root")
			name, _, _ = strings.Cut(name, ":")
		}
		acc, err := r.readAccounts()
		if err != nil {
			return "", err
		}
		u := acc.user(name)
		if u == nil {
			return "", fmt.Errorf("%s: no user %q in the image's /etc/passwd", p, name)
		}
		return path.Join(u.home, tail), nil
	}
	if !strings.HasPrefix(p, "/") {
		return path.Join("/", r.img.workingDir, p), nil
	}
	return path.Clean(p), nil
}

func (r *gossRun) file(res *GossResource) gossActual {
	if r.t == nil {
		return nil
	}
	p, perr := r.filePath(res.Subject)
	var host string
	var fi os.FileInfo
	var lerr error
	if perr == nil {
		host, fi, lerr = lstatInImage(r.t, p)
	}
	var content *string
	return func(attr string) (any, error) {
		if perr != nil {
			return nil, perr
		}
		if attr == "exists" {
			if lerr != nil && !errors.Is(lerr, os.ErrNotExist) && !errors.Is(lerr, syscall.ENOTDIR) {
				return nil, lerr
			}
			return lerr == nil, nil
		}
		if lerr != nil {
			return nil, lerr
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch attr {
		case "mode":
			if st == nil {
				return nil, errors.New("mode unknown on this platform")
			}
			return fmt.Sprintf("%04o", st.Mode&0o7777), nil
		case "size":
			return int(fi.Size()), nil
		case "uid", "owner":
			if st == nil {
				return nil, errors.New("owner unknown on this platform")
			}
			if attr == "uid" {
				return int(st.Uid), nil
			}
			return r.nameOf(int(st.Uid), false)
		case "gid", "group":
			if st == nil {
				return nil, errors.New("group unknown on this platform")
			}
			if attr == "gid" {
				return int(st.Gid), nil
			}
			return r.nameOf(int(st.Gid), true)
		case "linked-to":
			return os.Readlink(host)
		case "filetype":
			return fileType(fi.Mode()), nil
		case "contents":
			if content == nil {
				c, err := r.readContent(p)
				if err != nil {
					return nil, err
				}
				content = &c
			}
			return gossText(*content), nil
		case "md5", "sha256", "sha512":
			return r.hashFile(p, attr)
		}
		return nil, fmt.Errorf("internal: file attribute %q", attr)
	}
}

// fileType is goss's filetype of an entry.
func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m&os.ModeDevice != 0:
		if m&os.ModeCharDevice != 0 {
			return "character-device"
		}
		return "block-device"
	case m&os.ModeNamedPipe != 0:
		return "pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return "file"
}

// readContent reads a file of the image through its links.
func (r *gossRun) readContent(p string) (string, error) {
	host, err := r.t.HostPath(p)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(host)
	if err != nil {
		return "", err
	}
	s, err := readBounded(host, fi)
	if err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), "content: "))
	}
	return s, nil
}

func (r *gossRun) hashFile(p, algo string) (string, error) {
	host, err := r.t.HostPath(p)
	if err != nil {
		return "", err
	}
	f, err := os.Open(host)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var h hash.Hash
	switch algo {
	case "md5":
		h = md5.New()
	case "sha256":
		h = sha256.New()
	default:
		h = sha512.New()
	}
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s of %s: %w", algo, p, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// gossAccounts are the image's users and groups, line by line as goss
// reads /etc/passwd and /etc/group.
type gossAccounts struct {
	users  []passwdEntry
	groups []gossGroup
}

type gossGroup struct {
	name    string
	gid     int
	members []string
}

func (a *gossAccounts) user(name string) *passwdEntry {
	for i := range a.users {
		if a.users[i].name == name {
			return &a.users[i]
		}
	}
	return nil
}

func (a *gossAccounts) group(name string) *gossGroup {
	for i := range a.groups {
		if a.groups[i].name == name {
			return &a.groups[i]
		}
	}
	return nil
}

func (r *gossRun) readAccounts() (*gossAccounts, error) {
	if r.accounts != nil {
		return r.accounts, nil
	}
	if r.t == nil {
		return nil, errNoTarget
	}
	users, err := readPasswd(r.t)
	if err != nil {
		return nil, err
	}
	acc := &gossAccounts{users: users}
	err = eachLine(r.t, "/etc/group", func(f []string) {
		if len(f) != 4 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		g := gossGroup{name: f[0], gid: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m != "" {
				g.members = append(g.members, m)
			}
		}
		acc.groups = append(acc.groups, g)
	})
	if err != nil {
		return nil, err
	}
	r.accounts = acc
	return acc, nil
}

// nameOf is the user (or group) name of an id in the image.
func (r *gossRun) nameOf(id int, group bool) (string, error) {
	acc, err := r.readAccounts()
	if err != nil {
		return "", err
	}
	if group {
		for _, g := range acc.groups {
			if g.gid == id {
				return g.name, nil
			}
		}
		return "", fmt.Errorf("no group with gid %d in the image's /etc/group", id)
	}
	for _, u := range acc.users {
		if int(u.uid) == id {
			return u.name, nil
		}
	}
	return "", fmt.Errorf("no user with uid %d in the image's /etc/passwd", id)
}

func (r *gossRun) user(res *GossResource) gossActual {
	return func(attr string) (any, error) {
		acc, err := r.readAccounts()
		if err != nil {
			return nil, err
		}
		u := acc.user(res.Subject)
		if attr == "exists" {
			return u != nil, nil
		}
		if u == nil {
			return nil, fmt.Errorf("user %s is not in the image's /etc/passwd", res.Subject)
		}
		switch attr {
		case "uid":
			return int(u.uid), nil
		case "gid":
			return int(u.gid), nil
		case "home":
			return u.home, nil
		case "shell":
			return u.sh, nil
		case "groups":
			// goss: the groups whose gid is the user's or that list it,
			// sorted by name.
			groups := []string{}
			for _, g := range acc.groups {
				if g.gid == int(u.gid) || slices.Contains(g.members, u.name) {
					groups = append(groups, g.name)
				}
			}
			slices.Sort(groups)
			return groups, nil
		}
		return nil, fmt.Errorf("internal: user attribute %q", attr)
	}
}

func (r *gossRun) group(res *GossResource) gossActual {
	return func(attr string) (any, error) {
		acc, err := r.readAccounts()
		if err != nil {
			return nil, err
		}
		g := acc.group(res.Subject)
		if attr == "exists" {
			return g != nil, nil
		}
		if g == nil {
			return nil, fmt.Errorf("group %s is not in the image's /etc/group", res.Subject)
		}
		return g.gid, nil
	}
}

// pkg answers from the snapshot's OS packages (dpkg, rpm, apk), which
// is what goss's package resource queries.
func (r *gossRun) pkg(res *GossResource) gossActual {
	var versions []string
	for _, p := range r.snap.Packages {
		if p.Name == res.Subject && slices.Contains(packageTypes, p.Type) && !slices.Contains(versions, p.Version) {
			versions = append(versions, p.Version)
		}
	}
	return func(attr string) (any, error) {
		if attr == "installed" {
			return len(versions) > 0, nil
		}
		if len(versions) == 0 {
			return nil, fmt.Errorf("package %s is not installed", res.Subject)
		}
		return versions, nil
	}
}

// execFunc runs a command to its end: in a sandbox of its own (a
// Runner's Run) or beside the running entrypoint (Service.Exec). The error
// is non-nil only when it could not be started.
type execFunc func(ctx context.Context, cmd sandbox.Command) (sandbox.Result, error)

// isCommand: a command resource that runs; under --run it runs beside the
// entrypoint, as dgoss's goss runs inside the container.
func isCommand(res *GossResource) bool { return !res.Skip && res.Type == "command" }

// command runs exec with sh -c as goss does, with run, as the image's
// User in its WorkingDir with its Env; retried retry_count times while an
// attribute fails. where, when set, says where it ran, for the evidence.
func (r *gossRun) command(ctx context.Context, res *GossResource, run execFunc, where string) []Result {
	if r.rc == nil {
		r.rc = newRunContext(&Spec{}, r.img, r.t)
	}
	if r.rc.userErr != nil {
		return r.failedAll(res, fmt.Errorf("not run: cannot run as the image's user: %w", r.rc.userErr))
	}
	sh, err := lookPath(r.t, "sh", r.rc.env)
	if err != nil {
		return r.failedAll(res, fmt.Errorf("not run: goss runs commands with sh -c: %w", err))
	}
	timeout := cmp.Or(res.Timeout, defaultGossTimeout)
	var out []Result
	for attempt := 0; attempt <= res.RetryCount; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return out
			case <-time.After(res.RetryDelay):
			}
		}
		var stdout, stderr bytes.Buffer
		ran, err := run(ctx, sandbox.Command{
			Path: sh, Args: []string{"-c", res.Subject}, Env: r.rc.env, Dir: r.rc.dir, User: r.rc.user,
			Stdout: &stdout, Stderr: &stderr, Timeout: timeout, MaxOutput: maxCommandOutput,
		})
		switch {
		case err != nil:
			out = r.failedAll(res, fmt.Errorf("could not start sh -c %s: %w", shellQuote([]string{res.Subject}), err))
		case ran.TimedOut:
			out = r.failedAll(res, fmt.Errorf("command execution timed out (%s)", timeout))
		default:
			out = r.evaluate(res, func(attr string) (any, error) {
				switch attr {
				case "exit-status":
					return ran.ExitCode, nil
				case "stdout":
					return gossText(stdout.String()), nil
				}
				return gossText(stderr.String()), nil
			}, false)
		}
		failed := slices.ContainsFunc(out, func(x Result) bool { return x.Status == StatusFail })
		if !failed {
			break
		}
		for i := range out {
			if out[i].Status == StatusFail {
				out[i].Evidence = append(out[i].Evidence, "command: sh -c "+shellQuote([]string{res.Subject}))
				if where != "" {
					out[i].Evidence = append(out[i].Evidence, where)
				}
				if attempt > 0 {
					out[i].Evidence = append(out[i].Evidence, fmt.Sprintf("attempts: %d", attempt+1))
				}
			}
		}
	}
	return out
}
