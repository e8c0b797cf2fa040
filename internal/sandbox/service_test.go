package sandbox_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
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
	res, err := svc.Stop()
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
