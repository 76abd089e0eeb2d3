package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func rec(i int) []byte { return fmt.Appendf(nil, "event-%04d", i) }

func drain(t *testing.T, s *Spool, batch int) [][]byte {
	t.Helper()
	var all [][]byte
	for {
		recs, next, lost := s.Peek(batch, 1<<20)
		if lost != 0 {
			t.Fatalf("lost %d segments", lost)
		}
		if len(recs) == 0 {
			return all
		}
		for _, r := range recs {
			all = append(all, r.Data)
		}
		if err := s.Ack(next); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordsComeBackInOrderAcrossSegments(t *testing.T) {
	s, err := Open(t.TempDir(), 4096) // segments of 512 bytes: many of them
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if d, err := s.Append(rec(i)); err != nil || d != 0 {
			t.Fatalf("append %d: dropped %d, %v", i, d, err)
		}
	}
	if got := s.Pending(); got != 100 {
		t.Fatalf("pending %d, want 100", got)
	}
	all := drain(t, s, 7)
	if len(all) != 100 {
		t.Fatalf("read %d records, want 100", len(all))
	}
	for i, r := range all {
		if !bytes.Equal(r, rec(i)) {
			t.Fatalf("record %d = %q, want %q", i, r, rec(i))
		}
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d after acking everything", s.Pending())
	}
	segs, _ := filepath.Glob(filepath.Join(s.dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segment files left after delivery, want only the one appended to", len(segs))
	}
}

func TestReopenResumesAtTheCursor(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs, next, _ := s.Peek(4, 1<<20)
	if len(recs) != 4 {
		t.Fatalf("peeked %d", len(recs))
	}
	if err := s.Ack(next); err != nil {
		t.Fatal(err)
	}
	// Peeked but never acknowledged: must come again after the restart.
	if recs, _, _ := s.Peek(3, 1<<20); len(recs) != 3 {
		t.Fatalf("peeked %d", len(recs))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Pending() != 6 {
		t.Fatalf("pending after reopen %d, want 6", s2.Pending())
	}
	if _, err := s2.Append(rec(10)); err != nil {
		t.Fatal(err)
	}
	all := drain(t, s2, 100)
	if len(all) != 7 || !bytes.Equal(all[0], rec(4)) || !bytes.Equal(all[6], rec(10)) {
		t.Fatalf("after reopen got %q", all)
	}
}

func TestOverflowDropsOldestAndCounts(t *testing.T) {
	s, err := Open(t.TempDir(), 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 500
	dropped := 0
	for i := range n {
		d, err := s.Append(rec(i))
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
	}
	if s.Bytes() > 2048 {
		t.Fatalf("spool holds %d bytes, bound 2048", s.Bytes())
	}
	if dropped == 0 {
		t.Fatal("nothing dropped although 500 records cannot fit in 2 KiB")
	}
	all := drain(t, s, 1000)
	if len(all)+dropped != n {
		t.Fatalf("kept %d + dropped %d != %d appended", len(all), dropped, n)
	}
	// What is kept is the newest, in order, ending with the last record.
	first := n - len(all)
	for i, r := range all {
		if !bytes.Equal(r, rec(first+i)) {
			t.Fatalf("kept record %d = %q, want %q (the newest ones)", i, r, rec(first+i))
		}
	}
}

func TestDropWhileDeliveringLeavesCursorConsistent(t *testing.T) {
	s, err := Open(t.TempDir(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		s.Append(rec(i))
	}
	_, next, _ := s.Peek(5, 1<<20)
	dropped := 0
	for i := 20; i < 200; i++ {
		d, _ := s.Append(rec(i))
		dropped += d
	}
	if err := s.Ack(next); err != nil { // its records were dropped meanwhile
		t.Fatal(err)
	}
	all := drain(t, s, 1000)
	if !bytes.Equal(all[len(all)-1], rec(199)) {
		t.Fatalf("last record %q", all[len(all)-1])
	}
	if len(all)+dropped != 200 {
		t.Fatalf("kept %d + dropped %d != 200", len(all), dropped)
	}
}

func TestTornTailIsCutOnOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.Append(rec(i))
	}
	path := s.path(s.segs[len(s.segs)-1].n)
	s.Close()
	// A crash in the middle of an append: half a frame at the end.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(frame(rec(3))[:9])
	f.Close()
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Lost() != 1 {
		t.Fatalf("lost %d, want the torn tail counted once", s2.Lost())
	}
	s2.Append(rec(4))
	all := drain(t, s2, 100)
	if len(all) != 4 || !bytes.Equal(all[2], rec(2)) || !bytes.Equal(all[3], rec(4)) {
		t.Fatalf("got %q", all)
	}
}

func TestOneProcessPerSpool(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, 1<<20); err == nil {
		t.Fatal("a second Open of a spool in use succeeded")
	}
	s.Close()
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatalf("reopening after Close: %v", err)
	}
	s2.Close()
}

func TestTooLargeRecordIsRefused(t *testing.T) {
	s, err := Open(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(make([]byte, 200)); err != ErrTooLarge {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// FuzzSegment opens a spool whose segment file and cursor are arbitrary bytes (what a
// damaged disk could hold): opening and reading never panic, what is read back is what
// Pending promised, and the spool stays usable.
func FuzzSegment(f *testing.F) {
	good := append([]byte(magic), frame([]byte("a"))...)
	good = append(good, frame([]byte(`{"type":"decision"}`))...)
	f.Add(good, []byte("1 8 0\n"))
	f.Add(good[:len(good)-3], []byte("1 17 1\n"))
	f.Add([]byte(magic+"\xff\xff\xff\xff\x00\x00\x00\x00"), []byte(""))
	f.Add([]byte("garbage"), []byte("x y z\n"))
	f.Add(append([]byte(magic), frame(nil)...), []byte("1 16 1\n"))
	f.Fuzz(func(t *testing.T, seg, cursor []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, cursorFile), cursor, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		want := s.Pending()
		got := 0
		for range want + 1 {
			recs, next, lost := s.Peek(3, 1<<20)
			if lost != 0 {
				t.Fatalf("a record validated on open could not be read back")
			}
			if len(recs) == 0 {
				break
			}
			got += len(recs)
			if err := s.Ack(next); err != nil {
				t.Fatal(err)
			}
		}
		if got != want {
			t.Fatalf("read %d records, Pending said %d", got, want)
		}
		if _, err := s.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		recs, _, _ := s.Peek(10, 1<<20)
		if len(recs) != 1 || string(recs[0].Data) != "after" {
			t.Fatalf("after the damaged segment, got %d records", len(recs))
		}
	})
}
