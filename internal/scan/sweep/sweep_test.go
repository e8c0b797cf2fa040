package sweep_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/sandbox"
	"github.com/imagegate/imagegate/internal/scan/sweep"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// probe speaks the protocol in sh: part "crash" kills the shell, "hang"
// outlives the watchdog, "slow" is ended by the probe itself, "bad" fails.
const probe = `echo '{"t":"hello","version":"1.2"}'
for p in "$@"; do
  echo "{\"t\":\"start\",\"m\":\"$p\"}"
  case "$p" in
  crash) echo "probe: $p went wrong" >&2; kill -SEGV $$ ;;
  hang) exec sleep 30 ;;
  slow) echo "{\"t\":\"timeout\",\"m\":\"$p\"}" ;;
  bad) echo "{\"t\":\"err\",\"m\":\"$p\",\"e\":\"no such part\"}" ;;
  *) echo "{\"t\":\"ok\",\"m\":\"$p\",\"d\":\"d-$p\"}" ;;
  esac
done
echo '{"t":"done"}'`

type hello struct {
	Version string `json:"version"`
}

func TestRunRestartsAfterCrashAndHang(t *testing.T) {
	var calls [][]string
	spec := sweep.Spec[hello]{
		Command: func(parts []string, restart bool) sandbox.Command {
			calls = append(calls, append([]string{map[bool]string{false: "first", true: "restart"}[restart]}, parts...))
			return sandbox.Command{Path: "/bin/sh", Args: append([]string{"-c", probe, "probe"}, parts...)}
		},
		Parts:     []string{"a", "crash", "bad", "hang", "slow", "c"},
		Timeout:   100 * time.Millisecond,
		MaxOutput: 1 << 20,
		Action:    "import",
	}
	o := sweep.Run(context.Background(), sandbox.NewLocal("/"), spec)
	if o.Stop != sweep.Finished || o.Hello == nil || o.Hello.Version != "1.2" {
		t.Fatalf("Run: stop %v, hello %+v, ending %q", o.Stop, o.Hello, o.Ending)
	}
	crash := o.Results["crash"]
	if crash.Status != snapshot.StatusCrash || !strings.HasPrefix(crash.Err, "killed by ") || !strings.HasSuffix(crash.Err, ": probe: crash went wrong") {
		t.Errorf("crash verdict = %+v, want a crash with the signal and the last stderr line", crash)
	}
	delete(o.Results, "crash")
	want := map[string]sweep.Result{
		"a":    {Status: snapshot.StatusOK, Detail: "d-a"},
		"bad":  {Status: snapshot.StatusImportError, Err: "no such part"},
		"hang": {Status: snapshot.StatusTimeout, Err: "import did not finish within 100ms; the process was killed"},
		"slow": {Status: snapshot.StatusTimeout, Err: "import did not finish within the time limit"},
		"c":    {Status: snapshot.StatusOK, Detail: "d-c"},
	}
	if d := cmp.Diff(want, o.Results); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
	wantCalls := [][]string{
		{"first", "a", "crash", "bad", "hang", "slow", "c"},
		{"restart", "bad", "hang", "slow", "c"},
		{"restart", "slow", "c"},
	}
	if d := cmp.Diff(wantCalls, calls); d != "" {
		t.Errorf("processes (-want +got):\n%s", d)
	}
}

func TestRunReportsWhyItStoppedShort(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		script     string
		process    string
		stop       sweep.Stop
		ending     string
		hasResults bool
	}{
		{name: "no hello", path: "/bin/sh", script: "echo 'error while loading shared libraries' >&2; exit 3",
			process: "interpreter", stop: sweep.NotStarted, ending: "interpreter exited with status 3: error while loading shared libraries"},
		{name: "ends between parts", path: "/bin/sh", script: `echo '{"t":"hello"}'; echo '{"t":"ok","m":"a"}'; exit 1`,
			stop: sweep.EndedEarly, ending: "exited with status 1", hasResults: true},
		{name: "not run", path: "/nonexistent/probe", stop: sweep.NotRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sweep.Run(context.Background(), sandbox.NewLocal("/"), sweep.Spec[hello]{
				Command: func(parts []string, _ bool) sandbox.Command {
					return sandbox.Command{Path: tc.path, Args: append([]string{"-c", tc.script, "probe"}, parts...)}
				},
				Parts:   []string{"a", "b"},
				Timeout: time.Second,
				Process: tc.process,
			})
			if o.Stop != tc.stop || o.Ending != tc.ending {
				t.Errorf("Run: stop %v ending %q, want %v %q", o.Stop, o.Ending, tc.stop, tc.ending)
			}
			if (tc.stop == sweep.NotRun) != (o.Err != nil) {
				t.Errorf("Run: err %v with stop %v", o.Err, o.Stop)
			}
			if got := len(o.Results) > 0; got != tc.hasResults {
				t.Errorf("Run: results %v, want some: %v", o.Results, tc.hasResults)
			}
		})
	}
}
