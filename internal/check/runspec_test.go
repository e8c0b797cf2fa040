package check_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// makeRoot builds a small root filesystem with this machine's /bin/sh
// (dash or bash, run directly by sandbox.Local), a passwd and group file,
// and files with known modes and owners.
func makeRoot(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	root := t.TempDir()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel string, data string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	shell, err := os.ReadFile(sh)
	if err != nil {
		t.Fatal(err)
	}
	write("usr/bin/sh", string(shell), 0o755)
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	// Commands run as the image's user (app) in its WorkingDir (/srv),
	// with sandbox.Local where the files are: app must reach them.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 0o644)
	write("etc/group", "root:x:0:\napp:x:1000:\n", 0o644)
	write("etc/app.conf", "listen = 8080\ndebug = true\n", 0o640)
	write("usr/local/bin/tool", "#!/bin/sh\necho tool 1.2.3\n", 0o755|os.ModeSetuid)
	if err := os.Chown(filepath.Join(root, "etc/app.conf"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	// An absolute link, resolved inside the image, never on the host.
	if err := os.Symlink("/etc/app.conf", filepath.Join(root, "etc/app.link")); err != nil {
		t.Fatal(err)
	}
	return root
}

const fullSpec = `schemaVersion: "2.0.0"
commandTests:
  - name: shell greets with env
    shell: 'echo "hello $GREETING"; echo warning >&2'
    envVars:
      - {key: GREETING, value: world}
    expectedOutput: ["^hello world"]
    expectedError: [warning]
  - name: exit code is checked
    command: sh
    args: ["-c", "exit 3"]
    exitCode: 3
  - name: failing command shows stderr tail
    shell: 'echo starting; echo "fatal: no config" >&2; exit 1'
    excludedError: [panic]
  - name: excluded output
    shell: 'echo "DEBUG on"; echo ok'
    excludedOutput: ["DEBUG"]
  - name: hangs
    shell: 'while :; do :; done'
    timeout: 0.3
  - name: not installed
    command: kubectl
    args: [version]
fileTests:
  - name: passwd
    path: /etc/passwd
    mode: "-rw-r--r--"
    uid: 0
    owner: root
    group: root
    expectedContents: ["^root:x:0:0:"]
  - name: app config owned by app
    path: /etc/app.link
    permissions: "0640"
    owner: app
    gid: 1000
    expectedContents: ["listen = 8080"]
    excludedContents: ["debug = true"]
  - name: setuid tool
    path: /usr/local/bin/tool
    mode: "-rwsr-xr-x"
  - name: wrong mode and owner
    path: /etc/passwd
    mode: "0600"
    owner: app
  - name: must be gone
    path: /etc/app.conf
    shouldExist: false
  - name: absent
    path: /opt/nothing
fileExistenceTests:
  - name: shell is there
    path: /bin/sh
    shouldExist: true
fileContentTests:
  - name: unknown user
    path: /etc/passwd
    expectedContents: ["^nobody:"]
tools:
  node: ">=18 <23"
  git: ">=2.40"
  python: ">=3.11"
  terraform: ">=1.5"
python:
  - runtime: "3.*"
    modules: [sqlite3, ssl]
  - runtime: "3.11"
    modules: [ssl]
  - runtime: "2.7.*"
    modules: [sqlite3]
packages:
  deb: [libsqlite3-0, "openssl>=3", "tar >= 1.35", libgdbm6]
metadataTest:
  envVars:
    - {key: PATH, value: "/usr/local/bin:/usr/bin:/bin"}
    - {key: LANG, value: "^C\\.UTF-8$", isRegex: true}
    - {key: TZ, value: UTC}
  labels:
    - {key: org.opencontainers.image.source, value: "^https://github.com/", isRegex: true}
    - {key: maintainer, value: ops@example.com}
  exposedPorts: ["8080", "9090/udp"]
  unexposedPorts: ["22"]
  entrypoint: ["/usr/bin/tini", "--"]
  cmd: ["/bin/sh"]
  workdir: /srv
  user: app
`

// goldenSnapshot is the image the golden reports describe: a 3.11 that
// imports everything, a 3.7 toolcache build without _sqlite3, tools,
// packages and an image config.
func goldenSnapshot(t testing.TB) *snapshot.Snapshot {
	s := snap([]snapshot.Runtime{
		pythonRuntime(t, "3.11.2", "/usr", "os-package",
			snapshot.Module{Name: "tkinter", Status: snapshot.StatusMissing},
			snapshot.Module{Name: "_tkinter", Status: snapshot.StatusMissing}),
		pythonRuntime(t, "3.7.16", toolcache37, "toolcache",
			snapshot.Module{Name: "sqlite3", Status: snapshot.StatusImportError, Error: noSqlite},
			snapshot.Module{Name: "_sqlite3", Status: snapshot.StatusMissing}),
		{Kind: "node", Version: "20.11.1", Path: "/usr/local"},
	},
		snapshot.Tool{Name: "git", Path: "/usr/bin/git", Version: "2.39.5", Status: "ok"},
		snapshot.Tool{Name: "node", Path: "/usr/local/bin/node", Version: "20.11.1", Status: "ok"},
		snapshot.Tool{Name: "python3", Path: "/usr/bin/python3", Version: "3.11.2", Status: "ok"},
		snapshot.Tool{Name: "make", Path: "/usr/bin/make", Status: "failed", Error: "exit status 127\n/usr/bin/make: error while loading shared libraries: libguile-3.0.so.1"},
	)
	s.Source = "oci:/images/ci"
	s.Packages = []snapshot.Package{
		{Type: "deb", Name: "libsqlite3-0", Version: "3.40.1-2+deb12u1", Arch: "amd64"},
		{Type: "deb", Name: "openssl", Version: "3.0.15-1~deb12u1", Arch: "amd64"},
		{Type: "deb", Name: "tar", Version: "1.34+dfsg-1.2+deb12u1", Arch: "amd64"},
	}
	s.Image = &snapshot.Image{
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"},
		Entrypoint:   []string{"/usr/bin/tini", "--"},
		Cmd:          []string{"bash"},
		User:         "app",
		WorkingDir:   "/srv",
		Labels:       map[string]string{"org.opencontainers.image.source": "https://github.com/imagegate/ci", "maintainer": "dev@example.com"},
		ExposedPorts: []string{"22/tcp", "8080/tcp"},
	}
	s.Warnings = []string{"chroot not permitted; modules checked without execution"}
	return s
}

func mustSpec(t testing.TB, text string) *check.Spec {
	t.Helper()
	s, err := check.ParseSpec("spec.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecAgainstImage(t *testing.T) {
	root := makeRoot(t)
	tg := &source.Tree{Dir: root, RootFS: true, Runner: sandbox.NewLocal(root)}
	r, err := check.Run(context.Background(), goldenSnapshot(t), check.Options{Spec: mustSpec(t, fullSpec), Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, res := range r.Results {
		if res.Origin != check.OriginSpec {
			continue
		}
		b.WriteString(res.Status + " " + res.ID + " " + res.Name + ": " + res.Message + "\n")
		for _, e := range res.Evidence {
			b.WriteString("    " + e + "\n")
		}
	}
	golden(t, "spec-results.golden", strings.ReplaceAll(b.String(), root, "$ROOT"))
}

// TestSpecOnHost runs spec tests against this machine itself, as `imagegate
// check host --spec` does.
func TestSpecOnHost(t *testing.T) {
	testenv.RequireRoot(t)
	tg := &source.Tree{Dir: "/", RootFS: true, Runner: sandbox.NewLocal("/")}
	spec := mustSpec(t, `commandTests:
  - name: sh runs
    shell: 'echo $HOME'
    expectedOutput: ["^/root"]
  - name: sh fails
    command: /bin/sh
    args: ["-c", "exit 7"]
fileTests:
  - name: passwd
    path: /etc/passwd
    mode: "-rw-r--r--"
    owner: root
    expectedContents: ["^root:"]
  - name: not here
    path: /imagegate-no-such-dir
`)
	r, err := check.Run(context.Background(), snap(nil), check.Options{Spec: spec, Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	got := lines(r, check.StatusFail, check.StatusPass)
	want := []string{
		"fail spec/commandTests[1]: exit code 7, expected 0",
		"fail spec/fileTests[1]: /imagegate-no-such-dir does not exist",
		"pass spec/commandTests[0]: exit code 0",
		"pass spec/fileTests[0]: /etc/passwd exists, mode -rw-r--r--, uid 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestSpecWithoutFiles(t *testing.T) {
	spec := mustSpec(t, "commandTests:\n  - shell: 'true'\nfileTests:\n  - path: /etc/passwd\nmetadataTest:\n  user: root\n")
	tests := []struct {
		name   string
		target *source.Tree
		want   []string
	}{
		{
			name: "snapshot file",
			want: []string{
				"fail spec/commandTests[0]: needs the image's files: TARGET was a snapshot file; pass a scan SOURCE (dir:, host, oci:, docker-archive:, registry:) instead",
				"fail spec/fileTests[0]: needs the image's files: TARGET was a snapshot file; pass a scan SOURCE (dir:, host, oci:, docker-archive:, registry:) instead",
				"fail spec/metadataTest: no image config: metadata tests need an OCI, docker-archive or registry image (TARGET has no config)",
			},
		},
		{
			name:   "scanned without execution",
			target: &source.Tree{Dir: "/", RootFS: true},
			want: []string{
				"fail spec/commandTests[0]: needs to run programs, but the scan ran nothing (--exec none, or chroot not permitted); use --exec local or --exec chroot",
				"fail spec/metadataTest: no image config: metadata tests need an OCI, docker-archive or registry image (TARGET has no config)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := check.Run(context.Background(), snap(nil), check.Options{Spec: spec, Target: tt.target})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, lines(r, check.StatusFail)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	root := makeRoot(t)
	tg := &source.Tree{Dir: root, RootFS: true, Runner: sandbox.NewLocal(root)}
	r, err := check.Run(context.Background(), goldenSnapshot(t), check.Options{Spec: mustSpec(t, fullSpec), Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "markdown", "junit", "json"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.Write(&b, format); err != nil {
				t.Fatal(err)
			}
			golden(t, "report."+format+".golden", strings.ReplaceAll(b.String(), root, "$ROOT"))
		})
	}
	if err := r.Write(io.Discard, "yaml"); err == nil {
		t.Error("Write accepted an unknown format")
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", p, diff)
	}
}
