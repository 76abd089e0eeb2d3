package layer

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// Image is an image's layers stacked: the files the analysis read that a
// container would see, their packages and the distro.
type Image struct {
	// Distro is what the visible os-release says; zero when there is none.
	Distro Distro `json:"distro"`
	// Files are the visible files the extractors read, by path.
	Files []ImageFile `json:"files,omitempty"`
	// Packages are the visible packages, by path; each one's Layer is the
	// diffID of the layer that introduced it: the lowest layer from which on it
	// was there, unchanged, up to the top.
	Packages []inventory.Package `json:"packages,omitempty"`
	// Incomplete is set when any layer is.
	Incomplete bool `json:"incomplete,omitempty"`
	// IncompleteReasons say which layers and why: "layer 2 (sha256:…): over 1,000,000 entries".
	IncompleteReasons []string `json:"incompleteReasons,omitempty"`
}

// ImageFile is a visible file and the layer (diffID) it comes from.
type ImageFile struct {
	// Path is where the file is seen (a hard link's own path).
	Path string `json:"path"`
	// Layer is the diffID of the layer that put it there.
	Layer string `json:"layer"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
}

// view is the stacked filesystem as far as the Results record it.
type view map[string]*viewEntry

type viewEntry struct {
	layer int
	file  *File // a regular file read by the analysis; its Path may be a hard link's target
	link  *Link // a symlink
	// hashes are the pathHash of the entry's path and of each of its
	// ancestors, computed once for the layers above.
	hashes []uint64
}

// maxSymlinkHops bounds symlink resolution, as Linux does (ELOOP).
const maxSymlinkHops = 40

// Squash stacks layers, lowest first, as a container runtime applies them:
// each layer's whiteouts delete lower paths, its opaque directories hide
// all lower content beneath them, and its entries replace lower ones at the
// same path (a file or symlink also hides anything lower beneath its path).
// The layers' Results must each have a DiffID (for a layer Analyze stopped
// early, the caller sets it from the image config).
func Squash(layers []Result) Image {
	v := view{}
	introduced := map[pkgKey]int{}
	var img Image
	for i := range layers {
		l := &layers[i]
		if l.Incomplete {
			img.Incomplete = true
			img.IncompleteReasons = append(img.IncompleteReasons, fmt.Sprintf("layer %d (%s): %s", i, l.DiffID, l.IncompleteReason))
		}
		v.hide(l)
		for j := range l.Files {
			f := &l.Files[j]
			v[f.Path] = &viewEntry{layer: i, file: f, hashes: ancestorHashes(f.Path)}
		}
		for j := range l.Links {
			k := &l.Links[j]
			e := &viewEntry{layer: i, link: k, hashes: ancestorHashes(k.Path)}
			if k.Hard {
				// A hard link is its target's inode (a symlink's, not what that
				// leads to): it keeps the content even if the target is deleted later.
				t := v[k.Target]
				if t == nil {
					continue
				}
				e.file, e.link = t.file, t.link
			}
			v[k.Path] = e
		}
		v.markIntroduced(introduced, i)
	}
	img.Distro = v.distro()
	for p, e := range v {
		if e.file == nil {
			continue
		}
		img.Files = append(img.Files, ImageFile{Path: p, Layer: layers[e.layer].DiffID, Size: e.file.Size})
		for _, pkg := range e.file.Packages {
			pkg.Path = relocate(pkg.Path, e.file.Path, p)
			pkg.Layer = layers[introduced[keyOf(pkg)]].DiffID
			pkg.Ecosystem = osEcosystem(pkg.Ecosystem, img.Distro)
			img.Packages = append(img.Packages, pkg)
		}
	}
	slices.SortFunc(img.Files, func(a, b ImageFile) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(img.Packages, func(a, b inventory.Package) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Ecosystem, b.Ecosystem),
			strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return img
}

// hide removes from the view what layer l deletes, hides or replaces.
func (v view) hide(l *Result) {
	whiteouts := make(map[string]bool, len(l.Whiteouts))
	for _, w := range l.Whiteouts {
		whiteouts[w] = true
	}
	opaque := make(map[string]bool, len(l.OpaqueDirs))
	for _, d := range l.OpaqueDirs {
		opaque[d] = true
	}
	for p, e := range v {
		if l.Paths.hasHash(e.hashes[0]) || whiteouts[p] || whiteouts["/"] || opaque["/"] {
			delete(v, p)
			continue
		}
		// Walk the ancestors: a whiteout or opaque directory there, or a
		// non-directory (a file or symlink replacing the directory), hides p.
		dir := p
		for k := 1; k < len(e.hashes); k++ {
			dir = dir[:strings.LastIndexByte(dir, '/')]
			if whiteouts[dir] || opaque[dir] || l.Paths.hasNonDirHash(e.hashes[k]) {
				delete(v, p)
				break
			}
		}
	}
}

// ancestorHashes returns the pathHash of p and of each ancestor below the
// root: "/a/b/c" gives those of "/a/b/c", "/a/b" and "/a".
func ancestorHashes(p string) []uint64 {
	hashes := []uint64{pathHash(p)}
	for {
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return hashes
		}
		p = p[:i]
		hashes = append(hashes, pathHash(p))
	}
}

// resolve follows symlinks in p and in its directories and returns what the
// path leads to, or nil.
func (v view) resolve(p string) *viewEntry {
	for range maxSymlinkHops {
		followed := false
		for i := 1; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			e := v[p[:i]]
			if e == nil || e.link == nil {
				continue
			}
			p = path.Join(e.link.Target, p[i:])
			followed = true
			break
		}
		if !followed {
			return v[p]
		}
	}
	return nil
}

// distro reads the os-release file the image's /etc/os-release leads to, or
// else /usr/lib/os-release.
func (v view) distro() Distro {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if e := v.resolve(p); e != nil && e.file != nil && e.file.Data != nil {
			return ParseOSRelease(e.file.Data)
		}
	}
	return Distro{}
}

// pkgKey identifies a package at a path, to tell when it was introduced.
type pkgKey struct{ ecosystem, name, version, source, path string }

func keyOf(p inventory.Package) pkgKey {
	return pkgKey{p.Ecosystem, p.Name, p.Version, p.SourceName + " " + p.SourceVersion, p.Path}
}

// markIntroduced records layer i as the one introducing each visible package
// not visible before, and forgets those no longer visible.
func (v view) markIntroduced(introduced map[pkgKey]int, i int) {
	visible := make(map[pkgKey]bool, len(introduced))
	for p, e := range v {
		if e.file == nil {
			continue
		}
		for _, pkg := range e.file.Packages {
			pkg.Path = relocate(pkg.Path, e.file.Path, p)
			k := keyOf(pkg)
			visible[k] = true
			if _, ok := introduced[k]; !ok {
				introduced[k] = i
			}
		}
	}
	for k := range introduced {
		if !visible[k] {
			delete(introduced, k)
		}
	}
}

// relocate rewrites a package path found at file path from as seen at path to
// (a hard link): "/a.jar!/lib/b.jar" read at "/a.jar" and seen at "/c.jar"
// becomes "/c.jar!/lib/b.jar".
func relocate(pkgPath, from, to string) string {
	if from == to {
		return pkgPath
	}
	if pkgPath == from {
		return to
	}
	if rest, ok := strings.CutPrefix(pkgPath, from+"!/"); ok {
		return to + "!/" + rest
	}
	return pkgPath
}

// osEcosystem refines an OS package database's ecosystem by the distro:
// a dpkg database in an Ubuntu image lists Ubuntu packages.
func osEcosystem(ecosystem string, d Distro) string {
	if ecosystem == inventory.EcosystemDebian && d.ID == "ubuntu" {
		return inventory.EcosystemUbuntu
	}
	return ecosystem
}
