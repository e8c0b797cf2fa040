package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestServiceHTTPServer starts a web server as an image's entrypoint
// would run, and checks it from outside the way goss's runtime resources
// do: its listening socket, its process, a request over the sandbox's own
// loopback, a file it sees; then Stop leaves nothing running.
func TestServiceHTTPServer(t *testing.T) {
	const version = "3.12.1"
	home := testenv.RequirePython(t, version)
	testenv.RequireRoot(t)
	root := mustRootFS(t)
	exe := copyPython(t, root, home, version)
	if err := os.WriteFile(root+"/index.html", []byte("hello from the sandbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustChroot(t, root, sandbox.ChrootOptions{})
	marker := fmt.Sprintf("1%04d", os.Getpid()%10000) // the port, unique to this run
	svc, err := c.Start(context.Background(), sandbox.Command{
		Path: exe, Args: []string{"-m", "http.server", "--bind", "127.0.0.1", marker}, Dir: "/",
		Env: []string{"PATH=/usr/bin"}, User: &sandbox.Credential{UID: 65534, GID: 65534},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	port := 0
	fmt.Sscan(marker, &port)
	listening := func() bool {
		socks, err := svc.Sockets()
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(socks, func(s sandbox.Socket) bool {
			return s.Proto == "tcp" && s.Port == port && s.Listening && s.IP.String() == "127.0.0.1"
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for !listening() {
		if exited, res, err := svc.Exited(); exited {
			t.Fatalf("the server exited: %+v %v", res, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	procs, err := svc.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].Comm != "python3.12" {
		t.Errorf("processes %+v, want the one python3.12", procs)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return svc.Dial(ctx, network, addr, nil)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from the sandbox\n" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
	// A command run beside it reaches it on the same loopback, as a
	// `docker exec` would.
	var fetched strings.Builder
	res, err := svc.Exec(context.Background(), sandbox.Command{
		Path: exe, Args: []string{"-c", fmt.Sprintf("import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:%d/index.html').read().decode(), end='')", port)},
		Env: []string{"PATH=/usr/bin"}, User: &sandbox.Credential{UID: 65534, GID: 65534}, Stdout: &fetched, Timeout: 10 * time.Second,
	})
	if err != nil || res.ExitCode != 0 || fetched.String() != "hello from the sandbox\n" {
		t.Errorf("exec beside the server: %+v %v %q", res, err, fetched.String())
	}
	// The sandbox's loopback is its own: nothing listens on this machine's.
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		conn.Close()
		t.Errorf("the server is reachable from this machine's loopback")
	}
	hosts, err := svc.ReadFile("/etc/hosts")
	if err != nil || !strings.Contains(string(hosts), "localhost") {
		t.Errorf("/etc/hosts in the sandbox: %q %v", hosts, err)
	}
	if _, err := svc.ReadFile("/../../../../proc/self/environ"); err == nil {
		t.Errorf("ReadFile reached outside the image")
	}
	res, err = svc.Stop()
	if err != nil || !res.TimedOut {
		t.Errorf("Stop: %+v %v, want the server killed", res, err)
	}
	for _, p := range procs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID)); err == nil {
			t.Errorf("process %d (%s) still there after Stop", p.PID, p.Comm)
		}
	}
	eventuallyNoProcesses(t, marker)
	if again, err := svc.Stop(); err != nil || again != res {
		t.Errorf("second Stop: %+v %v", again, err)
	}
}

// TestServiceEnds: a program that exits is seen through Done and Exited;
// one that cannot start is an error from Start; a context that ends kills
// the sandbox and all it started.
func TestServiceEnds(t *testing.T) {
	testenv.RequireRoot(t)
	c := mustChroot(t, mustRootFS(t), sandbox.ChrootOptions{})
	svc, err := c.Start(context.Background(), sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "echo bye >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	<-svc.Done()
	if exited, res, err := svc.Exited(); !exited || res.ExitCode != 3 || err != nil {
		t.Errorf("Exited: %v %+v %v, want exit status 3", exited, res, err)
	}
	svc.Stop()

	if _, err := c.Start(context.Background(), sandbox.Command{Path: "/usr/bin/missing"}); err == nil {
		t.Error("Start of a missing program succeeded")
	}

	const marker = "4242.5"
	ctx, cancel := context.WithCancel(context.Background())
	svc, err = c.Start(ctx, sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "sleep " + marker + " & sleep " + marker + "; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesWithArg(t, marker)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-svc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the context did not end the sandbox")
	}
	if _, res, _ := svc.Exited(); !res.TimedOut {
		t.Errorf("result %+v, want TimedOut", res)
	}
	eventuallyNoProcesses(t, marker)
	svc.Stop()
}

// TestServiceExec runs commands beside a running program as `docker exec`
// does: in its PID, mount and network namespaces, as the given user, in
// the given directory with the given environment, with the sandbox's
// capabilities; each ends with everything it left in its process group,
// also on timeout, before Exec returns.
func TestServiceExec(t *testing.T) {
	testenv.RequireRoot(t)
	c := mustChroot(t, mustRootFS(t), sandbox.ChrootOptions{})
	const marker = "4243.5"
	svc, err := c.Start(context.Background(), sandbox.Command{
		Path: "/bin/sh", Args: []string{"-c", "mkdir /made; echo up > /tmp/started; exec sleep " + marker},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	exec := func(cmd sandbox.Command) (sandbox.Result, string, string, error) {
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		res, err := svc.Exec(context.Background(), cmd)
		return res, stdout.String(), stderr.String(), err
	}
	sh := func(script string) sandbox.Command {
		return sandbox.Command{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"FOO=bar"}, Dir: "/tmp"}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, out, _, err := exec(sh("cat /tmp/started"))
		if err != nil {
			t.Fatal(err)
		}
		if out == "up\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw the program's /tmp/started: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	nobody := sh("cat /proc/self/status; pwd; echo $FOO; cat /proc/1/cmdline; echo; cat /proc/[0-9]*/cmdline")
	nobody.User = &sandbox.Credential{UID: 65534, GID: 65534}
	res, out, _, err := exec(nobody)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec as nobody: %+v %v", res, err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534\n", "Gid:\t65534\t", "CapBnd:\t00000000a80425fb\n",
		"\n/tmp\nbar\nimagegate-sandbox-init\x00\n",
		// The program, seen in the PID namespace they share.
		"sleep\x00" + marker + "\x00"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec output %q lacks %q", out, want)
		}
	}
	if res, out, errOut, err := exec(sh("echo out; echo err >&2; exit 7")); err != nil || res.ExitCode != 7 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exec exit 7: %+v %q %q %v", res, out, errOut, err)
	}

	// What a command leaves behind in its group ends with it; a timeout
	// kills the command and its group; either way, before Exec returns.
	const left = "4244.5"
	res, out, _, err = exec(sh("sleep " + left + " & echo started"))
	if err != nil || res.ExitCode != 0 || out != "started\n" {
		t.Errorf("exec with a background child: %+v %q %v", res, out, err)
	}
	if got := processesWithArg(t, left); len(got) > 0 {
		t.Errorf("left running after Exec returned: %q", got)
	}
	slow := sh("sleep " + left + " & sleep " + left)
	slow.Timeout = 300 * time.Millisecond
	start := time.Now()
	res, _, _, err = exec(slow)
	if err != nil || !res.TimedOut {
		t.Errorf("exec past its timeout: %+v %v, want TimedOut", res, err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("a 300ms timeout took %s", time.Since(start))
	}
	if got := processesWithArg(t, left); len(got) > 0 {
		t.Errorf("left running after a timed-out Exec returned: %q", got)
	}

	// Looked for in the sandbox as it is now, not in the image.
	made := sh("pwd; cat")
	made.Dir, made.Stdin = "/made", strings.NewReader("from stdin")
	if res, out, _, err := exec(made); err != nil || res.ExitCode != 0 || out != "/made\nfrom stdin" {
		t.Errorf("exec in a directory the program made, with stdin: %+v %q %v", res, out, err)
	}
	missing := sh("true")
	missing.Dir = "/nowhere"
	if _, err := svc.Exec(context.Background(), missing); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("exec in a missing directory: %v, want ErrNotFound", err)
	}
	if _, err := svc.Exec(context.Background(), sandbox.Command{Path: "/usr/bin/missing"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("exec of a missing program: %v, want ErrNotFound", err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, out, _, err := exec(sh(fmt.Sprintf("echo %d", i)))
			if err != nil || res.ExitCode != 0 || out != fmt.Sprintf("%d\n", i) {
				t.Errorf("concurrent exec %d: %+v %q %v", i, res, out, err)
			}
		}()
	}
	wg.Wait()
	if exited, _, _ := svc.Exited(); exited {
		t.Error("the program ended while commands ran beside it")
	}
	svc.Stop()
	if _, err := svc.Exec(context.Background(), sh("true")); err == nil {
		t.Error("exec after Stop succeeded")
	}
	eventuallyNoProcesses(t, marker)
}
