package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput caps each of stdout and stderr when Command.MaxOutput is
// not set: enough for any version banner or import report, small enough
// that a program printing forever costs nothing.
const DefaultMaxOutput = 1 << 20

// drainGrace is how long output copying may go on after the program and
// everything it started are gone. Only a process that escaped the kill (a
// Local program that called setsid) can hold a pipe open that long.
const drainGrace = time.Second

// capWriter delivers at most left bytes to w and silently swallows the rest,
// so that a chatty child never blocks on a full pipe.
type capWriter struct {
	w    io.Writer
	left int64
	// failed stops delivery after w returned an error; the child keeps
	// running and its output is discarded, as it is past the cap.
	failed bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	n := len(p)
	if c.failed || c.left <= 0 {
		return n, nil
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	m, err := c.w.Write(p)
	c.left -= int64(m)
	if err != nil {
		c.failed = true
	}
	return n, nil
}

// outputs carries a program's stdout and stderr through pipes of our own
// rather than letting os/exec do it, so that Wait returns as soon as the
// program is gone and the draining can be bounded separately.
type outputs struct {
	child [2]*os.File // write ends, handed to the child; nil for discarded streams
	read  []*os.File
	wg    sync.WaitGroup
}

func newOutputs(cmd Command) (*outputs, error) {
	max := cmd.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	o := &outputs{}
	for i, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
		if w == nil {
			continue // os/exec connects /dev/null
		}
		r, cw, err := os.Pipe()
		if err != nil {
			o.closeChildEnds()
			o.closeReadEnds()
			return nil, fmt.Errorf("create output pipe: %w", err)
		}
		o.child[i] = cw
		o.read = append(o.read, r)
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			// Errors end the copy; the pipe is then closed and a
			// child still writing gets EPIPE, which only happens
			// once we have stopped caring about it.
			_, _ = io.Copy(&capWriter{w: w, left: max}, r)
		}()
	}
	return o, nil
}

// stdout and stderr return the child's ends, typed so that a nil *os.File
// becomes a nil io.Writer (os/exec then connects /dev/null).
func (o *outputs) stdout() io.Writer { return writerOrNil(o.child[0]) }
func (o *outputs) stderr() io.Writer { return writerOrNil(o.child[1]) }

func writerOrNil(f *os.File) io.Writer {
	if f == nil {
		return nil
	}
	return f
}

// closeChildEnds drops our copies of the write ends once the child has
// them, so that the copies end when the child's side is gone.
func (o *outputs) closeChildEnds() {
	for i, f := range o.child {
		if f != nil {
			f.Close()
			o.child[i] = nil
		}
	}
}

func (o *outputs) closeReadEnds() {
	for _, f := range o.read {
		f.Close()
	}
}

// finish waits for all output to be delivered, giving up after drainGrace.
func (o *outputs) finish() {
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainGrace):
		o.closeReadEnds()
		<-done
		return
	}
	o.closeReadEnds()
}

// resultOf translates a wait status into a Result.
func resultOf(ws syscall.WaitStatus) Result {
	if ws.Signaled() {
		return Result{ExitCode: -1, Signal: ws.Signal().String()}
	}
	return Result{ExitCode: ws.ExitStatus()}
}

// ErrNotFound is returned (wrapped) when the program or working directory a
// Command names does not exist in the image.
var ErrNotFound = errors.New("not found in the image")
