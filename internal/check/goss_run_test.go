package check_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/testenv"
)

// webDir is webImage's document root; it names the server's processes,
// so that a test can tell none is left.
const webDir = "/srv/imagegate-www"

// ownerEnv is in webImage's environment, so its processes and the
// commands run beside them carry it: the leak checks then see only this
// test binary's processes, not those of another checkout's run.
var ownerEnv = fmt.Sprintf("IMAGEGATE_TEST_OWNER=%d", os.Getpid())

// webImage is a Debian 13 image whose entrypoint is a web server, as a
// Dockerfile would make it: python3 -m http.server on 0.0.0.0:8000,
// serving webDir as user app.
func webImage(t testing.TB) string {
	t.Helper()
	rootfs := testenv.DebianRootfs(t, "trixie", "python3")
	passwd, group := fileFromTar(t, rootfs, "./etc/passwd"), fileFromTar(t, rootfs, "./etc/group")
	layer := tarLayer(t, []tarEntry{
		{name: "etc/passwd", body: passwd + "app:x:1000:1000:App:/home/app:/bin/sh\n", mode: 0o644},
		{name: "etc/group", body: group + "app:x:1000:\n", mode: 0o644},
		{name: "home/app/", dir: true, mode: 0o750, uid: 1000, gid: 1000},
		{name: strings.TrimPrefix(webDir, "/") + "/", dir: true, mode: 0o755},
		{name: strings.TrimPrefix(webDir, "/") + "/index.html", body: "hello from imagegate\n", mode: 0o644},
	})
	return ociImage(t, rootfs, layer, v1.Config{
		User:       "app",
		WorkingDir: webDir,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONUNBUFFERED=1", ownerEnv},
		Entrypoint: []string{"python3", "-m", "http.server"},
		Cmd:        []string{"--bind", "0.0.0.0", "--directory", webDir, "8000"},
	})
}

// serversLeft lists this machine's processes that are webImage's server.
func serversLeft(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var left []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte("http.server\x00")) && bytes.Contains(b, []byte(webDir+"\x00")) && ours(f) {
			left = append(left, f+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// ours reports whether the process of /proc/N/cmdline has ownerEnv. A
// process that is gone by now is not left running.
func ours(cmdline string) bool {
	env, err := os.ReadFile(filepath.Join(filepath.Dir(cmdline), "environ"))
	return err == nil && bytes.Contains(append([]byte{0}, env...), []byte("\x00"+ownerEnv+"\x00"))
}

// commandsLeft lists this machine's processes with arg on their
// command line.
func commandsLeft(t testing.TB, arg string) []string {
	t.Helper()
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var left []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte("\x00"+arg+"\x00")) && ours(f) {
			left = append(left, f+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

func openScanned(t testing.TB, oci string) (*snapshot.Snapshot, *source.Tree) {
	t.Helper()
	ctx := context.Background()
	tree, err := source.Open(ctx, "oci:"+oci, source.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: scan.ExecChroot})
	if err != nil {
		t.Fatal(err)
	}
	return snap, tree
}

// TestGossRun runs goss files with --run against webImage: its
// entrypoint started in the sandbox, the runtime resources checked
// against it, skipped where the sandbox cannot answer as a container
// would, and nothing left running afterwards.
func TestGossRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, scans and runs a Debian image")
	}
	snap, tree := openScanned(t, webImage(t))
	tests := []struct {
		file string
		want []string
		// failures: the message of each failure, by ID.
		failures map[string]string
		// wait is --wait: long for a suite that passes (it ends as soon as
		// it does); for one that fails, the time its failures are retried,
		// long enough for the server to start on a loaded machine.
		wait time.Duration
	}{
		{"pass.yaml", []string{
			"info spec/goss/http[http://example.com/].status",
			"info spec/goss/addr[tcp://example.com:443].reachable",
			"info spec/goss/dns[example.com].resolvable",
			"info spec/goss/dns[upstream].resolvable",
			"info spec/goss/service[nginx].running",
			"pass spec/goss/port[tcp:8000].listening",
			"pass spec/goss/port[tcp:8000].ip",
			"pass spec/goss/port[8000].listening",
			"pass spec/goss/port[tcp6:8000].listening",
			"pass spec/goss/port[tcp:9999].listening",
			"pass spec/goss/process[python3].running",
			"pass spec/goss/process[nginx].running",
			"pass spec/goss/http[http://localhost:8000/index.html].status",
			"pass spec/goss/http[http://localhost:8000/index.html].headers",
			"pass spec/goss/http[http://localhost:8000/index.html].body",
			"pass spec/goss/http[http://127.0.0.1:8000/missing].status",
			"pass spec/goss/http[http://127.0.0.1:8000/missing].body",
			"pass spec/goss/http[head].status",
			"pass spec/goss/addr[tcp://localhost:8000].reachable",
			"pass spec/goss/addr[tcp://127.0.0.1:9999].reachable",
			"pass spec/goss/dns[localhost].resolvable",
			"pass spec/goss/dns[localhost].addrs",
			"pass spec/goss/dns[ip6-localhost].resolvable",
			"pass spec/goss/dns[ip6-localhost].addrs",
			"pass spec/goss/file[/srv/imagegate-www/index.html].exists",
			"pass spec/goss/command[id -un].exit-status",
			"pass spec/goss/command[id -un].stdout",
			"pass spec/goss/command[fetch].exit-status",
			"pass spec/goss/command[fetch].stdout",
			"pass spec/goss/command[fetch].stderr",
			"pass spec/goss/run",
		}, nil, 20 * time.Second},
		{"fail.yaml", []string{
			"fail spec/goss/port[tcp:8080].listening",
			"fail spec/goss/port[tcp:8000].ip",
			"fail spec/goss/process[nginx].running",
			"fail spec/goss/http[http://localhost:8000/index.html].status",
			"fail spec/goss/http[http://localhost:8000/index.html].body",
			"fail spec/goss/http[http://localhost:8081/].status",
			"fail spec/goss/addr[tcp://localhost:8081].reachable",
			"fail spec/goss/dns[localhost].addrs",
			"fail spec/goss/command[fetch-missing].exit-status",
			"fail spec/goss/command[fetch-missing].stdout",
			"fail spec/goss/command[sleep 4245.5 & sleep 4245.5].exit-status",
			"pass spec/goss/port[tcp:8000].listening",
			"pass spec/goss/dns[localhost].resolvable",
			"pass spec/goss/run",
		}, map[string]string{
			"spec/goss/port[tcp:8080].listening":                         "listening: expected true, got false",
			"spec/goss/port[tcp:8000].ip":                                `ip: expected contain-elements ["127.0.0.1"], got ["0.0.0.0"]`,
			"spec/goss/process[nginx].running":                           "running: expected true, got false",
			"spec/goss/http[http://localhost:8000/index.html].status":    "status: expected 201, got 200",
			"spec/goss/http[http://localhost:8000/index.html].body":      `body: expected ["goodbye"], got "hello from imagegate"`,
			"spec/goss/http[http://localhost:8081/].status":              "status: Get \"http://localhost:8081/\": ",
			"spec/goss/addr[tcp://localhost:8081].reachable":             "reachable: expected true, got false",
			"spec/goss/dns[localhost].addrs":                             `addrs: expected contain-elements ["10.0.0.1"], got ["127.0.0.1","::1"]`,
			"spec/goss/command[fetch-missing].exit-status":               "exit-status: expected 0, got 1",
			"spec/goss/command[fetch-missing].stdout":                    `stdout: expected ["200"], got ""`,
			"spec/goss/command[sleep 4245.5 & sleep 4245.5].exit-status": "exit-status: command execution timed out (500ms)",
		}, 10 * time.Second},
	}
	ctx := context.Background()
	passed := 0
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			g, err := check.ReadGossFile(filepath.Join("testdata", "goss", "run", tt.file), check.GossTemplate{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r, err := check.Run(ctx, snap, check.Options{Goss: g, Target: tree, Run: &check.GossRun{Wait: tt.wait}})
			if err != nil {
				t.Fatal(err)
			}
			if left := serversLeft(t); len(left) > 0 {
				t.Errorf("left running after the check: %q", left)
			}
			if left := commandsLeft(t, "4245.5"); len(left) > 0 {
				t.Errorf("a timed-out command left running: %q", left)
			}
			var got []string
			for _, res := range r.Results {
				if res.Origin != check.OriginSpec {
					continue
				}
				got = append(got, res.Status+" "+res.ID)
				if want, ok := tt.failures[res.ID]; ok && !strings.HasPrefix(res.Message, want) {
					t.Errorf("%s: message %q, want prefix %q", res.ID, res.Message, want)
				}
				if res.Status == check.StatusInfo && !strings.Contains(res.Message, "skipped: ") {
					t.Errorf("%s: info without why: %q", res.ID, res.Message)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
				for _, res := range r.Results {
					if res.Origin == check.OriginSpec && !slices.Contains(tt.want, res.Status+" "+res.ID) {
						t.Logf("%s %s: %s %q", res.Status, res.ID, res.Message, res.Evidence)
					}
				}
				return
			}
			if tt.failures != nil && time.Since(start) < tt.wait-time.Second {
				t.Errorf("failing runtime checks were not retried for --wait: done after %s", time.Since(start))
			}
			passed++
		})
	}
	t.Logf("%d of %d goss --run files give the results goss documents", passed, len(tests))
	t.Run("ends", func(t *testing.T) { gossRunEnds(t, snap, tree) })
}

// gossRunEnds: an entrypoint that exits fails the run, with its output;
// a cancelled context stops the server; without --run, and with an exec
// mode that cannot start it, nothing is passed.
func gossRunEnds(t *testing.T, snap *snapshot.Snapshot, tree *source.Tree) {
	ctx := context.Background()
	g, err := check.ReadGossFile(filepath.Join("testdata", "goss", "run", "fail.yaml"), check.GossTemplate{})
	if err != nil {
		t.Fatal(err)
	}
	exits := *snap
	img := *snap.Image
	img.Entrypoint, img.Cmd = []string{"/bin/sh", "-c", "echo started; echo giving up >&2; exit 3"}, nil
	exits.Image = &img
	start := time.Now()
	r, err := check.Run(ctx, &exits, check.Options{Goss: g, Target: tree, Run: &check.GossRun{Wait: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	run := find(t, r, "spec/goss/run")
	if run.Status != check.StatusFail || !strings.HasPrefix(run.Message, "the entrypoint ended (exit status 3) before the checks did") ||
		!slices.Contains(run.Evidence, "stdout: started") || !slices.Contains(run.Evidence, "stderr: giving up") {
		t.Errorf("an entrypoint that exits: %s %q %q", run.Status, run.Message, run.Evidence)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %s for an entrypoint that had exited", time.Since(start))
	}

	cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if _, err := check.Run(cctx, snap, check.Options{Goss: g, Target: tree, Run: &check.GossRun{Wait: time.Minute}}); err == nil {
		t.Error("a cancelled check returned a report")
	}
	if left := serversLeft(t); len(left) > 0 {
		t.Errorf("left running after a cancelled check: %q", left)
	}

	pass, err := check.ReadGossFile(filepath.Join("testdata", "goss", "run", "pass.yaml"), check.GossTemplate{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts check.Options
		want string // status and message prefix of port[tcp:8000].listening
	}{
		{"without --run", check.Options{Goss: pass, Target: tree},
			"info listening: skipped: a listening port needs a running container: pass --run"},
		{"snapshot only", check.Options{Goss: pass, Run: &check.GossRun{}},
			"fail listening: not checked: needs the image's files"},
		{"no sandbox", check.Options{Goss: pass, Target: &source.Tree{Dir: tree.Dir, RootFS: true}, Run: &check.GossRun{}},
			"fail listening: not checked: --run needs the chroot sandbox"},
	} {
		r, err := check.Run(ctx, snap, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		res := find(t, r, "spec/goss/port[tcp:8000].listening")
		if got := res.Status + " " + res.Message; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want prefix %q", tc.name, got, tc.want)
		}
		for _, x := range r.Results {
			if x.Status == check.StatusPass && slices.ContainsFunc([]string{"port[", "process[", "http[", "addr[", "dns["}, func(p string) bool { return strings.Contains(x.ID, p) }) {
				t.Errorf("%s: %s passed", tc.name, x.ID)
			}
		}
	}
}

func find(t testing.TB, r *check.Report, id string) check.Result {
	t.Helper()
	for _, res := range r.Results {
		if res.ID == id {
			return res
		}
	}
	t.Fatalf("no result %s", id)
	return check.Result{}
}
