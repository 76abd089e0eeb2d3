package inventory

import (
	"bytes"
	"errors"
	"path"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
)

// Defaults used by Java when its bounds are zero.
const (
	DefaultJavaMaxDepth = 3
	DefaultJavaMaxBytes = 512 << 20
)

const (
	// maxZipEntries bounds the entries of one archive, counted as the JDK
	// counts them (every central directory header), not as declared.
	maxZipEntries = 200_000
	// maxMetadataBytes bounds a pom.properties or MANIFEST.MF.
	maxMetadataBytes = 1 << 20
	javaFormat       = "Java archive"
)

// Java reads Maven artifacts from Java archives: each
// META-INF/maven/**/pom.properties, or the manifest when there is none, and
// the same for archives nested inside (Spring Boot and WAR libraries).
//
// Archives are read as the JDK's zip reader reads them (see zipread.go), and
// recognised by content as well as by name: the JVM loads a jar of any name
// (java -jar app.bin, -cp lib/x.dat), so a file or nested entry whose
// content starts with a zip local header is read whatever its name, and one
// named .jar, .war or .ear is read whatever its content. A script-prefixed
// executable jar is recognised by its name only.
//
// An archive the JDK would refuse, at the top or nested, is a *ParseError
// naming it; more entries than 200,000 in one archive, more nesting than
// MaxDepth or more content than MaxBytes (counting every entry read, stored
// or inflated, whatever size it declares) is a *LimitError. Both come with
// the packages found elsewhere in the file.
type Java struct {
	// MaxDepth is how many levels of nested archives are opened below the file
	// itself; zero means DefaultJavaMaxDepth.
	MaxDepth int
	// MaxBytes bounds the bytes decompressed from one file and everything nested
	// in it; zero means DefaultJavaMaxBytes.
	MaxBytes int64
}

// Wants accepts every path: archives are recognised by content as well as
// by name (WantsContent).
func (Java) Wants(string) bool { return true }

// WantsContent reports whether p is named as a Java archive or head starts
// like a zip archive.
func (Java) WantsContent(p string, _ int64, head []byte) bool {
	return isJavaArchive(p) || bytes.HasPrefix(head, []byte(zipSigLOC))
}

func isJavaArchive(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jar", ".war", ".ear":
		return true
	}
	return false
}

// Extract returns the artifacts in the archive and in archives nested in it.
// An empty file has none.
func (j Java) Extract(p string, data []byte) ([]Package, error) {
	if len(data) == 0 {
		return nil, nil
	}
	w := &javaWalk{maxDepth: j.MaxDepth, maxBytes: j.MaxBytes}
	if w.maxDepth <= 0 {
		w.maxDepth = DefaultJavaMaxDepth
	}
	if w.maxBytes <= 0 {
		w.maxBytes = DefaultJavaMaxBytes
	}
	w.budget = w.maxBytes
	w.archive(p, data, 0)
	var err error
	if w.limit != nil {
		err = w.limit
	}
	if w.bad != nil {
		err = errors.Join(err, w.bad)
	}
	return w.pkgs, err
}

// javaWalk is one Extract call's state: its bounds, the packages found, the
// bytes it may still read, and the first bound hit and first archive refused.
type javaWalk struct {
	maxDepth int
	maxBytes int64
	budget   int64
	pkgs     []Package
	limit    *LimitError
	bad      *ParseError
	zi       zipInflater
	head     [4]byte
}

// archive reads one archive and everything nested in it.
func (w *javaWalk) archive(name string, data []byte, depth int) {
	z, err := readZip(data, maxZipEntries)
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			w.hit("archive %s has over %d entries", name, maxZipEntries)
			return
		}
		w.refused(name, err)
		return
	}
	var manifest []byte
	var nested []*zipFile
	found := false
	for i := range z.files {
		f := &z.files[i]
		fname := string(f.name)
		switch {
		case strings.HasSuffix(fname, "/"):
			// A directory.
		case isPomProperties(fname):
			b, ok := w.read(name, z, f, maxMetadataBytes)
			if !ok {
				continue
			}
			if pkg, ok := parsePomProperties(fname, b); ok {
				pkg.Path = name
				w.pkgs = append(w.pkgs, pkg)
				found = true
			}
		case isManifestName(fname):
			// The JDK takes the last entry so named, in any case.
			if b, ok := w.read(name, z, f, maxMetadataBytes); ok {
				manifest = b
			}
		case isJavaArchive(fname) || bytes.HasPrefix(w.zi.head(z, f, w.head[:]), []byte(zipSigLOC)):
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
			return
		}
		b, ok := w.read(name, z, f, w.budget)
		if !ok {
			continue
		}
		inner := name + "!/" + string(f.name)
		if len(b) == 0 {
			continue // an empty entry holds nothing, whatever its name
		}
		w.archive(inner, b, depth+1)
	}
}

// read returns the content of one entry of at most max bytes, counted
// against the budget; it returns false when the entry is unreadable (noted
// as refused) or over a bound (noted as a limit).
func (w *javaWalk) read(archive string, z *zipArchive, f *zipFile, max int64) ([]byte, bool) {
	limit := min(max, w.budget)
	b, err := w.zi.content(z, f, limit)
	switch {
	case errors.Is(err, errTooLarge) && limit == w.budget:
		w.budget = 0
		w.hit("archive content over %s in %s", bytesize.Format(w.maxBytes), archive)
		return nil, false
	case errors.Is(err, errTooLarge):
		w.hit("%s!/%.100s is over %s", archive, f.name, bytesize.Format(max))
		return nil, false
	case err != nil:
		w.refused(archive, err)
		return nil, false
	}
	w.budget -= int64(len(b))
	return b, true
}

func (w *javaWalk) hit(format string, args ...any) {
	if w.limit == nil {
		w.limit = limitf(format, args...)
	}
}

func (w *javaWalk) refused(archive string, err error) {
	if w.bad == nil {
		w.bad = parseErrorf(javaFormat, 0, "%s: %v", archive, err)
	}
}

// isManifestName reports whether name is META-INF/MANIFEST.MF in any case,
// as the JDK's ZipFile.Source.isManifestName matches it.
func isManifestName(name string) bool {
	return strings.EqualFold(name, "META-INF/MANIFEST.MF")
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
// Implementation-Vendor-Id as the group when present) from a manifest's main
// section, as java.util.jar.Manifest reads it: lines end at "\r\n", "\r" or
// "\n", a line starting with a space continues the one above, attribute
// names match whatever their case, and a repeated attribute's last value
// wins.
func parseManifest(data []byte) (Package, bool) {
	attrs := map[string][]byte{}
	var last string
	for len(data) > 0 {
		var line []byte
		line, data = emailLine(data)
		if len(line) == 0 {
			break // end of the main section
		}
		if line[0] == ' ' {
			if last != "" { // continuation of a wrapped 72-byte line
				attrs[last] = append(attrs[last], line[1:]...)
			}
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			last = ""
			continue
		}
		last = strings.ToLower(string(k))
		attrs[last] = bytes.Clone(v)
	}
	attr := func(k string) string { return strings.TrimSpace(string(attrs[k])) }
	title, version := attr("implementation-title"), attr("implementation-version")
	if title == "" || version == "" {
		return Package{}, false
	}
	if vendor := attr("implementation-vendor-id"); vendor != "" {
		title = vendor + ":" + title
	}
	if len(title) > MaxFieldBytes || len(version) > MaxFieldBytes {
		return Package{}, false
	}
	return Package{Ecosystem: EcosystemMaven, Name: title, Version: version}, true
}
