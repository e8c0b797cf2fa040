package check

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/source"
)

// What container-structure-test's docker driver does to run a command,
// redone in the sandbox: the image's Env, globalEnvVars and the test's
// envVars with $VAR expanded, the image's User resolved inside the image,
// its WorkingDir, and the entrypoint ignored.

// runContext is what every command test of a spec shares.
type runContext struct {
	env []string // the image's Env with globalEnvVars and run options applied
	// user is nil for root (or no image user at all); home is its HOME.
	user *sandbox.Credential
	home string
	dir  string
	// refused says why command tests cannot run as the spec asks; "" when
	// they can.
	refused string
	userErr error
}

// dockerDefaultCaps is the capability set Docker grants a container, which
// the chroot sandbox keeps too: asking for one of them changes nothing.
var dockerDefaultCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// refusedOptions lists the containerRunOptions the sandbox will not honour,
// each with why; the command tests then fail rather than run differently.
func refusedOptions(o *RunOptions) []string {
	if o == nil {
		return nil
	}
	var out []string
	if o.Privileged {
		out = append(out, "privileged: the sandbox never runs an image's programs privileged")
	}
	if len(o.BindMounts) > 0 {
		out = append(out, "bindMounts "+strings.Join(o.BindMounts, ", ")+": the sandbox mounts nothing of this machine into the image")
	}
	var extra []string
	for _, c := range o.Capabilities {
		name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if !slices.Contains(dockerDefaultCaps, name) {
			extra = append(extra, c)
		}
	}
	if len(extra) > 0 {
		out = append(out, "capabilities "+strings.Join(extra, ", ")+": beyond Docker's default set, which is all the sandbox keeps")
	}
	return out
}

// newRunContext works out the environment, user and directory command
// tests run with.
func newRunContext(s *Spec, img imageConfig, t *source.Tree) *runContext {
	rc := &runContext{dir: img.workingDir}
	if r := refusedOptions(s.ContainerRunOptions); len(r) > 0 {
		rc.refused = "containerRunOptions." + strings.Join(r, "; ")
	}
	env := newEnv()
	env.set("PATH", defaultPath)
	for _, kv := range img.env {
		k, v, _ := strings.Cut(kv, "=")
		env.set(k, v)
	}
	for _, e := range s.GlobalEnvVars {
		env.set(e.Key, env.expand(e.Value))
	}
	userSpec := img.user
	if o := s.ContainerRunOptions; o != nil {
		if o.User != "" {
			userSpec = o.User
		}
		if o.EnvFile != "" {
			kvs, err := readEnvFile(o.EnvFile)
			if err != nil {
				rc.refused = strings.TrimPrefix(rc.refused+"; ", "; ") + "containerRunOptions.envFile: " + err.Error()
			}
			for _, kv := range kvs {
				env.set(kv[0], kv[1])
			}
		}
		for _, k := range o.EnvVars {
			if v, ok := os.LookupEnv(k); ok && v != "" {
				env.set(k, v)
			}
		}
	}
	rc.home = "/root"
	if userSpec != "" && t != nil {
		rc.user, rc.home, rc.userErr = resolveUser(t, userSpec)
	}
	if _, ok := env.values["HOME"]; !ok {
		env.set("HOME", rc.home)
	}
	rc.env = env.list()
	return rc
}

// imageConfig is the part of the image config command tests use.
type imageConfig struct {
	env        []string
	user       string
	workingDir string
}

// env is an ordered environment.
type env struct {
	order  []string
	values map[string]string
}

func newEnv() *env { return &env{values: map[string]string{}} }

func (e *env) set(k, v string) {
	if _, ok := e.values[k]; !ok {
		e.order = append(e.order, k)
	}
	e.values[k] = v
}

// expand replaces $VAR and ${VAR} with their values, unset ones with
// nothing (os.Expand, which container-structure-test uses).
func (e *env) expand(s string) string {
	return os.Expand(s, func(k string) string { return e.values[k] })
}

func (e *env) list() []string {
	out := make([]string, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, k+"="+e.values[k])
	}
	return out
}

func (e *env) clone() *env {
	c := &env{order: slices.Clone(e.order), values: make(map[string]string, len(e.values))}
	for k, v := range e.values {
		c.values[k] = v
	}
	return c
}

func envOf(list []string) *env {
	e := newEnv()
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		e.set(k, v)
	}
	return e
}

// readEnvFile reads KEY=VALUE lines (comments, blank lines and an export
// prefix allowed; one level of quotes removed), as docker --env-file and
// godotenv accept them.
func readEnvFile(p string) ([][2]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE", p, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if v != "" {
			out = append(out, [2]string{strings.TrimSpace(k), v})
		}
	}
	return out, sc.Err()
}

// passwdEntry is one line of the image's /etc/passwd.
type passwdEntry struct {
	name      string
	uid, gid  uint32
	home, sh  string
	groupList []uint32
}

// resolveUser turns a config User ("app", "1000", "app:staff",
// "1000:1000") into ids as a container runtime does inside the image: a
// name must be in /etc/passwd, a number need not be (then its group is 0
// and HOME is /); supplementary groups come from /etc/group. Root is
// returned as nil: the sandbox's own user.
func resolveUser(t *source.Tree, spec string) (*sandbox.Credential, string, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	users, err := readPasswd(t)
	if err != nil && !isNumber(userPart) {
		return nil, "", fmt.Errorf("user %q: %w", spec, err)
	}
	var pw *passwdEntry
	for i := range users {
		u := &users[i]
		if u.name == userPart || (isNumber(userPart) && strconv.FormatUint(uint64(u.uid), 10) == userPart) {
			pw = u
			break
		}
	}
	cred := &sandbox.Credential{}
	home := "/"
	switch {
	case pw != nil:
		cred.UID, cred.GID, home = pw.uid, pw.gid, pw.home
	case isNumber(userPart):
		n, _ := strconv.ParseUint(userPart, 10, 32)
		cred.UID = uint32(n)
	default:
		return nil, "", fmt.Errorf("user %q is not in the image's /etc/passwd", userPart)
	}
	groups, gerr := readGroups(t)
	if hasGroup {
		if isNumber(groupPart) {
			n, _ := strconv.ParseUint(groupPart, 10, 32)
			cred.GID = uint32(n)
		} else if g, ok := groups.byName[groupPart]; ok {
			cred.GID = g
		} else {
			return nil, "", fmt.Errorf("group %q is not in the image's /etc/group%s", groupPart, errSuffix(gerr))
		}
	}
	if pw != nil {
		for _, g := range groups.members[pw.name] {
			if g != cred.GID && !slices.Contains(cred.Groups, g) {
				cred.Groups = append(cred.Groups, g)
			}
		}
	}
	if home == "" {
		home = "/"
	}
	if cred.UID == 0 && cred.GID == 0 && len(cred.Groups) == 0 {
		return nil, home, nil
	}
	return cred, home, nil
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func readPasswd(t *source.Tree) ([]passwdEntry, error) {
	var out []passwdEntry
	err := eachLine(t, "/etc/passwd", func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], sh: f[6]})
		}
	})
	return out, err
}

type groupTable struct {
	byName  map[string]uint32
	byID    map[uint32]string
	members map[string][]uint32
}

func readGroups(t *source.Tree) (groupTable, error) {
	g := groupTable{byName: map[string]uint32{}, byID: map[uint32]string{}, members: map[string][]uint32{}}
	err := eachLine(t, "/etc/group", func(f []string) {
		if len(f) < 4 {
			return
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		if _, dup := g.byName[f[0]]; !dup {
			g.byName[f[0]] = uint32(id)
		}
		if _, dup := g.byID[uint32(id)]; !dup {
			g.byID[uint32(id)] = f[0]
		}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.members[m] = append(g.members[m], uint32(id))
			}
		}
	})
	return g, err
}

// eachLine calls fn with the colon-separated fields of each line of a
// passwd-like file of the image.
func eachLine(t *source.Tree, p string, fn func([]string)) error {
	host, err := t.HostPath(p)
	if err != nil {
		return err
	}
	f, err := os.Open(host)
	if err != nil {
		return fmt.Errorf("read the image's %s: %w", p, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the image's %s: %w", p, err)
	}
	return nil
}

// lstatInImage is os.Lstat of a path inside the image: links on the way
// are followed inside the image, the last element is not (a link's own
// mode and owner, as container-structure-test reads them from the tar).
func lstatInImage(t *source.Tree, p string) (string, os.FileInfo, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		host, err := t.HostPath("/")
		if err != nil {
			return "", nil, err
		}
		fi, err := os.Lstat(host)
		return host, fi, err
	}
	dir, err := t.HostPath(path.Dir(clean))
	if err != nil {
		return "", nil, err
	}
	host := dir + "/" + path.Base(clean)
	fi, err := os.Lstat(host)
	return host, fi, err
}

// licenseDenied are the words container-structure-test fails a copyright
// file for, compared in upper case; libgnutls30 is the package it exempts.
var (
	licenseDenied = []string{"AGPL", "WTFPL"}
	licenseExempt = []string{"libgnutls30"}
)

const debianDocRoot = "/usr/share/doc"

func runLicenseTest(lt *LicenseTest, id string, t *source.Tree) Result {
	r := specResult(id, "license", "")
	if t == nil {
		r.fail("%v", errNoTarget)
		return r
	}
	var problems []string
	checked := 0
	check := func(p string) {
		checked++
		host, err := t.HostPath(p)
		var b []byte
		if err == nil {
			b, err = readLimited(host, maxContent)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			return
		}
		upper := strings.ToUpper(string(b))
		for _, w := range licenseDenied {
			if strings.Contains(upper, w) {
				problems = append(problems, fmt.Sprintf("%s mentions %s", p, w))
			}
		}
	}
	if lt.Debian {
		host, err := t.HostPath(debianDocRoot)
		var entries []os.DirEntry
		if err == nil {
			entries, err = os.ReadDir(host)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", debianDocRoot, err))
		}
		for _, e := range entries {
			// Directories only: a package's doc link to another's is
			// not looked into, as container-structure-test does not.
			if !e.IsDir() || slices.Contains(licenseExempt, e.Name()) {
				continue
			}
			check(path.Join(debianDocRoot, e.Name(), "copyright"))
		}
	}
	for _, f := range lt.Files {
		check(f)
	}
	if len(problems) == 0 {
		r.Message = fmt.Sprintf("%d copyright %s checked, none mentions %s", checked, plural(checked, "file", "files"), strings.Join(licenseDenied, " or "))
		return r
	}
	r.fail("%s", problems[0])
	r.Evidence = problems[1:]
	return r
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func readLimited(host string, limit int64) ([]byte, error) {
	f, err := os.Open(host)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("does not exist")
		}
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
