package check_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// extract unpacks a root filesystem tar (as root: owners, modes and device
// nodes as mmdebstrap wrote them).
func extract(t testing.TB, rootfs string) string {
	t.Helper()
	dir := t.TempDir()
	if b, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-xf", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("tar -x %s: %v\n%s", rootfs, err, b)
	}
	return dir
}

// TestDebianStockImages: untouched Debian 12 and 13 images with Python,
// checked with no configuration, without and with execution, pass. Debian
// 13's _distutils_system_mod (libpython3.13-stdlib) imports distutils,
// which only python3-setuptools provides there: a note naming that
// package, not a failure — and with setuptools installed, nothing to note.
func TestDebianStockImages(t *testing.T) {
	if testing.Short() {
		t.Skip("scans whole Debian images")
	}
	tests := []struct {
		suite string
		pkgs  []string
		// notes must each appear in the not-installed note's evidence
		// when the import itself ran; absent must not.
		notes, absent []string
	}{
		{suite: "trixie", pkgs: []string{"python3"},
			notes: []string{"_distutils_system_mod: needs distutils, which python3-setuptools provides", "turtle: needs tkinter, which python3-tk provides"}},
		// python3-setuptools provides distutils through site-packages (its .pth
		// hook), which the module sweep does not load: still a note.
		{suite: "trixie", pkgs: []string{"python3", "python3-setuptools"},
			notes: []string{"_distutils_system_mod: needs distutils, which python3-setuptools provides"}},
		{suite: "bookworm", pkgs: []string{"python3", "curl", "ca-certificates"},
			notes: []string{"_distutils_system_mod: needs distutils, which python3-distutils provides"}},
		{suite: "bookworm", pkgs: []string{"python3", "python3-distutils"},
			absent: []string{"_distutils_system_mod", "distutils:"}},
	}
	for _, tt := range tests {
		t.Run(tt.suite+"-"+strings.Join(tt.pkgs, "+"), func(t *testing.T) {
			root := extract(t, testenv.DebianRootfs(t, tt.suite, tt.pkgs...))
			for _, mode := range []string{scan.ExecNone, scan.ExecChroot} {
				t.Run(mode, func(t *testing.T) {
					r := checkDir(t, root, mode, check.Options{})
					for _, f := range r.Failures() {
						t.Errorf("stock image fails: %s: %s %v", f.ID, f.Message, f.Evidence)
					}
					var ev string
					for _, res := range r.Results {
						if strings.HasSuffix(res.ID, "/modules/not-installed") {
							ev = strings.Join(res.Evidence, "\n")
						}
					}
					if mode == scan.ExecNone {
						return // the static check cannot see what an import needs
					}
					for _, n := range tt.notes {
						if !strings.Contains(ev, n) {
							t.Errorf("not-installed note lacks %q:\n%s", n, ev)
						}
					}
					for _, a := range tt.absent {
						if strings.Contains(ev, a) {
							t.Errorf("not-installed note names %q, which this image has:\n%s", a, ev)
						}
					}
				})
			}
		})
	}
}

func checkDir(t testing.TB, root, mode string, opts check.Options) *check.Report {
	t.Helper()
	ctx := context.Background()
	tree, err := source.Open(ctx, "dir:"+root, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: mode})
	if err != nil {
		t.Fatal(err)
	}
	r, err := check.Run(ctx, snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cstImage is a Debian 13 image as an OCI layout, made the way a
// Dockerfile would: the mmdebstrap root filesystem, a layer adding a user
// app (uid 1000, in group staff too), its home, a /srv/app WORKDIR with a
// link and a setuid file, a copyright file naming the AGPL, and a config
// setting USER, WORKDIR, ENV, ports, a volume, labels, entrypoint and cmd.
func cstImage(t testing.TB) string {
	t.Helper()
	rootfs := testenv.DebianRootfs(t, "trixie", "python3")
	passwd, group := fileFromTar(t, rootfs, "./etc/passwd"), fileFromTar(t, rootfs, "./etc/group")
	group = strings.Replace(group, "\nstaff:x:50:", "\nstaff:x:50:app", 1)
	layer := tarLayer(t, []tarEntry{
		{name: "etc/passwd", body: passwd + "app:x:1000:1000:App:/home/app:/bin/sh\n", mode: 0o644},
		{name: "etc/group", body: group + "app:x:1000:\n", mode: 0o644},
		{name: "home/app/", dir: true, mode: 0o750, uid: 1000, gid: 1000},
		{name: "srv/app/", dir: true, mode: 0o755, uid: 1000, gid: 1000},
		{name: "srv/app/v1/", dir: true, mode: 0o755, uid: 1000, gid: 1000},
		{name: "srv/app/v1/run.sh", body: "#!/bin/sh\necho running as $(id -un) in $(pwd)\n", mode: 0o754, uid: 1000, gid: 1000},
		{name: "srv/app/current", link: "v1", mode: 0o777, uid: 1000, gid: 1000},
		{name: "usr/local/bin/helper", body: "#!/bin/sh\necho helper\n", mode: 0o4755},
		{name: "usr/share/doc/app/copyright", body: "License: AGPL-3.0-or-later\n", mode: 0o644},
		{name: "srv/app/config.ini", body: "[server]\nport = 8080\n", mode: 0o640, uid: 1000, gid: 1000},
	})
	return ociImage(t, rootfs, layer, v1.Config{
		User:         "app",
		WorkingDir:   "/srv/app",
		Env:          []string{"PATH=/srv/app/current:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_HOME=/srv/app", "GREETING=hello", "LANG=C.UTF-8"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"org.opencontainers.image.source": "https://example.com/app", "build-date": "2026-12-01T21:53:00.000000"},
		Entrypoint:   []string{"/srv/app/current/run.sh"},
		Cmd:          []string{"--serve"},
	})
}

// baseLayers are the root filesystem layers made so far, by tar path:
// compressed once for every image of the test binary that uses them (the
// compression is most of an image's cost, many times so under -race).
var baseLayers sync.Map

func baseLayer(rootfs string) (v1.Layer, error) {
	if l, ok := baseLayers.Load(rootfs); ok {
		return l.(v1.Layer), nil
	}
	l, err := tarball.LayerFromFile(rootfs, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	actual, _ := baseLayers.LoadOrStore(rootfs, l)
	return actual.(v1.Layer), nil
}

// ociImage writes an OCI layout of the rootfs tar with layer on top and
// the config cfg, for linux/amd64.
func ociImage(t testing.TB, rootfs string, layer v1.Layer, cfg v1.Config) string {
	t.Helper()
	base, err := baseLayer(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, base, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

type tarEntry struct {
	name, body, link string
	dir              bool
	mode             int64
	uid, gid         int
}

func tarLayer(t testing.TB, entries []tarEntry) v1.Layer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1764000000, 0), Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fileFromTar(t testing.TB, tarPath, name string) string {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", tarPath, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// cstFeatures are container-structure-test's features, each a spec written
// from its README and code and the results CST documents for it on
// cstImage. SCHEMA.md's table lists the same rows.
//
// Their expressions are CST's: Go regexp on the whole output, so "$" is
// the end of the output, after its newline, unless (?m) says otherwise;
// and $VAR in args is expanded against the image's Env before the program
// sees it, so a shell script that needs a test's envVars reads them with
// env, not "$VAR".
var cstFeatures = []struct {
	feature, spec string
	// want is "status id message-prefix" per spec result, in the
	// report's order (fail, declared, info, pass; then file order).
	want []string
}{
	{"command runs as the image's USER", "commandTests: [{name: user, command: id, args: [-un]}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"USER's supplementary groups from /etc/group", "commandTests: [{name: groups, command: id, args: [-Gn], expectedOutput: ['^app staff\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"command runs in the image's WORKDIR", "commandTests: [{name: pwd, command: pwd, expectedOutput: ['^/srv/app\\n$']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"command gets the image's Env and HOME of its user", "commandTests: [{name: env, command: sh, args: [-c, 'echo $GREETING $HOME'], expectedOutput: ['^hello /home/app\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"$VAR and ${VAR} in command and args expanded against the image Env", "commandTests: [{name: expand, command: echo, args: ['$APP_HOME/x', '${GREETING}!', '$UNSET.'], expectedOutput: ['^/srv/app/x hello! \\.\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"envVars values expanded against the image Env", "commandTests: [{name: envVars, command: env, envVars: [{key: DATA, value: '$APP_HOME/data'}], expectedOutput: ['(?m)^DATA=/srv/app/data$']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"globalEnvVars for every command, expanded", "globalEnvVars: [{key: PATH, value: '/opt/bin:$PATH'}]\ncommandTests: [{name: path, command: sh, args: [-c, 'echo $PATH'], expectedOutput: ['^/opt/bin:/srv/app/current:']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"setup runs first, its writes visible; teardown after, status ignored", "commandTests: [{name: setup, setup: [[sh, -c, 'echo made > marker'], [touch, /tmp/ready]], teardown: [['false']], command: cat, args: [marker, /tmp/ready], expectedOutput: ['^made\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"schemaVersion 1.0.0: command as a list", "schemaVersion: 1.0.0\ncommandTests: [{name: list, command: [echo, one, two], expectedOutput: ['^one two\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"exitCode, expectedError, excludedOutput", "commandTests: [{name: ls, command: ls, args: [/nonexistent], exitCode: 2, expectedError: ['No such file'], excludedOutput: ['.']}]",
		[]string{"pass spec/commandTests[0] exit code 2"}},
	{"a wrong exit code fails", "commandTests: [{name: false, command: 'false'}]",
		[]string{"fail spec/commandTests[0] exit code 1, expected 0"}},
	{"the entrypoint is not run", "commandTests: [{name: echo, command: echo, args: [hi], excludedOutput: ['running as']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"localhost resolves", "commandTests: [{name: hosts, command: getent, args: [hosts, localhost], expectedOutput: ['(127.0.0.1|::1) +localhost']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.user replaces USER", "containerRunOptions: {user: root}\ncommandTests: [{name: root, command: id, args: [-u], expectedOutput: ['^0\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.user uid:gid not in /etc/passwd", "containerRunOptions: {user: '4242:50'}\ncommandTests: [{name: ids, command: sh, args: [-c, 'echo $(id -u):$(id -g) $HOME'], expectedOutput: ['^4242:50 /\\n']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.envVars from imagegate's environment", "containerRunOptions: {envVars: [IMAGEGATE_CST_SECRET]}\ncommandTests: [{name: secret, command: env, expectedOutput: ['(?m)^IMAGEGATE_CST_SECRET=s3cret$']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.envFile", "containerRunOptions: {envFile: ENVFILE}\ncommandTests: [{name: envfile, command: env, expectedOutput: ['(?m)^FROM_FILE=file value$']}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.capabilities of Docker's default set", "containerRunOptions: {capabilities: [NET_BIND_SERVICE]}\ncommandTests: [{name: cap, command: 'true'}]",
		[]string{"pass spec/commandTests[0] exit code 0"}},
	{"containerRunOptions.privileged refused", "containerRunOptions: {privileged: true}\ncommandTests: [{name: priv, command: 'true'}]",
		[]string{"fail spec/commandTests[0] not run: containerRunOptions.privileged: the sandbox never runs"}},
	{"containerRunOptions.bindMounts and other capabilities refused", "containerRunOptions: {bindMounts: ['/etc:/host-etc'], capabilities: [SYS_ADMIN]}\ncommandTests: [{name: mount, command: 'true'}]",
		[]string{"fail spec/commandTests[0] not run: containerRunOptions.bindMounts /etc:/host-etc: the sandbox mounts nothing of this machine into the image; capabilities SYS_ADMIN"}},
	{"containerRunOptions.allocateTty ignored with a note", "containerRunOptions: {allocateTty: true}\ncommandTests: [{name: tty, command: 'true'}]",
		[]string{"info spec/containerRunOptions/allocateTty allocateTty ignored", "pass spec/commandTests[0] exit code 0"}},
	{"permissions of a link are its own (Go FileMode.String)", "fileExistenceTests: [{name: link, path: /srv/app/current, shouldExist: true, permissions: Lrwxrwxrwx, uid: 1000, gid: 1000}]",
		[]string{"pass spec/fileExistenceTests[0] /srv/app/current exists, mode Lrwxrwxrwx, uid 1000, gid 1000"}},
	{"permissions with the sticky bit", "fileExistenceTests: [{name: tmp, path: /tmp, shouldExist: true, permissions: dtrwxrwxrwx}]",
		[]string{"pass spec/fileExistenceTests[0] /tmp exists, mode dtrwxrwxrwx"}},
	{"permissions with setuid", "fileExistenceTests: [{name: suid, path: /usr/local/bin/helper, shouldExist: true, permissions: urwxr-xr-x}]",
		[]string{"pass spec/fileExistenceTests[0] /usr/local/bin/helper exists, mode urwxr-xr-x"}},
	{"wrong permissions fail, shown the same way", "fileExistenceTests: [{name: suid, path: /usr/local/bin/helper, shouldExist: true, permissions: -rwxr-xr-x}]",
		[]string{"fail spec/fileExistenceTests[0] /usr/local/bin/helper: mode urwxr-xr-x, expected -rwxr-xr-x"}},
	{"isExecutableBy", "fileExistenceTests: [{name: group, path: /srv/app/v1/run.sh, shouldExist: true, isExecutableBy: group}, {name: other, path: /srv/app/v1/run.sh, shouldExist: true, isExecutableBy: other}]",
		[]string{"fail spec/fileExistenceTests[1] /srv/app/v1/run.sh: not executable by other (-rwxr-xr--)", "pass spec/fileExistenceTests[0] /srv/app/v1/run.sh exists"}},
	{"shouldExist false and $VAR in path", "fileExistenceTests: [{name: gone, path: /opt/absent, shouldExist: false}, {name: env, path: '$APP_HOME/config.ini', shouldExist: true, uid: 1000, gid: 1000}]",
		[]string{"pass spec/fileExistenceTests[0] /opt/absent is absent", "pass spec/fileExistenceTests[1] /srv/app/config.ini exists, uid 1000, gid 1000"}},
	{"fileContentTests, through links and $VAR", "fileContentTests: [{name: os, path: /etc/os-release, expectedContents: ['VERSION_CODENAME=trixie'], excludedContents: [bookworm]}, {name: via link, path: /srv/app/current/run.sh, expectedContents: ['running as']}, {name: env, path: '$APP_HOME/config.ini', expectedContents: ['port = 8080']}]",
		[]string{"pass spec/fileContentTests[0] /etc/os-release exists", "pass spec/fileContentTests[1] /srv/app/current/run.sh exists", "pass spec/fileContentTests[2] /srv/app/config.ini exists"}},
	{"licenseTests: a Debian copyright file naming the AGPL fails", "licenseTests: [{debian: true}]",
		[]string{"fail spec/licenseTests[0] /usr/share/doc/app/copyright mentions AGPL"}},
	{"licenseTests: files", "licenseTests: [{debian: false, files: [/usr/share/doc/python3/copyright]}]",
		[]string{"pass spec/licenseTests[0] 1 copyright file checked"}},
	{"metadataTest env, labels (isRegex), user, workdir, entrypoint, cmd", "metadataTest: {envVars: [{key: GREETING, value: hello}, {key: PATH, value: '^/srv/app/current:', isRegex: true}], labels: [{key: build-date, value: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}$', isRegex: true}], user: app, workdir: /srv/app, entrypoint: [/srv/app/current/run.sh], cmd: [--serve]}",
		[]string{"pass spec/metadataTest/envVars/GREETING GREETING=hello", "pass spec/metadataTest/envVars/PATH PATH=", "pass spec/metadataTest/labels/build-date build-date=", "pass spec/metadataTest/entrypoint entrypoint", "pass spec/metadataTest/cmd cmd", "pass spec/metadataTest/workdir workdir", "pass spec/metadataTest/user user"}},
	{"metadataTest ports by number, as CST compares them", "metadataTest: {exposedPorts: ['8080', '9090'], unexposedPorts: ['22', '9090']}",
		[]string{"fail spec/metadataTest/unexposedPorts/9090 port 9090 is exposed", "pass spec/metadataTest/exposedPorts/8080 port 8080 exposed", "pass spec/metadataTest/exposedPorts/9090 port 9090 exposed", "pass spec/metadataTest/unexposedPorts/22 port 22 not exposed"}},
	{"metadataTest volumes, unmountedVolumes, unboundEnvVars", "metadataTest: {volumes: [/data], unmountedVolumes: [/srv], unboundEnvVars: [{key: DEBUG}, {key: GREETING}]}",
		[]string{"fail spec/metadataTest/unboundEnvVars/GREETING env GREETING is set", "pass spec/metadataTest/unboundEnvVars/DEBUG env DEBUG not set", "pass spec/metadataTest/volumes//data volume /data declared", "pass spec/metadataTest/unmountedVolumes//srv volume /srv not declared"}},
	{"legacy metadataTest.env read as envVars, with a warning", "metadataTest: {env: [{key: LANG, value: C.UTF-8}]}",
		[]string{"info spec/warning cst.yaml:1: metadataTest.env is the name container-structure-test dropped", "pass spec/metadataTest/envVars/LANG LANG=C.UTF-8"}},
}

// TestContainerStructureTests runs cstFeatures against cstImage scanned
// with chroot execution: every spec gives the results CST documents.
func TestContainerStructureTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and scans a Debian image")
	}
	oci := cstImage(t)
	envFile := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(envFile, []byte("# for the test\nFROM_FILE=\"file value\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IMAGEGATE_CST_SECRET", "s3cret")
	ctx := context.Background()
	tree, err := source.Open(ctx, "oci:"+oci, source.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: scan.ExecChroot})
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, f := range cstFeatures {
		t.Run(f.feature, func(t *testing.T) {
			spec, err := check.ParseSpec("cst.yaml", []byte(strings.ReplaceAll(f.spec, "ENVFILE", envFile)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := check.Run(ctx, snap, check.Options{Spec: spec, Target: tree})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, res := range r.Results {
				if res.Origin == check.OriginSpec {
					got = append(got, res.Status+" "+res.ID+" "+res.Message)
				}
			}
			ok := len(got) == len(f.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], f.want[i])
			}
			if !ok {
				t.Errorf("results (-want prefixes +got):\n%s", cmp.Diff(f.want, got))
				for _, res := range r.Results {
					if res.Origin == check.OriginSpec && len(res.Evidence) > 0 {
						t.Logf("%s evidence: %q", res.ID, res.Evidence)
					}
				}
				return
			}
			passed++
		})
	}
	t.Logf("%d of %d container-structure-test specs give the documented results", passed, len(cstFeatures))
}
