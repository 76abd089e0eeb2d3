package layer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadAhead(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i * 31 >> 5)
	}
	sum := sha256.Sum256(data)
	ra := startReadAhead(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)), deadline{})
	defer ra.close()
	// Alternate reads and skips of awkward sizes across block boundaries.
	var got []byte
	pos := int64(0)
	for step := 1; ; step++ {
		buf := make([]byte, 1000*step)
		n, err := io.ReadFull(ra, buf)
		got = append(got, buf[:n]...)
		pos += int64(n)
		if err != nil {
			break
		}
		skip := int64(7919 * step)
		newPos, err := ra.Seek(skip, io.SeekCurrent)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data[pos:newPos]...)
		if newPos < pos+skip {
			break
		}
		pos = newPos
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes back, not the %d written", len(got), len(data))
	}
	if err := ra.drain(); err != nil {
		t.Fatal(err)
	}
	if ra.diffID() != "sha256:"+hex.EncodeToString(sum[:]) || ra.size() != int64(len(data)) {
		t.Errorf("diffID %s size %d", ra.diffID(), ra.size())
	}
	if _, err := ra.Seek(0, io.SeekStart); err == nil {
		t.Error("seek from the start accepted")
	}
}

func TestReadAheadLimitAndErrors(t *testing.T) {
	ra := startReadAhead(bytes.NewReader(make([]byte, 1<<20)), 1<<20-1, deadline{})
	_, err := io.Copy(io.Discard, ra)
	var le *limitError
	if !errors.As(err, &le) || le.reason != "uncompressed size over 1.0 MiB" {
		t.Errorf("got %v", err)
	}
	ra.close()
	ra.close() // twice is fine

	boom := errors.New("boom")
	ra = startReadAhead(io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(boom)), 1<<20, deadline{})
	if err := ra.drain(); err != boom {
		t.Errorf("got %v, want %v", err, boom)
	}
	ra.close()

	// Closing while the producer waits for a free block stops it.
	ra = startReadAhead(bytes.NewReader(make([]byte, 8<<20)), 1<<30, deadline{})
	ra.close()
}
