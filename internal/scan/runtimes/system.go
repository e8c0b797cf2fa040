package runtimes

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/ldso"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// KindSystem is the runtime entry that holds a root filesystem's system
// essentials: the parts every job needs whatever language it runs (trust
// in certificate authorities, a UTF-8 locale, time zones, curl and git's
// HTTPS helper). It is one entry, at /, with SystemVersion as its version:
// the revision of this set of checks, not of the OS, so that an OS upgrade
// does not rename its parts in diff (runtime/system@1/module/tzdata).
const (
	KindSystem    = "system"
	SystemVersion = "1"
)

// System part names.
const (
	sysCA      = "ca-certificates"
	sysCertifi = "certifi"
	sysLocale  = "locale"
	sysTZData  = "tzdata"
	sysCurl    = "curl"
	sysGitHTTP = "git-remote-https"
)

// caBundles are the files the TLS libraries of this machine's distributions
// read by default: Debian, Ubuntu and Alpine (OpenSSL's CApath hashes link
// into it, GnuTLS's --with-default-trust-store-file and curl's
// --with-ca-bundle name it), RHEL and Fedora, SUSE, and Alpine's cert.pem.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// caMaterial are files and directories a CA package installs beside the
// bundle; one of them without a bundle means the bundle was removed.
var caMaterial = []string{"/usr/share/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki/ca-trust", "/var/lib/dpkg/info/ca-certificates.list"}

var (
	curlPaths    = []string{"/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"}
	gitHTTPPaths = []string{"/usr/lib/git-core/git-remote-https", "/usr/libexec/git-core/git-remote-https"}
	wgetPaths    = []string{"/usr/bin/wget", "/bin/wget"}
	libcPatterns = []string{"/lib/*/libc.so.6", "/usr/lib/*/libc.so.6", "/lib64/libc.so.6", "/usr/lib64/libc.so.6"}
	libcrypto    = []string{"/usr/lib/*/libcrypto.so.3", "/lib/*/libcrypto.so.3", "/usr/lib64/libcrypto.so.3", "/lib/libcrypto.so.3", "/usr/lib/*/libcrypto.so.1.1", "/lib/*/libcrypto.so.1.1", "/usr/lib64/libcrypto.so.1.1"}
	certifiGlobs = []string{"/usr/lib/python3/dist-packages/certifi/cacert.pem", "/usr/lib/python3*/site-packages/certifi/cacert.pem", "/usr/local/lib/python3*/site-packages/certifi/cacert.pem", "/usr/local/lib/python3*/dist-packages/certifi/cacert.pem"}
	// libcrypto states its compiled-in OPENSSLDIR (OpenSSL_version's
	// OPENSSL_DIR): cert.pem and certs/ below it are the default verify
	// paths Python's ssl.get_default_verify_paths() reports and every
	// OpenSSL client (Debian's Node.js included) reads.
	opensslDir = regexp.MustCompile(`OPENSSLDIR: "([^"\x00]+)"`)
	// tzdataProbes are the zones a job asks for most; the TZif magic
	// makes them real zone files.
	tzdataProbes = []string{"Etc/UTC", "Europe/London", "America/New_York"}
)

func firstPresent(t *source.Tree, paths []string) string {
	for _, p := range paths {
		if _, err := t.Lstat(p); err == nil {
			return p
		}
	}
	return ""
}

func firstGlob(t *source.Tree, patterns []string) string {
	for _, p := range patterns {
		if m, _ := t.Glob(p); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// countCertificates is how many X.509 certificates a PEM file holds.
func countCertificates(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err == nil || b.Type == "TRUSTED CERTIFICATE" {
				n++
			}
		}
	}
}

// newSystemRuntime is the system entry of a root filesystem; its parts are
// checked with the others.
func newSystemRuntime() snapshot.Runtime {
	return snapshot.Runtime{Kind: KindSystem, Version: SystemVersion, Path: "/"}
}

// checkSystem gives the system entry its parts. Each is listed only where
// the image shows it means to have it (a CA package's files or a TLS client,
// glibc, time zone configuration, curl, git), so that a minimal image is not
// failed for what it never had, while one from which a build step removed
// the part is.
func checkSystem(ctx context.Context, t *source.Tree, res *ldso.Resolver, r *snapshot.Runtime, opts Options) (map[string]*snapshot.Module, []string) {
	mods := map[string]*snapshot.Module{}
	curl := firstPresent(t, curlPaths)
	gitHTTP := firstPresent(t, gitHTTPPaths)
	if m := systemCA(t, curl != "" || gitHTTP != "" || firstPresent(t, wgetPaths) != ""); m != nil {
		mods[sysCA] = m
	}
	if m := systemCertifi(t); m != nil {
		mods[sysCertifi] = m
	}
	if m := systemLocale(t); m != nil {
		mods[sysLocale] = m
	}
	if m := systemTZData(t); m != nil {
		mods[sysTZData] = m
	}
	for _, tool := range []struct{ name, exe string }{{sysCurl, curl}, {sysGitHTTP, gitHTTP}} {
		if tool.exe == "" {
			continue
		}
		m := &snapshot.Module{Name: tool.name, Kind: PartTool, Status: snapshot.StatusOK}
		if real, err := t.Resolve(tool.exe); err == nil {
			tool.exe = real
		}
		if miss := missingLibraries(t, res, tool.exe); len(miss) > 0 {
			m.Status, m.Error, m.MissingLibraries = snapshot.StatusBroken, fmt.Sprintf("%s: error while loading shared libraries: %s", tool.exe, ldso.NotFoundError(miss[0])), miss
		}
		mods[tool.name] = m
	}
	if t.Runner != nil && curl != "" && mods[sysCurl].Status == snapshot.StatusOK {
		runCurl(ctx, t.Runner, curl, mods[sysCurl])
	}
	return mods, nil
}

// systemCA checks the CA bundle and OpenSSL's default verify paths.
func systemCA(t *source.Tree, tlsClient bool) *snapshot.Module {
	bundle := firstPresent(t, caBundles)
	if bundle == "" && !tlsClient && firstPresent(t, caMaterial) == "" {
		return nil
	}
	m := &snapshot.Module{Name: sysCA, Kind: PartTrustStore, Status: snapshot.StatusOK}
	if bundle == "" {
		m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("no CA bundle at %s (ca-certificates): TLS clients fail with \"unable to get local issuer certificate\"", strings.Join(caBundles, ", "))
		return m
	}
	data, err := readFile(t, bundle)
	if err != nil {
		m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("CA bundle %s: %v (ca-certificates): TLS clients fail with \"unable to get local issuer certificate\"", bundle, err)
		return m
	}
	if countCertificates(data) == 0 {
		m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("CA bundle %s holds no certificates: TLS clients fail with \"unable to get local issuer certificate\"", bundle)
		return m
	}
	// OpenSSL's own default paths must reach certificates too (Debian
	// links /usr/lib/ssl/cert.pem and certs/ into /etc/ssl/certs).
	lib := firstGlob(t, libcrypto)
	if lib == "" {
		return m
	}
	bin, err := readFile(t, lib)
	if err != nil {
		return m
	}
	sm := opensslDir.FindSubmatch(bin)
	if sm == nil {
		return m
	}
	dir := string(sm[1])
	if pemData, err := readFile(t, path.Join(dir, "cert.pem")); err == nil && countCertificates(pemData) > 0 {
		return m
	}
	if entries, err := t.ReadDir(path.Join(dir, "certs")); err == nil {
		for _, e := range entries {
			if fileExists(t, path.Join(dir, "certs", e.Name())) && strings.Contains(e.Name(), ".") {
				return m
			}
		}
	}
	m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("OpenSSL's default verify paths (%s/cert.pem, %s/certs, which Python's ssl.get_default_verify_paths() reports) hold no certificates although %s does", dir, dir, bundle)
	return m
}

// systemCertifi checks Python's certifi where it carries a bundle of its
// own; Debian's python3-certifi links the system bundle, checked above.
func systemCertifi(t *source.Tree) *snapshot.Module {
	var files []string
	for _, g := range certifiGlobs {
		m, _ := t.Glob(g)
		files = append(files, m...)
	}
	var own []string
	for _, f := range files {
		if fi, err := t.Lstat(f); err == nil && fi.Mode().IsRegular() {
			own = append(own, f)
		}
	}
	if len(own) == 0 {
		return nil
	}
	m := &snapshot.Module{Name: sysCertifi, Kind: PartTrustStore, Status: snapshot.StatusOK}
	for _, f := range own {
		data, err := readFile(t, f)
		if err != nil || countCertificates(data) == 0 {
			m.Status, m.Error = snapshot.StatusBroken, fmt.Sprintf("%s holds no certificates: requests and pip fail with CERTIFICATE_VERIFY_FAILED", f)
			break
		}
	}
	return m
}

// systemLocale checks for C.UTF-8 or en_US.UTF-8 in a glibc image with
// glibc's locale tools (musl has C.UTF-8 built in).
func systemLocale(t *source.Tree) *snapshot.Module {
	libc := firstGlob(t, libcPatterns)
	if libc == "" || !isELF(t, libc) {
		return nil
	}
	// glibc's locale tools (Debian's libc-bin, RHEL's glibc-common) come
	// with C.UTF-8; a root filesystem with libc alone (copied in for one
	// program) never had a locale.
	if firstPresent(t, []string{"/usr/bin/locale", "/usr/bin/localedef", "/usr/lib/locale", "/var/lib/dpkg/info/libc-bin.list"}) == "" {
		return nil
	}
	m := &snapshot.Module{Name: sysLocale, Kind: PartCapability, Status: snapshot.StatusOK}
	for _, d := range []string{"C.utf8", "C.UTF-8", "en_US.utf8", "en_US.UTF-8"} {
		if fileExists(t, path.Join("/usr/lib/locale", d, "LC_CTYPE")) {
			return m
		}
	}
	if data, err := readFile(t, "/usr/lib/locale/locale-archive"); err == nil && (bytes.Contains(data, []byte("en_US.utf8\x00")) || bytes.Contains(data, []byte("C.utf8\x00"))) {
		return m
	}
	m.Status, m.Error = snapshot.StatusMissing, "no C.UTF-8 or en_US.UTF-8 locale in /usr/lib/locale: setlocale fails (\"perl: warning: Setting locale failed.\") and programs fall back to ASCII"
	return m
}

func isELF(t *source.Tree, p string) bool {
	f, err := t.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = f.Read(magic[:])
	return err == nil && string(magic[:]) == "\x7fELF"
}

// systemTZData checks the zone files where the image configures a time
// zone or ships zone data.
func systemTZData(t *source.Tree) *snapshot.Module {
	if firstPresent(t, []string{"/usr/share/zoneinfo", "/etc/localtime", "/etc/timezone", "/var/lib/dpkg/info/tzdata.list"}) == "" {
		return nil
	}
	m := &snapshot.Module{Name: sysTZData, Kind: PartCapability, Status: snapshot.StatusOK}
	var absent []string
	for _, z := range tzdataProbes {
		f, err := t.Open(path.Join("/usr/share/zoneinfo", z))
		if err != nil {
			absent = append(absent, z)
			continue
		}
		var magic [4]byte
		_, err = f.Read(magic[:])
		f.Close()
		if err != nil || string(magic[:]) != "TZif" {
			absent = append(absent, z)
		}
	}
	if len(absent) > 0 {
		m.Status, m.Error = snapshot.StatusMissing, fmt.Sprintf("no time zone data for %s in /usr/share/zoneinfo (tzdata): TZ=%s and zoneinfo lookups fall back to UTC or fail", strings.Join(absent, ", "), absent[0])
	}
	return m
}

// runCurl confirms curl starts: curl --version, its last stderr line as
// the error otherwise.
func runCurl(ctx context.Context, r source.Runner, exe string, m *snapshot.Module) {
	var stderr bytes.Buffer
	res, err := r.Run(ctx, sandbox.Command{Path: exe, Args: []string{"--version"}, Env: []string{"PATH=/usr/bin:/bin", "LANG=C"},
		Stdout: &bytes.Buffer{}, Stderr: &stderr, Timeout: runTimeout, MaxOutput: 64 << 10})
	switch {
	case err != nil:
		m.Status, m.Error = snapshot.StatusImportError, err.Error()
	case res.ExitCode != 0 || res.Signal != "" || res.TimedOut:
		m.Status, m.Error = snapshot.StatusImportError, describeEnd(res, lastLine(stderr.String()))
	}
}
