package main

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/mirror"
	"github.com/portcullis-dev/portcullis/scan/vulndb"
)

// bundleDB checks the OSV export at src by importing it into a scratch database under
// tmp, exactly as "db import" would (so a malformed record fails the collect, on the
// connected side), and returns it as a zip archive to carry: src itself when it is one,
// else a new archive under tmp of the *.json records (a directory, or one record).
func bundleDB(src, tmp string, stderr io.Writer) (*mirror.VulnDBSource, error) {
	st, err := importDB(filepath.Join(tmp, "check"), []string{src}, stderr)
	if err != nil {
		return nil, fmt.Errorf("--vulndb %s: %w", src, err)
	}
	zipPath := src
	if fi, err := os.Stat(src); err != nil {
		return nil, err
	} else if fi.IsDir() || !strings.HasSuffix(src, ".zip") {
		zipPath = filepath.Join(tmp, "osv.zip")
		if err := zipRecords(src, zipPath); err != nil {
			return nil, fmt.Errorf("--vulndb %s: %w", src, err)
		}
	}
	return &mirror.VulnDBSource{Zip: zipPath, Revision: st.Revision, Newest: st.Newest, Records: st.Records}, nil
}

// zipRecords writes the *.json files under src (or src itself) into a zip archive at dst.
func zipRecords(src, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(out)
	add := func(path, name string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, err := zw.Create(filepath.ToSlash(name))
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	fi, err := os.Stat(src)
	switch {
	case err != nil:
	case !fi.IsDir():
		err = add(src, filepath.Base(src))
	default:
		err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".json") {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			return add(p, rel)
		})
	}
	if err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// bundleDBImporter imports a bundle's database into dir as "db import" does, unless dir
// already holds that revision (unchanged) or, without force, a database whose newest
// record is newer than the bundle's (refused).
func bundleDBImporter(dir string, force bool, stderr io.Writer) mirror.VulnDBImporter {
	return func(zipPath string, d *mirror.VulnDB) (string, string, error) {
		newest := func(t time.Time) string {
			if t.IsZero() {
				return "unknown"
			}
			return t.UTC().Format(time.RFC3339)
		}
		if db, err := vulndb.Open(dir); err == nil {
			cur := db.Status()
			if cur.Revision == d.Revision {
				return "unchanged", fmt.Sprintf("%s already holds revision %s", dir, d.Revision), nil
			}
			if !force && !cur.Newest.IsZero() && d.Newest.Before(cur.Newest) {
				return "", "", fmt.Errorf("vulnerability database: the bundle's (revision %s, newest record %s) is older than the one in %s (revision %s, newest record %s); refusing to go back (--force imports it anyway)",
					d.Revision, newest(d.Newest), dir, cur.Revision, newest(cur.Newest))
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "portcullis mirror import: the database in %s cannot be read (%v); replacing it\n", dir, err)
		}
		st, err := importDB(dir, []string{zipPath}, stderr)
		if err != nil {
			return "", "", fmt.Errorf("vulnerability database: %w", err)
		}
		msg := fmt.Sprintf("imported %d records into %s as revision %s; a gateway reading it re-matches every cached verdict on its next reload (within 30s, or at once on SIGHUP)", st.Records, dir, st.Revision)
		if st.Revision != d.Revision {
			msg += fmt.Sprintf(" (the collecting portcullis computed revision %s: another database format)", d.Revision)
		}
		return "imported", msg, nil
	}
}
