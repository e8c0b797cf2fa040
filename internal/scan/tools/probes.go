package tools

import (
	"regexp"
	"slices"
	"strings"
)

// probe is how one common CI tool tells its version.
type probe struct {
	args []string
	// patterns are tried in order against stdout then stderr; the first
	// submatch of the first pattern that matches is the version.
	patterns []*regexp.Regexp
	// slow marks tools that start an interpreter or a JVM (a second or
	// more); they are started first so that the fast ones fill the
	// remaining workers instead of queueing behind them at the end.
	slow bool
}

func (pr probe) startsSlowly() probe {
	pr.slow = true
	return pr
}

// genericVersion finds the first dotted version number, for tools whose
// output is just "1.2.3" or "tool 1.2.3".
var genericVersion = regexp.MustCompile(`\bv?(\d+\.\d+(?:\.\d+)*(?:[-+~_][0-9A-Za-z][0-9A-Za-z.]*)?)`)

func re(exprs ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

func p(args string, exprs ...string) probe {
	pr := probe{args: strings.Fields(args)}
	if len(exprs) == 0 {
		pr.patterns = []*regexp.Regexp{genericVersion}
	} else {
		pr.patterns = re(exprs...)
	}
	return pr
}

// probes is the curated list of common CI tools whose versions are worth a
// process each. Every command here only reports a version: none builds,
// downloads or changes anything (tools that would, such as bazelisk or the
// gradle wrapper, are left out).
var probes = map[string]probe{
	"7z":        p("", `7-Zip(?: \(a\))?(?: \[\d+\])? (\d+\.\d+)`),
	"ansible":   p("--version", `ansible \[core (\S+)\]`, `ansible (\d\S*)`).startsSlowly(),
	"ant":       p("-version", `Ant\(TM\) version (\S+)`).startsSlowly(),
	"autoconf":  p("--version", `\(GNU Autoconf\) (\S+)`),
	"automake":  p("--version", `\(GNU automake\) (\S+)`),
	"aws":       p("--version", `aws-cli/(\S+)`).startsSlowly(),
	"az":        p("version", `"azure-cli":\s*"([^"]+)"`).startsSlowly(),
	"bash":      p("--version", `version (\d+\.\d+(?:\.\d+)?)`),
	"bundle":    p("--version", `Bundler version (\S+)`, `^(\d\S*)`),
	"bundler":   p("--version", `Bundler version (\S+)`, `^(\d\S*)`),
	"bzip2":     p("--help", `Version (\d+\.\d+(?:\.\d+)?)`),
	"cargo":     p("--version", `^cargo (\S+)`),
	"clang":     p("--version", `clang version (\d\S*)`),
	"clang++":   p("--version", `clang version (\d\S*)`),
	"cmake":     p("--version", `cmake version (\S+)`),
	"composer":  p("--version", `Composer (?:version )?(\d\S*)`).startsSlowly(),
	"conda":     p("--version", `conda (\S+)`).startsSlowly(),
	"curl":      p("--version", `^curl (\S+)`),
	"deno":      p("--version", `^deno (\S+)`),
	"docker":    p("--version", `Docker version ([^,\s]+)`),
	"dotnet":    p("--version", `^(\d\S*)`).startsSlowly(),
	"g++":       p("--version", `^g\+\+ .*?(\d+\.\d+\.\d+)\s*$`, `^[^\n]*?(\d+\.\d+(?:\.\d+)?)\s*$`),
	"gcc":       p("--version", `^gcc .*?(\d+\.\d+\.\d+)\s*$`, `^[^\n]*?(\d+\.\d+(?:\.\d+)?)\s*$`),
	"gcloud":    p("--version", `Google Cloud SDK (\S+)`).startsSlowly(),
	"gem":       p("--version", `^(\d\S*)`),
	"gh":        p("--version", `gh version (\S+)`),
	"git":       p("--version", `git version (\S+)`),
	"git-lfs":   p("--version", `git-lfs/(\S+)`),
	"go":        p("version", `go version go(\S+)`),
	"gpg":       p("--version", `gpg \(GnuPG\) (\S+)`),
	"gradle":    p("--version", `Gradle (\d\S*)`).startsSlowly(),
	"gzip":      p("--version", `^gzip (\S+)`),
	"helm":      p("version --short", `v(\d+\.\d+\.\d+\S*)`),
	"java":      p("-version", `version "([^"]+)"`).startsSlowly(),
	"javac":     p("-version", `javac (\S+)`).startsSlowly(),
	"jq":        p("--version", `jq-(\S+)`, `^(\d\S*)`),
	"kubectl":   p("version --client", `Client Version: v?(\d\S*)`, `GitVersion:"v?([^"]+)"`),
	"make":      p("--version", `GNU Make (\S+)`),
	"mvn":       p("--version", `Apache Maven (\S+)`).startsSlowly(),
	"mysql":     p("--version", `Distrib ([^,\s]+)`, `Ver (\d\S*)`),
	"ninja":     p("--version"),
	"node":      p("--version", `v(\d+\.\d+\.\d+\S*)`),
	"npm":       p("--version", `^(\d\S*)`).startsSlowly(),
	"npx":       p("--version", `^(\d\S*)`).startsSlowly(),
	"openssl":   p("version", `^(?:OpenSSL|LibreSSL) (\S+)`),
	"packer":    p("version", `Packer v(\S+)`, `^(\d\S*)`),
	"perl":      p("--version", `\(v(\d+\.\d+\.\d+)\)`),
	"php":       p("--version", `^PHP (\S+)`),
	"pip":       p("--version", `^pip (\S+)`).startsSlowly(),
	"pip3":      p("--version", `^pip (\S+)`).startsSlowly(),
	"pipx":      p("--version", `^(\d\S*)`).startsSlowly(),
	"pnpm":      p("--version", `^(\d\S*)`).startsSlowly(),
	"podman":    p("--version", `podman version (\S+)`),
	"poetry":    p("--version", `version (\d[^)\s]*)`).startsSlowly(),
	"psql":      p("--version", `\(PostgreSQL\) (\d\S*)`),
	"pwsh":      p("--version", `PowerShell (\S+)`).startsSlowly(),
	"python":    p("--version", `Python (\S+)`),
	"python3":   p("--version", `Python (\S+)`),
	"rsync":     p("--version", `rsync\s+version v?(\S+)`),
	"ruby":      p("--version", `^ruby (\d+\.\d+\.\d+)`),
	"rustc":     p("--version", `^rustc (\S+)`),
	"rustup":    p("--version", `^rustup (\S+)`),
	"sqlite3":   p("--version", `^(\d+\.\d+(?:\.\d+)*)`),
	"ssh":       p("-V", `OpenSSH_([0-9A-Za-z.]+)`),
	"svn":       p("--version --quiet", `^(\d\S*)`),
	"tar":       p("--version", `^tar \(GNU tar\) (\S+)`, `^bsdtar (\S+)`),
	"terraform": p("version", `Terraform v(\S+)`),
	"unzip":     p("-v", `UnZip (\d+\.\d+)`),
	"wget":      p("--version", `GNU Wget (\S+)`),
	"xz":        p("--version", `xz \(XZ Utils\) (\S+)`),
	"yarn":      p("--version", `^(\d\S*)`).startsSlowly(),
	"yq":        p("--version", `version v?(\d\S*)`, `^yq (\d\S*)`),
	"zip":       p("-v", `This is Zip (\d+\.\d+)`),
	"zstd":      p("--version", `v(\d+\.\d+\.\d+)`),
}

// Probed returns the names of the tools whose versions Collect asks for,
// sorted.
func Probed() []string {
	names := make([]string, 0, len(probes))
	for n := range probes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ExtractVersion returns the version that tool's output (stdout, then
// stderr) states, using the same patterns as Collect's probes. ok is false
// for a tool that is not probed or output that names no version.
func ExtractVersion(tool, stdout, stderr string) (version string, ok bool) {
	pr, known := probes[tool]
	if !known {
		return "", false
	}
	return pr.extract(stdout, stderr)
}

// ansiEscape matches terminal colour and cursor sequences, which some tools
// (Maven) print even when their output is not a terminal.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

func (pr probe) extract(stdout, stderr string) (string, bool) {
	stdout, stderr = ansiEscape.ReplaceAllString(stdout, ""), ansiEscape.ReplaceAllString(stderr, "")
	for _, pat := range pr.patterns {
		for _, out := range []string{stdout, stderr} {
			// Line by line, so that ^ anchors each line: many tools
			// print a banner before the version line.
			for line := range strings.Lines(out) {
				if m := pat.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil && m[1] != "" {
					return strings.TrimRight(m[1], ".,;:"), true
				}
			}
		}
	}
	return "", false
}
