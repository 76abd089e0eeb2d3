package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrTooLarge is returned by Append for a record that cannot fit in the spool at all.
var ErrTooLarge = errors.New("record larger than the spool")

// Position is where the next record to deliver is: a segment, the byte offset in it, and
// how many of its records come before.
type Position struct {
	Seg uint64
	Off int64
	Idx int
}

func (p Position) before(q Position) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Idx < q.Idx)
}

type segment struct {
	n       uint64
	size    int64
	records int
}

// Spool is a bounded queue of records in segment files under one directory, with a cursor
// file naming the first record not yet acknowledged. One consumer Peeks and Acks; any
// number of producers Append. It is safe for concurrent use.
//
// Bounded by bytes: an Append that would pass the bound removes the oldest segments first
// and reports how many undelivered records went with them. Appends are not synced one by
// one: Sync (called by the producer when it has nothing more to write) and segment
// rollover flush them, so a crash of the machine (not of the process) may lose the last
// unsynced records. A damaged or torn record ends its segment: Open keeps the records
// before it and reports the loss.
type Spool struct {
	mu       sync.Mutex
	dir      string
	maxBytes int64
	segMax   int64
	segs     []segment
	total    int64
	w        *os.File
	cur      Position
	lost     int
	lockFile *os.File
}

// Open opens (or creates) the spool in dir, holding at most maxBytes of segment files.
// Records left by an earlier process are kept and come first.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes < headerLen+frameLen+1 {
		return nil, fmt.Errorf("spool %s: maxBytes %d is too small", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lf, err := lock(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segMax: max(maxBytes/8, 1), lockFile: lf}
	s, err = s.open()
	if err != nil && lf != nil {
		lf.Close()
	}
	return s, err
}

// open reads the segments and the cursor and starts a segment to append to.
func (s *Spool) open() (*Spool, error) {
	dir := s.dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ns []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || n == 0 {
			continue
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	cur, haveCur := s.readCursor()
	var curOffsets []int64
	for _, n := range ns {
		data, err := os.ReadFile(s.path(n))
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		sc := scanSegment(data)
		if sc.err != nil {
			s.lost++
		}
		if len(sc.offsets) == 0 {
			// Nothing readable: an empty, torn or foreign file.
			if err := os.Remove(s.path(n)); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
			continue
		}
		if sc.valid < int64(len(data)) {
			// Cut the torn or damaged tail so the sizes below are what is read back.
			if err := os.Truncate(s.path(n), sc.valid); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
		}
		s.segs = append(s.segs, segment{n: n, size: sc.valid, records: len(sc.offsets)})
		s.total += sc.valid
		if haveCur && n == cur.Seg {
			curOffsets = append(sc.offsets, sc.valid)
		}
	}
	s.cur = s.startOf(0)
	if haveCur {
		switch {
		case curOffsets != nil && cur.Idx >= 0 && cur.Idx < len(curOffsets) && curOffsets[cur.Idx] == cur.Off:
			s.cur = cur
		case curOffsets != nil:
			// The cursor does not name a record boundary: deliver the segment again.
			s.cur = Position{Seg: cur.Seg, Off: headerLen}
		default:
			// Its segment is gone (delivered or dropped): start at the next one.
			for i, g := range s.segs {
				if g.n > cur.Seg {
					s.cur = s.startOf(i)
					break
				}
			}
			if len(s.segs) > 0 && s.segs[len(s.segs)-1].n < cur.Seg {
				s.cur = Position{Seg: cur.Seg + 1, Off: headerLen}
			}
		}
	}
	// Drop segments before the cursor: delivered.
	for len(s.segs) > 0 && s.segs[0].n < s.cur.Seg {
		if err := s.removeOldest(); err != nil {
			return nil, err
		}
	}
	next := max(s.cur.Seg, 1)
	if len(s.segs) > 0 {
		next = max(next, s.segs[len(s.segs)-1].n+1)
	}
	if err := s.create(next); err != nil {
		return nil, err
	}
	if len(s.segs) == 1 || s.cur.Seg > next {
		s.cur = Position{Seg: s.segs[0].n, Off: headerLen}
	}
	return s, nil
}

// Lost is how many damaged segment tails or unreadable segments Open found (their records
// are lost; each counts once, however many records it held).
func (s *Spool) Lost() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

func (s *Spool) path(n uint64) string { return filepath.Join(s.dir, fmt.Sprintf("%020d.seg", n)) }

func (s *Spool) startOf(i int) Position {
	if i >= len(s.segs) {
		return Position{}
	}
	return Position{Seg: s.segs[i].n, Off: headerLen}
}

// create starts segment n as the one appended to.
func (s *Spool) create(n uint64) error {
	f, err := os.OpenFile(s.path(n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write([]byte(magic)); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if s.w != nil {
		if err := s.w.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("spool: %w", err)
		}
		s.w.Close()
	}
	s.w = f
	s.segs = append(s.segs, segment{n: n, size: headerLen})
	s.total += headerLen
	return nil
}

// removeOldest deletes the oldest segment and returns how many undelivered records it held.
func (s *Spool) removeOldest() error {
	g := s.segs[0]
	if err := os.Remove(s.path(g.n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.segs = s.segs[1:]
	s.total -= g.size
	if s.cur.Seg <= g.n {
		s.cur = s.startOf(0)
	}
	return nil
}

// Append adds rec at the end. To stay within the bound it first removes the oldest
// segments; dropped is how many undelivered records they held.
func (s *Spool) Append(rec []byte) (dropped int, err error) {
	need := int64(frameLen + len(rec))
	if len(rec) > MaxRecord || headerLen+need > s.maxBytes {
		return 0, ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last := &s.segs[len(s.segs)-1]
	if last.records > 0 && last.size+need > s.segMax {
		if err := s.create(last.n + 1); err != nil {
			return 0, err
		}
	}
	for s.total+need > s.maxBytes {
		if len(s.segs) == 1 {
			if err := s.create(s.segs[0].n + 1); err != nil {
				return dropped, err
			}
		}
		dropped += s.undelivered(0)
		if err := s.removeOldest(); err != nil {
			return dropped, err
		}
	}
	last = &s.segs[len(s.segs)-1]
	if _, err := s.w.Write(frame(rec)); err != nil {
		// Cut a partial write so the segment stays readable.
		_ = s.w.Truncate(last.size)
		return dropped, fmt.Errorf("spool: %w", err)
	}
	last.size += need
	last.records++
	s.total += need
	return dropped, nil
}

// undelivered is how many records of segs[i] are after the cursor.
func (s *Spool) undelivered(i int) int {
	g := s.segs[i]
	switch {
	case g.n < s.cur.Seg:
		return 0
	case g.n == s.cur.Seg:
		return g.records - s.cur.Idx
	}
	return g.records
}

// Sync flushes appended records to stable storage.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Sync()
}

// Pending is how many records are not yet acknowledged.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.segs {
		n += s.undelivered(i)
	}
	return n
}

// Bytes is the size of the segment files.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Entry is one record Peek returned and the position after it (Ack it to mark the record
// and those before it delivered).
type Entry struct {
	Data []byte
	Next Position
}

// Peek returns up to maxN records from the cursor (stopping once they pass maxBytes in
// all, but always at least one) and the position after the last one, for Ack. A segment
// that cannot be read back is skipped; lost counts such segments.
func (s *Spool) Peek(maxN int, maxBytes int) (recs []Entry, next Position, lost int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.cur
	size := 0
	for i := 0; i < len(s.segs) && len(recs) < maxN && (size < maxBytes || len(recs) == 0); i++ {
		g := s.segs[i]
		if g.n < pos.Seg {
			continue
		}
		if g.n > pos.Seg {
			pos = Position{Seg: g.n, Off: headerLen}
		}
		if pos.Idx >= g.records {
			continue
		}
		got, p, err := s.read(g, pos, maxN-len(recs), maxBytes-size)
		for _, r := range got {
			size += len(r.Data)
		}
		recs = append(recs, got...)
		pos = p
		if err != nil {
			// Unreadable from here on: skip the rest of the segment.
			lost++
			s.lost++
			pos = Position{Seg: g.n, Off: g.size, Idx: g.records}
		}
	}
	return recs, pos, lost
}

// read reads records of g from pos.
func (s *Spool) read(g segment, pos Position, maxN, maxBytes int) ([]Entry, Position, error) {
	f, err := os.Open(s.path(g.n))
	if err != nil {
		return nil, pos, err
	}
	defer f.Close()
	if _, err := f.Seek(pos.Off, io.SeekStart); err != nil {
		return nil, pos, err
	}
	r := bufio.NewReader(f)
	var recs []Entry
	size := 0
	for pos.Idx < g.records && len(recs) < maxN && (size < maxBytes || len(recs) == 0) {
		rec, err := readRecord(r, g.size-pos.Off)
		if err != nil {
			return recs, pos, err
		}
		size += len(rec)
		pos.Off += int64(frameLen + len(rec))
		pos.Idx++
		recs = append(recs, Entry{Data: rec, Next: pos})
	}
	return recs, pos, nil
}

// Ack marks everything before p (a position Peek returned) delivered: the cursor moves
// there and fully delivered segments are removed. A position the spool already passed
// (its records were dropped for room meanwhile) changes nothing.
func (s *Spool) Ack(p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cur.before(p) {
		return nil
	}
	s.cur = p
	for len(s.segs) > 1 && (s.segs[0].n < s.cur.Seg || (s.segs[0].n == s.cur.Seg && s.cur.Idx >= s.segs[0].records)) {
		if err := s.removeOldest(); err != nil {
			return err
		}
		if s.cur.Seg < s.segs[0].n {
			s.cur = s.startOf(0)
		}
	}
	return s.writeCursor()
}

const cursorFile = "cursor"

func (s *Spool) writeCursor() error {
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	data := fmt.Sprintf("%d %d %d\n", s.cur.Seg, s.cur.Off, s.cur.Idx)
	if err := os.WriteFile(tmp, []byte(data), 0o640); err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, cursorFile)); err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	return nil
}

// readCursor reads the cursor file; ok is false when there is none or it is not one.
func (s *Spool) readCursor() (Position, bool) {
	data, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil || len(data) > 80 {
		return Position{}, false
	}
	return parseCursor(string(data))
}

func parseCursor(text string) (Position, bool) {
	f := strings.Fields(text)
	if len(f) != 3 || !strings.HasSuffix(text, "\n") {
		return Position{}, false
	}
	seg, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	idx, err3 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil || seg == 0 || off < headerLen || idx < 0 {
		return Position{}, false
	}
	return Position{Seg: seg, Off: off, Idx: idx}, true
}

// Close syncs and closes the segment being appended to, and releases the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	err := s.w.Sync()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	s.w = nil
	if s.lockFile != nil {
		s.lockFile.Close()
		s.lockFile = nil
	}
	return err
}
