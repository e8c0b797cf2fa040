package runtimes

import (
	"archive/zip"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Part kinds (snapshot.Module.Kind) of the runtimes other than Python.
const (
	// PartModule is a module of the runtime's standard library (a Java
	// module, a Node.js built-in, a Go standard package, a Ruby extension).
	PartModule = "module"
	// PartTrustStore is the runtime's own store of trusted certificates.
	PartTrustStore = "trust-store"
	// PartCapability is something the build was made with (Node's OpenSSL
	// and ICU, Go's cgo).
	PartCapability = "capability"
	// PartTool is a program of the installation (javac, npm, go's vet).
	PartTool = "tool"
)

// Java part names that are not modules. Java module names are dotted
// identifiers, so these cannot clash with one.
const (
	javaTrustStore = "cacerts"
	javaCompiler   = "javac"
	javaArchiver   = "jar"
)

//go:embed probes/Probe.class
var javaProbeClass []byte

// javaProbeJar is probes/Probe.class in a jar, built once: the JVM reads it
// through its standard input (see javaSweep).
func javaProbeJar() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "Probe.class", Method: zip.Store})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(javaProbeClass); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// javaFeature is the release line: 8 for "1.8.0_392", 17 for "17.0.15".
func javaFeature(v string) int {
	nums := strings.FieldsFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if len(nums) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(nums[0])
	if n == 1 && len(nums) > 1 {
		n, _ = strconv.Atoi(nums[1])
	}
	return n
}

// javaECModule is the module that carries the SunEC provider: jdk.crypto.ec
// from 9 to 21, java.base from 22 (JDK-8308398), none for 8 (lib/ext).
func javaECModule(feature int) string {
	switch {
	case feature >= 22:
		return "java.base"
	case feature >= 9:
		return "jdk.crypto.ec"
	}
	return ""
}

// javaParts is one Java installation's parts, statically.
type javaParts struct {
	feature int
	jdk     bool
	mods    map[string]*snapshot.Module
	// sweep are the parts the probe checks, in order.
	sweep []string
	// attr maps a probe part to the module entry it decides.
	attr     map[string]string
	warnings []string
}

// javaStatic gives each module of the runtime image a status from its files:
// the release file's MODULES, compared with the full JDK of that feature
// version when the install is a JDK; the trust store read as the JVM reads
// it; the launcher's and the VM's shared libraries resolved; javac and jar
// in a JDK.
func javaStatic(t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime) *javaParts {
	p := &javaParts{feature: javaFeature(r.Version), mods: map[string]*snapshot.Module{}, attr: map[string]string{}}
	rel, _ := readFile(t, path.Join(r.Path, "release"))
	listed := releaseModules(rel)
	p.jdk = isExecutable(t, path.Join(r.Path, "bin", "javac")) || listed["jdk.compiler"]
	for name := range listed {
		p.mods[name] = &snapshot.Module{Name: name, Kind: PartModule, Status: snapshot.StatusOK}
	}
	if p.jdk && len(listed) > 0 {
		want, known := ExpectedParts("java", strconv.Itoa(p.feature))
		if !known {
			p.warnings = append(p.warnings, fmt.Sprintf("java at %s: no module list for a full JDK %d; only the modules its release file lists are checked", r.Path, p.feature))
		}
		for _, name := range want {
			if !listed[name] {
				p.mods[name] = &snapshot.Module{Name: name, Kind: PartModule, Status: snapshot.StatusMissing,
					Error: fmt.Sprintf("java.lang.module.FindException: Module %s not found (a full JDK %d has it; this one's release file does not list it)", name, p.feature)}
			}
		}
	}
	if ec := javaECModule(p.feature); ec != "" {
		if _, ok := p.mods[ec]; !ok && len(listed) > 0 {
			// Left out by jlink: the runtime starts, and every TLS
			// handshake that needs an EC key or ECDHE fails.
			p.mods[ec] = &snapshot.Module{Name: ec, Kind: PartModule, Status: snapshot.StatusMissing,
				Error: fmt.Sprintf("java.lang.module.FindException: Module %s not found (not linked into this runtime image: EC keys and ECDHE TLS handshakes fail without it)", ec)}
		}
		p.attr["ec"] = ec
	}
	if base := p.mods["java.base"]; base != nil || len(listed) == 0 {
		if base == nil && p.feature >= 9 {
			base = &snapshot.Module{Name: "java.base", Kind: PartModule, Status: snapshot.StatusOK}
			p.mods["java.base"] = base
		}
		if base != nil {
			javaLibraries(t, res, r, base, p.feature)
		}
	}
	p.mods[javaTrustStore] = javaTrustStoreStatic(t, r.Path)
	if p.jdk {
		for _, tool := range []string{javaCompiler, javaArchiver} {
			m := &snapshot.Module{Name: tool, Kind: PartTool, Status: snapshot.StatusOK}
			exe := path.Join(r.Path, "bin", tool)
			if !isExecutable(t, exe) {
				m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("%s: no such file in this JDK", exe)
			} else if miss := missingLibraries(t, res, exe, path.Join(r.Path, "lib")); len(miss) > 0 {
				m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(miss[0]), miss
			}
			p.mods[tool] = m
		}
	}
	for _, name := range sortedKeys(p.mods) {
		if m := p.mods[name]; m.Kind == PartModule && m.Status != snapshot.StatusMissing {
			p.sweep = append(p.sweep, "module:"+name)
			p.attr["module:"+name] = name
		}
	}
	if p.attr["ec"] != "" {
		p.sweep = append(p.sweep, "ec")
	}
	p.sweep = append(p.sweep, "trust")
	p.attr["trust"] = javaTrustStore
	if p.jdk && p.feature >= 9 {
		for _, tool := range []string{javaCompiler, javaArchiver} {
			p.sweep = append(p.sweep, "tool:"+tool)
			p.attr["tool:"+tool] = tool
		}
	}
	return p
}

// releaseModules is the release file's MODULES="java.base java.logging ...".
func releaseModules(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k != "MODULES" {
			continue
		}
		for _, m := range strings.Fields(strings.Trim(v, `"'`)) {
			out[m] = true
		}
	}
	return out
}

// javaLibraries marks java.base broken when the JVM cannot start: its
// module image is gone, or the launcher's or the VM's libraries do not
// resolve inside the image.
func javaLibraries(t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, base *snapshot.Module, feature int) {
	lib := path.Join(r.Path, "lib")
	if feature == 8 {
		lib = path.Join(r.Path, "jre", "lib", "amd64")
		if !isDir(t, lib) {
			lib = path.Join(r.Path, "lib", "amd64")
		}
	} else if fi, err := stat(t, path.Join(lib, "modules")); err != nil || fi.Size() == 0 {
		base.Status, base.Error = snapshot.StatusBroken, fmt.Sprintf("%s: the runtime image is missing: Error occurred during initialization of VM", path.Join(lib, "modules"))
		return
	}
	var missing []string
	for _, f := range []string{r.Executable, path.Join(lib, "server", "libjvm.so"), path.Join(lib, "libjava.so")} {
		for _, so := range missingLibraries(t, res, f, lib, path.Join(lib, "server")) {
			if !contains(missing, so) {
				missing = append(missing, so)
			}
		}
	}
	if len(missing) > 0 {
		base.Status, base.Error, base.MissingLibraries = snapshot.StatusBroken, ldso.NotFoundError(missing[0]), missing
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// javaTrustStoreStatic reads lib/security/cacerts (or the jssecacerts that
// overrides it), following links inside the image as the JVM would.
func javaTrustStoreStatic(t *source.Tree, prefix string) *snapshot.Module {
	m := &snapshot.Module{Name: javaTrustStore, Kind: PartTrustStore, Status: snapshot.StatusOK}
	sec := path.Join(prefix, "lib", "security")
	if !isDir(t, sec) && isDir(t, path.Join(prefix, "jre", "lib", "security")) {
		sec = path.Join(prefix, "jre", "lib", "security") // Java 8 JDK
	}
	file := path.Join(sec, "cacerts")
	if _, err := stat(t, path.Join(sec, "jssecacerts")); err == nil {
		file = path.Join(sec, "jssecacerts")
	}
	shown := file
	var (
		data []byte
		err  error
	)
	if t.RootFS || t.Dir == "/" {
		if real, rerr := t.Resolve(file); rerr == nil && real != file {
			shown = file + " (→ " + real + ")"
		}
		data, err = readFile(t, file)
	} else {
		// A tool folder's JVM runs on this machine: its cacerts may link
		// to this machine's /etc/ssl/certs/java/cacerts, as Debian's and
		// Temurin's packages do.
		host := filepath.Join(t.Dir, filepath.FromSlash(file))
		if real, rerr := filepath.EvalSymlinks(host); rerr == nil && real != host {
			shown = file + " (→ " + real + ")"
		}
		data, err = os.ReadFile(host)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("%s: no such file: TLS clients fail with \"the trustAnchors parameter must be non-empty\"", shown)
			return m
		}
		m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: %v", shown, err)
		return m
	}
	ts, err := ReadTrustStore(data)
	switch {
	case err != nil:
		m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: %v", shown, err)
	case ts.Certificates == 0:
		m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s: a %s key store with no trusted certificates: TLS clients fail with \"the trustAnchors parameter must be non-empty\"", shown, strings.ToUpper(ts.Format))
	}
	return m
}

// missingLibraries resolves an in-image ELF file's dependencies inside the
// image; nil when the file cannot be read (its absence is reported apart).
func missingLibraries(t *source.Tree, res *ldso.Resolver, inImage string, extraDirs ...string) []string {
	host, err := t.HostPath(inImage)
	if err != nil {
		return nil
	}
	dirs := make([]string, len(extraDirs))
	for i, d := range extraDirs {
		dirs[i] = libCoord(t, d)
	}
	miss, err := res.Missing(host, libCoord(t, path.Dir(inImage)), dirs...)
	if err != nil {
		return nil
	}
	return miss
}

// libCoord turns an in-image path into the coordinates of the library
// root: the same path for root filesystems, the file on this machine for
// tool folders (whose libraries come from this machine).
func libCoord(t *source.Tree, inImage string) string {
	if t.RootFS || t.Dir == "/" {
		return inImage
	}
	h, err := t.HostPath(inImage)
	if err != nil {
		return inImage
	}
	return h
}

// javaSweep runs probes/Probe.class in the installation's own JVM over every
// part javaStatic listed. The class travels as a jar on the JVM's standard
// input (a regular file, so /proc/self/fd/0 is a seekable class path entry):
// nothing is written into the image.
func javaSweep(ctx context.Context, t *source.Tree, r *snapshot.Runtime, p *javaParts, opts Options) (sweepOutcome, string) {
	jar, err := javaProbeJar()
	if err != nil {
		return sweepOutcome{}, fmt.Sprintf("java at %s: build the probe: %v", r.Path, err)
	}
	f, err := os.CreateTemp("", "imagegate-probe-*.jar")
	if err != nil {
		return sweepOutcome{}, fmt.Sprintf("java at %s: write the probe: %v", r.Path, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(jar); err != nil {
		return sweepOutcome{}, fmt.Sprintf("java at %s: write the probe: %v", r.Path, err)
	}
	return runPartsSweep(ctx, t.Runner, sweepSpec{
		what:    fmt.Sprintf("java at %s", r.Path),
		parts:   p.sweep,
		timeout: opts.PartTimeout,
		command: func(parts []string) sandbox.Command {
			// Each start reads the jar from the beginning.
			_, _ = f.Seek(0, 0)
			args := []string{
				// A probe, not a workload: the C1 compiler and the serial
				// collector start in half the time.
				"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m",
				"-cp", "/proc/self/fd/0", "Probe", strconv.FormatInt(opts.PartTimeout.Milliseconds(), 10)}
			return sandbox.Command{
				Path:  r.Executable,
				Args:  append(args, parts...),
				Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C.UTF-8"},
				Stdin: f,
			}
		},
	})
}

// javaMerge puts the probe's verdicts over the static ones. A part the files
// already showed missing or broken keeps that status, with the runtime's
// own words as its error; one that only failed when run is import-error.
func javaMerge(p *javaParts, out sweepOutcome) {
	failed := map[string]bool{}
	for _, part := range p.sweep { // in order: a failure is never undone by a later part
		res, ran := out.results[part]
		name := p.attr[part]
		m := p.mods[name]
		if !ran || m == nil || failed[name] {
			continue
		}
		switch {
		case res.Status == snapshot.StatusOK:
			if m.Status != snapshot.StatusMissing {
				m.Status, m.Error, m.MissingLibraries = snapshot.StatusOK, "", nil
			}
			continue
		case m.Status == snapshot.StatusMissing || m.Status == snapshot.StatusBroken:
			// The files already told; the runtime's own words are the
			// better evidence.
			m.Error = res.Err
		case strings.Contains(res.Err, "Module "+name+" not found"):
			m.Status, m.Error = snapshot.StatusMissing, res.Err
		default:
			m.Status, m.Error = res.Status, res.Err
		}
		failed[name] = true
	}
}
