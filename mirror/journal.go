package mirror

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxJournalLine bounds one journal line.
const maxJournalLine = 64 << 10

// JournalEntry is one step an import finished: a blob or a manifest pushed (or found
// present) in a repository, or a tag published.
type JournalEntry struct {
	// Time is when the step finished.
	Time time.Time `json:"time"`
	// Gateway is the host the step was done against: a journal kept for one gateway
	// skips nothing on another.
	Gateway string `json:"gateway"`
	// Step is "blob", "manifest" or "tag".
	Step string `json:"step"`
	// Repository is the on-prem repository.
	Repository string `json:"repository"`
	// Digest is the blob's or manifest's digest (the tagged manifest's, for a tag).
	Digest string `json:"digest"`
	// Tag is the tag published, for a tag step.
	Tag string `json:"tag,omitempty"`
}

func (e JournalEntry) key() string {
	return e.Gateway + "\x00" + e.Step + "\x00" + e.Repository + "\x00" + e.Digest + "\x00" + e.Tag
}

// journal is an append-only JSON-lines file of finished steps, safe for concurrent use.
type journal struct {
	mu   sync.Mutex
	f    *os.File
	done map[string]bool
}

// openJournal reads the steps already recorded in path (creating it if needed) and opens
// it for appending. A last line cut short by a crash is ignored (and overwritten by the
// next entry's newline-terminated write); any other malformed line is an error.
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &journal{f: f, done: map[string]bool{}}
	fail := func(err error) (*journal, error) { f.Close(); return nil, err }
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("journal %s: not a regular file", path))
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var good int64
	for line := 1; ; line++ {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fail(fmt.Errorf("journal %s line %d: longer than %d bytes", path, line, maxJournalLine))
		}
		if errors.Is(err, io.EOF) {
			break // a partial last line (or none): dropped
		}
		if err != nil {
			return fail(fmt.Errorf("journal: %w", err))
		}
		var e JournalEntry
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return fail(fmt.Errorf("journal %s line %d: %w", path, line, err))
		}
		if e.Step != "blob" && e.Step != "manifest" && e.Step != "tag" {
			return fail(fmt.Errorf("journal %s line %d: unknown step %q", path, line, e.Step))
		}
		j.done[e.key()] = true
		good += int64(len(b))
	}
	if err := f.Truncate(good); err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	return j, nil
}

// has says whether e's step was recorded.
func (j *journal) has(e JournalEntry) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[e.key()]
}

// record appends e and syncs it to disk, so that a step recorded is a step done.
func (j *journal) record(e JournalEntry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.done[e.key()] {
		return nil
	}
	e.Time = time.Now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.done[e.key()] = true
	return nil
}

func (j *journal) close() error { return j.f.Close() }
