package storetest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// crashEnv carries the child's store target (a path or DSN) and round.
const crashEnv = "IMAGEGATE_STORETEST_CRASH"

const crashBatch = 500

// CrashChild is the body of the test that Crash re-executes: it appends
// batches of events forever, printing "ack N" after each AppendEvents
// returns, until it is killed. Outside Crash it skips.
func CrashChild(t *testing.T, open func(target string) rollout.Store) {
	v := os.Getenv(crashEnv)
	if v == "" {
		t.Skip("run by Crash only")
	}
	round, target, _ := strings.Cut(v, ":")
	s := open(target)
	for i := 0; ; i++ {
		evs := Events(fmt.Sprintf("r%s-b%d", round, i), "crash", fmt.Sprintf("r%s-b%d", round, i), crashBatch)
		if _, err := s.AppendEvents(context.Background(), evs); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		// os.Stdout is unbuffered: once this write returns, the parent
		// can read the acknowledgement even if we die the next instant.
		fmt.Printf("ack %d\n", i)
	}
}

// Crash runs the test childTest (which calls CrashChild) in a child
// process against target, kill -9s it at a random moment after some
// acknowledged batches, and checks with a store from reopen that every
// acknowledged batch is there in full and every other one is there in
// full or not at all. It does that rounds times on the same database.
func Crash(t *testing.T, childTest, target string, rounds int, reopen func() rollout.Store) {
	for round := range rounds {
		acked := crashOnce(t, childTest, target, round)
		s := reopen()
		for i := 0; i <= acked+3; i++ {
			v := fmt.Sprintf("r%d-b%d", round, i)
			c, err := s.CountJobs(t.Context(), "crash", v, -1, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case i <= acked && c.Total != crashBatch:
				t.Errorf("round %d: acknowledged batch %d has %d of its %d events after kill -9", round, i, c.Total, crashBatch)
			case c.Total != 0 && c.Total != crashBatch:
				t.Errorf("round %d: batch %d is torn: %d of %d events", round, i, c.Total, crashBatch)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d batches acknowledged before kill -9, all present", round, acked+1)
	}
}

// crashOnce returns the last acknowledged batch number.
func crashOnce(t *testing.T, childTest, target string, round int) int {
	cmd := exec.Command(os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+strconv.Itoa(round)+":"+target)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := 5 + rand.IntN(20)
	acked := -1
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ack "); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n != acked+1 {
				t.Fatalf("child printed %q after ack %d", line, acked)
			}
			acked = n
			if acked == killAfter && !killed {
				killed = true
				// Land somewhere inside the next transaction.
				go func() {
					time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
					cmd.Process.Kill()
				}()
			}
			continue
		}
		if strings.HasPrefix(line, "error ") {
			t.Fatalf("child: %s", line)
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d batches without being killed: %v", acked+1, err)
	}
	return acked
}
