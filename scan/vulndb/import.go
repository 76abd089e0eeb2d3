package vulndb

import (
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Bounds on imported input, so a hostile or corrupt export cannot exhaust
// memory or disk.
const (
	// MaxRecordBytes is the largest single OSV record accepted.
	MaxRecordBytes = 16 << 20
	// MaxArchiveEntries is the most entries read from one zip archive.
	MaxArchiveEntries = 2_000_000
	// MaxArchiveBytes is the most decompressed bytes read from one archive.
	MaxArchiveBytes = 16 << 30
)

// Import reads OSV records from the sources and writes a database to dst,
// replacing any database there only once the new one is complete. A source
// is a directory (every *.json file under it, recursively), a zip archive
// such as osv.dev's per-ecosystem all.zip (every *.json entry), or a single
// *.json record. Withdrawn records are skipped; when two sources hold the
// same id, the record with the later modified time wins (at equal times,
// the one read last). A malformed record
// fails the import, naming the file.
func Import(dst string, sources ...string) (Status, error) {
	if len(sources) == 0 {
		return Status{}, errors.New("importing vulnerability database: no sources")
	}
	c := &collector{records: map[string]Record{}, digests: map[string][32]byte{}, withdrawn: map[string]bool{}}
	for _, src := range sources {
		if err := c.source(src); err != nil {
			return Status{}, fmt.Errorf("importing %s: %w", src, err)
		}
	}
	return write(dst, c, time.Now().UTC())
}

type collector struct {
	records   map[string]Record
	digests   map[string][32]byte // SHA-256 of each kept record's bytes
	withdrawn map[string]bool
}

func (c *collector) source(src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".json") {
				return c.file(p)
			}
			return nil
		})
	case strings.HasSuffix(src, ".zip"):
		return c.archive(src)
	default:
		return c.file(src)
	}
}

func (c *collector) file(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := readBounded(f, MaxRecordBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := c.add(data); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func (c *collector) archive(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return err
	}
	defer zr.Close()
	if len(zr.File) > MaxArchiveEntries {
		return fmt.Errorf("%d entries, more than %d", len(zr.File), MaxArchiveEntries)
	}
	var total int64
	for _, zf := range zr.File {
		if err := checkEntryName(zf.Name); err != nil {
			return err
		}
		if zf.FileInfo().IsDir() || !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		if zf.UncompressedSize64 > MaxRecordBytes {
			return fmt.Errorf("%s: %d bytes, more than %d", zf.Name, zf.UncompressedSize64, MaxRecordBytes)
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", zf.Name, err)
		}
		data, err := readBounded(rc, MaxRecordBytes)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", zf.Name, err)
		}
		if total += int64(len(data)); total > MaxArchiveBytes {
			return fmt.Errorf("more than %d decompressed bytes", int64(MaxArchiveBytes))
		}
		if err := c.add(data); err != nil {
			return fmt.Errorf("%s: %w", zf.Name, err)
		}
	}
	return nil
}

// checkEntryName rejects archive entry names that try to leave the archive:
// absolute paths, ".." elements, backslashes, drive letters and NULs.
func checkEntryName(name string) error {
	bad := name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") ||
		(len(name) >= 2 && name[1] == ':')
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("archive entry %q: unsafe name", name)
	}
	return nil
}

func readBounded(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("record larger than %d bytes", max)
	}
	return data, nil
}

func (c *collector) add(data []byte) error {
	r, err := ParseRecord(data)
	if errors.Is(err, ErrWithdrawn) {
		c.withdrawn[r.ID] = true
		delete(c.records, r.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if c.withdrawn[r.ID] {
		return nil
	}
	if old, ok := c.records[r.ID]; ok && old.Modified.After(r.Modified) {
		return nil
	}
	c.records[r.ID] = r
	c.digests[r.ID] = sha256.Sum256(data)
	return nil
}

// revision hashes the database format version, then the sorted record ids,
// modified times and record digests. The digests matter: the records in
// golang.org/x/vulndb's repository all carry the zero modified time, so ids
// and times alone would miss a corrected range. The format matters because a
// new one keeps more of each record (format 2: Go platform limits), which
// changes what matching finds: reports cached under the old revision must
// not be reused.
func revision(format int, records map[string]Record, digests map[string][32]byte) string {
	ids := make([]string, 0, len(records))
	for id := range records {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	fmt.Fprintf(h, "portcullis vulndb format %d\n", format)
	for _, id := range ids {
		d := digests[id]
		fmt.Fprintf(h, "%s\x00%s\x00%x\n", id, records[id].Modified.UTC().Format(time.RFC3339Nano), d[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func write(dst string, c *collector, now time.Time) (Status, error) {
	files := map[string]*ecosystemFile{}
	counts := map[string]int{}
	ids := make([]string, 0, len(c.records))
	for id := range c.records {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic output, and spelling of ecosystems
	for _, id := range ids {
		r := c.records[id]
		seen := map[string]bool{}
		for _, a := range r.Affected {
			// Ecosystems are grouped without regard to case, under the
			// spelling seen first.
			base := BaseEcosystem(a.Ecosystem)
			ef := files[strings.ToLower(base)]
			if ef == nil {
				ef = &ecosystemFile{Ecosystem: base, Packages: map[string][]Record{}}
				files[strings.ToLower(base)] = ef
			}
			base = ef.Ecosystem
			if !seen[base] {
				seen[base] = true
				counts[base]++
			}
			name := NormalizeName(base, a.Name)
			list := ef.Packages[name]
			if n := len(list); n > 0 && list[n-1].ID == r.ID {
				list[n-1].Affected = append(list[n-1].Affected, a)
				continue
			}
			pr := r
			pr.Affected = []Affected{a}
			ef.Packages[name] = append(list, pr)
		}
	}
	var newest time.Time
	for _, r := range c.records {
		if r.Modified.After(newest) {
			newest = r.Modified.UTC()
		}
	}
	st := Status{Revision: revision(FormatVersion, c.records, c.digests), Imported: now, Counts: counts, Records: len(c.records), Withdrawn: len(c.withdrawn), Newest: newest}
	m := manifest{Format: FormatVersion, Status: st, Files: map[string]string{}}

	parent := filepath.Dir(filepath.Clean(dst))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Status{}, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return Status{}, err
	}
	defer os.RemoveAll(tmp)
	bases := make([]string, 0, len(files))
	for b := range files {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for i, b := range bases {
		ef := files[b]
		for _, list := range ef.Packages {
			sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		}
		name := fmt.Sprintf("eco-%03d.json.gz", i)
		if err := writeGzipJSON(filepath.Join(tmp, name), ef); err != nil {
			return Status{}, fmt.Errorf("writing %s records: %w", ef.Ecosystem, err)
		}
		m.Files[ef.Ecosystem] = name
	}
	if err := writeJSON(filepath.Join(tmp, manifestName), m); err != nil {
		return Status{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Status{}, err
	}
	// Swap the complete new directory into place.
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dst, old); err != nil {
			return Status{}, fmt.Errorf("replacing %s: %w", dst, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return Status{}, fmt.Errorf("replacing %s: %w", dst, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return st, nil
}

func writeGzipJSON(p string, v any) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeJSON(p string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(data, '\n'), 0o644)
}
