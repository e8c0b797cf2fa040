package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/imagegate/imagegate/internal/rollout"
)

// queue holds the events not yet delivered: in memory up to max, the rest
// in the spool. The head of mem may be the spool's first lines (fromSpool
// of them): they stay in the file until delivered, so a runner that dies
// before delivering them sends them on its next start.
type queue struct {
	mu        sync.Mutex
	mem       []rollout.JobEvent
	max       int
	fromSpool int
	spool     *spool // nil without SpoolDir
}

func newQueue(max int, dir string, maxBytes int64) (*queue, error) {
	q := &queue{max: max}
	if dir != "" {
		s, err := openSpool(filepath.Join(dir, "events.jsonl"), maxBytes)
		if err != nil {
			return nil, err
		}
		q.spool = s
	}
	return q, nil
}

// add queues ev and returns how many events are in memory.
func (q *queue) add(ev rollout.JobEvent) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.mem) < q.max {
		q.mem = append(q.mem, ev)
		return len(q.mem), nil
	}
	if q.spool == nil {
		return len(q.mem), ErrBacklogFull
	}
	if err := q.spool.append([]rollout.JobEvent{ev}); err != nil {
		return len(q.mem), err
	}
	return len(q.mem), nil
}

// len counts the events not yet delivered.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.mem)
	if q.spool != nil {
		n += q.spool.count - q.fromSpool
	}
	return n
}

// head returns (a copy of) the first n events, loading the spool's first
// lines when none of them is in memory.
func (q *queue) head(n int) ([]rollout.JobEvent, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spool != nil && q.fromSpool == 0 && q.spool.count > 0 && len(q.mem) < q.max {
		evs, err := q.spool.read(q.max - len(q.mem))
		if err != nil {
			return nil, err
		}
		q.mem = append(evs, q.mem...)
		q.fromSpool = len(evs)
	}
	return append([]rollout.JobEvent(nil), q.mem[:min(n, len(q.mem))]...), nil
}

// pop removes the first n events, delivered.
func (q *queue) pop(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mem = q.mem[n:]
	if d := min(n, q.fromSpool); d > 0 {
		q.fromSpool -= d
		return q.spool.drop(d)
	}
	return nil
}

// close writes the events in memory that are not in the spool yet to it.
func (q *queue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	rest := q.mem[q.fromSpool:]
	if len(rest) == 0 {
		return nil
	}
	if q.spool == nil {
		return fmt.Errorf("imagegate client: %d events not delivered and lost (no SpoolDir)", len(rest))
	}
	if err := q.spool.append(rest); err != nil {
		return fmt.Errorf("imagegate client: %d events not delivered: %w", len(rest), err)
	}
	return fmt.Errorf("imagegate client: %d events not delivered, kept in %s for the next start", q.spool.count, q.spool.path)
}

// spool is a file of JSON lines, one event each, bounded in size. One
// client uses it at a time.
type spool struct {
	path  string
	max   int64
	size  int64
	count int
}

func openSpool(path string, max int64) (*spool, error) {
	s := &spool{path: path, max: max}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("imagegate client: spool: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("imagegate client: spool: %w", err)
	}
	s.size = int64(len(b))
	s.count = bytes.Count(b, []byte("\n"))
	return s, nil
}

// append writes evs in one piece, or none of them when they would make
// the file larger than max (ErrBacklogFull).
func (s *spool) append(evs []rollout.JobEvent) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	if s.size+int64(buf.Len()) > s.max {
		return fmt.Errorf("spool %s holds %d bytes of %d: %w", s.path, s.size, s.max, ErrBacklogFull)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.size += int64(buf.Len())
	s.count += len(evs)
	return nil
}

// lines returns the file's lines.
func (s *spool) lines() ([][]byte, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out, sc.Err()
}

// read decodes the first n events.
func (s *spool) read(n int) ([]rollout.JobEvent, error) {
	lines, err := s.lines()
	if err != nil {
		return nil, err
	}
	var evs []rollout.JobEvent
	for _, l := range lines[:min(n, len(lines))] {
		var ev rollout.JobEvent
		if err := json.Unmarshal(l, &ev); err != nil {
			return nil, fmt.Errorf("spool %s: %w", s.path, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// drop removes the first n lines, replacing the file atomically.
func (s *spool) drop(n int) error {
	lines, err := s.lines()
	if err != nil {
		return err
	}
	rest := bytes.Join(lines[min(n, len(lines)):], []byte("\n"))
	if len(rest) > 0 {
		rest = append(rest, '\n')
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, rest, 0o600); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.size = int64(len(rest))
	s.count = max(len(lines)-n, 0)
	return nil
}
