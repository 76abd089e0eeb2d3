package inventory

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
	"strings"
)

// Defaults used by Java when its bounds are zero.
const (
	DefaultJavaMaxDepth = 3
	DefaultJavaMaxBytes = 512 << 20
)

const (
	// maxZipEntries bounds the entries of one archive, since each costs memory
	// before anything is read.
	maxZipEntries = 200_000
	// maxMetadataBytes bounds a pom.properties or MANIFEST.MF.
	maxMetadataBytes = 1 << 20
)

// Java reads Maven artifacts from Java archives (.jar, .war, .ear): each
// META-INF/maven/**/pom.properties, or the manifest when there is none, and
// the same for archives nested inside (Spring Boot and WAR libraries).
type Java struct {
	// MaxDepth is how many levels of nested archives are opened below the file
	// itself; zero means DefaultJavaMaxDepth.
	MaxDepth int
	// MaxBytes bounds the bytes decompressed from one file and everything nested
	// in it; zero means DefaultJavaMaxBytes.
	MaxBytes int64
}

// Wants reports whether p names a Java archive.
func (Java) Wants(p string) bool { return isJavaArchive(p) }

func isJavaArchive(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jar", ".war", ".ear":
		return true
	}
	return false
}

// Extract returns the artifacts in the archive and in archives nested in it.
// When a bound stops it, it returns what it found and a *LimitError.
func (j Java) Extract(p string, data []byte) ([]Package, error) {
	w := &javaWalk{maxDepth: j.MaxDepth, maxBytes: j.MaxBytes}
	if w.maxDepth <= 0 {
		w.maxDepth = DefaultJavaMaxDepth
	}
	if w.maxBytes <= 0 {
		w.maxBytes = DefaultJavaMaxBytes
	}
	w.budget = w.maxBytes
	if err := w.archive(p, data, 0); err != nil {
		return w.pkgs, err
	}
	if w.limit != nil {
		return w.pkgs, w.limit
	}
	return w.pkgs, nil
}

// javaWalk is one Extract call's state: its bounds, the packages found, the
// bytes it may still decompress and the first bound it hit.
type javaWalk struct {
	maxDepth int
	maxBytes int64
	budget   int64
	pkgs     []Package
	limit    *LimitError
}

// archive reads one archive; an error means the outermost file is not a zip.
func (w *javaWalk) archive(name string, data []byte, depth int) error {
	if n, ok := zipEntryCount(data); ok && n > maxZipEntries {
		w.hit("archive %s has over %d entries", name, maxZipEntries)
		return nil
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if depth == 0 {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		return nil // a nested file named .jar that is not one
	}
	var manifest []byte
	var nested []*zip.File
	found := false
	for _, f := range zr.File {
		switch {
		case isPomProperties(f.Name):
			b, ok := w.read(name, f, maxMetadataBytes)
			if !ok {
				continue
			}
			if pkg, ok := parsePomProperties(f.Name, b); ok {
				pkg.Path = name
				w.pkgs = append(w.pkgs, pkg)
				found = true
			}
		case f.Name == "META-INF/MANIFEST.MF":
			manifest, _ = w.read(name, f, maxMetadataBytes)
		case isJavaArchive(f.Name) && !strings.HasSuffix(f.Name, "/"):
			nested = append(nested, f)
		}
	}
	if !found && manifest != nil {
		if pkg, ok := parseManifest(manifest); ok {
			pkg.Path = name
			w.pkgs = append(w.pkgs, pkg)
		}
	}
	for _, f := range nested {
		if depth+1 > w.maxDepth {
			w.hit("nested archive depth over %d in %s", w.maxDepth, name)
			return nil
		}
		b, ok := w.read(name, f, w.budget)
		if !ok {
			continue
		}
		_ = w.archive(name+"!/"+f.Name, b, depth+1)
	}
	return nil
}

// read decompresses one entry of at most max bytes within the budget; it
// returns false when the entry is unreadable or over a bound.
func (w *javaWalk) read(archive string, f *zip.File, max int64) ([]byte, bool) {
	if f.UncompressedSize64 > uint64(w.budget) {
		w.hit("archive content over %s in %s", bytesize.Format(w.maxBytes), archive)
		return nil, false
	}
	if f.UncompressedSize64 > uint64(max) {
		return nil, false // a metadata file this large is not one
	}
	rc, err := f.Open()
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	// archive/zip checks the size it decompresses against the header; the
	// LimitReader makes the bound independent of that check.
	b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)))
	w.budget -= int64(len(b))
	if err != nil {
		return nil, false
	}
	return b, true
}

func (w *javaWalk) hit(format string, args ...any) {
	if w.limit == nil {
		w.limit = limitf(format, args...)
	}
}

// isPomProperties reports whether name is META-INF/maven/<group>/<artifact>/pom.properties.
func isPomProperties(name string) bool {
	return strings.HasPrefix(name, "META-INF/maven/") && path.Base(name) == "pom.properties"
}

// parsePomProperties reads groupId, artifactId and version, taking the group
// and artifact from the entry's directory when the file leaves them out.
func parsePomProperties(name string, data []byte) (Package, bool) {
	props := map[string]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			continue
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	group, artifact, version := props["groupId"], props["artifactId"], props["version"]
	if dirs := strings.Split(name, "/"); len(dirs) == 5 {
		if group == "" {
			group = dirs[2]
		}
		if artifact == "" {
			artifact = dirs[3]
		}
	}
	if group == "" || artifact == "" || version == "" {
		return Package{}, false
	}
	return Package{Ecosystem: EcosystemMaven, Name: group + ":" + artifact, Version: version}, true
}

// parseManifest reads Implementation-Title and -Version (with
// Implementation-Vendor-Id as the group when present) from a manifest's main section.
func parseManifest(data []byte) (Package, bool) {
	attrs := map[string]string{}
	var last string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break // end of the main section
		}
		if line[0] == ' ' && last != "" { // continuation of a wrapped 72-byte line
			attrs[last] += line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.TrimSpace(k)
		attrs[last] = strings.TrimSpace(v)
	}
	title, version := attrs["Implementation-Title"], attrs["Implementation-Version"]
	if title == "" || version == "" {
		return Package{}, false
	}
	if vendor := attrs["Implementation-Vendor-Id"]; vendor != "" {
		title = vendor + ":" + title
	}
	return Package{Ecosystem: EcosystemMaven, Name: title, Version: version}, true
}
