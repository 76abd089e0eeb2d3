package layer

import (
	"cmp"
	"context"
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
	// DistroUnknown is set when no visible /etc/os-release or
	// /usr/lib/os-release (followed through symlinks) names the distro (its
	// ID): the image's OS packages cannot be matched against the right
	// advisories, so a vulnerability check must answer "could not check"
	// (removing os-release must not make an image pass).
	DistroUnknown bool `json:"distroUnknown,omitempty"`
	// Files are the visible files the extractors read, by path.
	Files []ImageFile `json:"files,omitempty"`
	// Packages are the visible packages, by path; each one's Layer is the
	// diffID of the layer that introduced it: the lowest layer from which on it
	// was there, unchanged, up to the top.
	Packages []inventory.Package `json:"packages,omitempty"`
	// Incomplete is set when any layer is, or stacking could not tell what a
	// consumer reads (a package database reached through links to a file not
	// read) or did not finish in time.
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

// maxSymlinkHops bounds symlink resolution, as Linux does (ELOOP).
const maxSymlinkHops = 40

// Squash stacks layers, lowest first, as a container runtime applies them:
// each layer's whiteouts delete lower paths, its opaque directories hide
// all lower content beneath them, and its entries replace lower ones at the
// same path (a file or symlink also hides anything lower beneath its path).
// The package databases and os-release a consumer reads are followed through
// symlinks and hard links. The layers' Results must each have a DiffID (for a
// layer Analyze stopped early, the caller sets it from the image config).
func Squash(layers []Result) Image {
	return SquashContext(context.Background(), layers)
}

// SquashContext is Squash that stops once ctx is done, returning the Image
// Incomplete with the reason. Its work is O(n log n) in what the Results
// hold (entries and their path depth, packages, layers).
func SquashContext(ctx context.Context, layers []Result) Image {
	var img Image
	for i := range layers {
		if l := &layers[i]; l.Incomplete {
			img.incomplete(fmt.Sprintf("layer %d (%s): %s", i, l.DiffID, l.IncompleteReason))
		}
	}
	s := newStack(layers)
	if err := s.build(ctx); err != nil {
		img.incomplete("stacking the layers: " + err.Error())
		return img
	}
	img.Distro = s.distro()
	img.DistroUnknown = img.Distro.ID == ""
	intro, err := s.introductions(ctx)
	if err != nil {
		img.incomplete("stacking the layers: " + err.Error())
		return img
	}
	add := func(e *stackEntry, at string) {
		img.Files = append(img.Files, ImageFile{Path: at, Layer: layers[e.layer].DiffID, Size: e.file.Size})
		for _, pkg := range e.file.Packages {
			pkg.Path = relocate(pkg.Path, e.file.Path, e.path)
			pkg.Layer = layers[intro[keyOf(pkg)]].DiffID
			pkg.Path = relocate(pkg.Path, e.path, at)
			pkg.Ecosystem = osEcosystem(pkg.Ecosystem, img.Distro)
			img.Packages = append(img.Packages, pkg)
		}
	}
	for p, e := range s.top {
		if e.file != nil && (e.file.As == "" || consumerKind(p) == consumerKind(e.file.As)) {
			if e.file.Error != "" {
				img.incomplete(fmt.Sprintf("%s could not be parsed: %s", p, e.file.Error))
			}
			add(e, p)
		}
	}
	for _, r := range s.linkedDatabases() {
		if r.reason != "" {
			img.incomplete(r.reason)
			continue
		}
		add(r.entry, r.at)
	}
	for _, reason := range s.reasons {
		img.incomplete(reason)
	}
	if err := context.Cause(ctx); err != nil {
		img.incomplete("stacking the layers: " + err.Error())
	}
	slices.SortFunc(img.Files, func(a, b ImageFile) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(img.Packages, func(a, b inventory.Package) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Ecosystem, b.Ecosystem),
			strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return img
}

func (img *Image) incomplete(reason string) {
	img.Incomplete = true
	img.IncompleteReasons = append(img.IncompleteReasons, reason)
}

// stackEntry is a file or link of one layer.
type stackEntry struct {
	layer int
	path  string
	file  *File // a regular file the analysis read; its Path may be a hard link's target
	link  *Link // a symlink
	hard  *Link // the hard link this entry is, whose target is still to be found
	// hashes are the pathHash of the path and of each of its ancestors.
	hashes []uint64
	// hiddenAt is the lowest layer above that hides the entry, or len(layers).
	hiddenAt int
}

// stack is the layers' entries and, for each path hash that matters, the
// layers that hide what is at it (exact) or beneath it (subtree), ascending.
type stack struct {
	layers  []Result
	entries []*stackEntry
	byPath  map[string][]*stackEntry // ascending layer
	exact   map[uint64][]int
	subtree map[uint64][]int
	root    []int // layers with a whiteout or opaque marker at "/"
	top     map[string]*stackEntry
	linkAt  map[uint64]*stackEntry // the visible symlinks by path hash, for resolve
	reasons []string
}

func newStack(layers []Result) *stack {
	return &stack{layers: layers, byPath: map[string][]*stackEntry{}, exact: map[uint64][]int{}, subtree: map[uint64][]int{}, top: map[string]*stackEntry{}}
}

// checkEvery is how many steps of a loop run between checks of the deadline.
const checkEvery = 1024

// build indexes the entries and what hides them, resolves hard links and
// finds the visible entries.
func (s *stack) build(ctx context.Context) error {
	steps := 0
	check := func() error {
		steps++
		if steps%checkEvery == 0 {
			return context.Cause(ctx)
		}
		return nil
	}
	for i := range s.layers {
		l := &s.layers[i]
		for j := range l.Files {
			f := &l.Files[j]
			s.addEntry(&stackEntry{layer: i, path: f.Path, file: f})
			if err := check(); err != nil {
				return err
			}
		}
		for j := range l.Links {
			k := &l.Links[j]
			e := &stackEntry{layer: i, path: k.Path, link: k}
			if k.Hard {
				e.link, e.hard = nil, k
			}
			s.addEntry(e)
			if err := check(); err != nil {
				return err
			}
		}
	}
	// The hashes that matter: the entries' paths and their ancestors.
	for i := range s.layers {
		l := &s.layers[i]
		for _, h := range l.Paths.dirs {
			if _, ok := s.exact[h]; ok {
				s.exact[h] = append(s.exact[h], i)
			}
		}
		for _, h := range l.Paths.nonDirs {
			if _, ok := s.exact[h]; ok {
				s.exact[h] = append(s.exact[h], i)
			}
			if _, ok := s.subtree[h]; ok {
				s.subtree[h] = append(s.subtree[h], i)
			}
		}
		for _, w := range l.Whiteouts {
			if w == "/" {
				s.root = append(s.root, i)
				continue
			}
			h := pathHash(w)
			if _, ok := s.exact[h]; ok {
				s.exact[h] = append(s.exact[h], i)
			}
			if _, ok := s.subtree[h]; ok {
				s.subtree[h] = append(s.subtree[h], i)
			}
		}
		for _, d := range l.OpaqueDirs {
			if d == "/" {
				s.root = append(s.root, i)
				continue
			}
			if h := pathHash(d); s.subtree[h] != nil { // registered (possibly empty)
				s.subtree[h] = append(s.subtree[h], i)
			}
		}
		if err := check(); err != nil {
			return err
		}
	}
	// Layers were appended in order; a layer may be listed twice.
	for _, m := range []map[uint64][]int{s.exact, s.subtree} {
		for h, ls := range m {
			m[h] = slices.Compact(ls)
		}
	}
	for _, e := range s.entries {
		e.hiddenAt = s.hiddenAt(e.hashes, e.layer)
		if e.hard != nil {
			s.resolveHardLink(e)
		}
		if err := check(); err != nil {
			return err
		}
	}
	for _, e := range s.entries {
		if e.hiddenAt == len(s.layers) && (e.file != nil || e.link != nil) {
			s.top[e.path] = e
		}
	}
	return nil
}

// addEntry indexes e and registers its hashes as ones that matter.
func (s *stack) addEntry(e *stackEntry) {
	e.hashes = ancestorHashes(e.path)
	s.entries = append(s.entries, e)
	s.byPath[e.path] = append(s.byPath[e.path], e)
	if s.exact[e.hashes[0]] == nil {
		s.exact[e.hashes[0]] = []int{}
	}
	for _, h := range e.hashes[1:] {
		if s.subtree[h] == nil {
			s.subtree[h] = []int{}
		}
	}
}

// hiddenAt returns the lowest layer above layer that hides an entry with
// these hashes, or len(layers).
func (s *stack) hiddenAt(hashes []uint64, layer int) int {
	at := min(len(s.layers), firstAbove(s.root, layer), firstAbove(s.exact[hashes[0]], layer))
	for _, h := range hashes[1:] {
		at = min(at, firstAbove(s.subtree[h], layer))
	}
	return at
}

// firstAbove returns the first of the ascending layers above layer, or a
// number above every layer.
func firstAbove(layers []int, layer int) int {
	i, _ := slices.BinarySearch(layers, layer+1)
	if i < len(layers) {
		return layers[i]
	}
	return int(^uint(0) >> 1)
}

// resolveHardLink makes a hard link the inode of its target as it was when
// the link's layer was applied: the last entry at the target's path in that
// layer or below, if no layer in between hid it. A link an extractor wanted
// whose target is not a file read makes the image incomplete if a layer has
// a file there: what the link holds was not analysed.
func (s *stack) resolveHardLink(e *stackEntry) {
	k := e.hard
	var t *stackEntry
	for _, c := range s.byPath[k.Target] {
		if c.layer <= e.layer && c != e {
			t = c
		}
	}
	if t != nil && (t.layer == e.layer || t.hiddenAt >= e.layer) {
		e.file, e.link = t.file, t.link
	}
	if e.file == nil && k.Wanted {
		for i := e.layer - 1; i >= 0; i-- {
			if s.layers[i].Paths.HasNonDir(k.Target) {
				s.reasons = append(s.reasons, fmt.Sprintf("hard link %s (layer %d) to %s of layer %d, which was not read", k.Path, e.layer, k.Target, i))
				break
			}
		}
	}
}

// maxResolvedPath bounds the path resolve works on, four times Linux's
// PATH_MAX: real images resolve their database paths in far less; a longer
// one is a chain of links built to grow it.
const maxResolvedPath = 4 * 4096

// resolve follows symlinks in p and in its directories through the visible
// entries, and returns the path it leads to and whether it followed any;
// ok is false past maxSymlinkHops or maxResolvedPath. Each hop costs
// O(len(p)): the prefixes are found by their hashes, computed in one pass.
func (s *stack) resolve(p string) (real string, followed, ok bool) {
	if s.linkAt == nil {
		s.linkAt = map[uint64]*stackEntry{}
		for _, e := range s.top {
			if e.link != nil {
				s.linkAt[e.hashes[0]] = e
			}
		}
	}
	for range maxSymlinkHops {
		if len(p) > maxResolvedPath {
			return p, followed, false
		}
		hashes := ancestorHashes(p) // p, its parent, …, its first directory
		hop := false
		for k, end := len(hashes)-1, 0; k >= 0; k-- {
			// The prefix of hashes[k] ends at the next "/" (or at p's end).
			if next := strings.IndexByte(p[end+1:], '/'); next >= 0 && k > 0 {
				end += 1 + next
			} else {
				end = len(p)
			}
			e := s.linkAt[hashes[k]]
			if e == nil || e.path != p[:end] {
				continue
			}
			p = path.Join(e.link.Target, p[end:])
			hop, followed = true, true
			break
		}
		if !hop {
			return p, followed, true
		}
	}
	return p, followed, false
}

// distro reads the os-release file the image's /etc/os-release leads to, or
// else /usr/lib/os-release.
func (s *stack) distro() Distro {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		real, _, ok := s.resolve(p)
		if e := s.top[real]; ok && e != nil && e.file != nil && e.file.Data != nil {
			if d := ParseOSRelease(e.file.Data); d.ID != "" {
				return d
			}
		}
	}
	return Distro{}
}

// pkgKey identifies a package at a path, to tell when it was introduced.
type pkgKey struct{ ecosystem, name, version, source, path string }

func keyOf(p inventory.Package) pkgKey {
	return pkgKey{p.Ecosystem, p.Name, p.Version, p.SourceName + " " + p.SourceVersion, p.Path}
}

// span is the layers [from, to) over which an entry was visible.
type span struct{ from, to int }

// introductions returns, for each package visible at the top (by its key at
// the path of the entry holding it), the lowest layer from which on it was
// visible without a gap: the start of the run of overlapping spans, over
// every entry that held the same package at the same path, that reaches the
// top. O(p log p) in the packages of all layers.
func (s *stack) introductions(ctx context.Context) (map[pkgKey]int, error) {
	spans := map[pkgKey][]span{}
	for i, e := range s.entries {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if e.file == nil {
			continue
		}
		for _, pkg := range e.file.Packages {
			pkg.Path = relocate(pkg.Path, e.file.Path, e.path)
			k := keyOf(pkg)
			spans[k] = append(spans[k], span{e.layer, e.hiddenAt})
		}
	}
	top := len(s.layers)
	intro := make(map[pkgKey]int, len(spans))
	steps := 0
	for k, ss := range spans {
		if steps++; steps%checkEvery == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.from, b.from) })
		from, to := ss[0].from, ss[0].to
		for _, sp := range ss[1:] {
			if sp.from > to {
				from = sp.from
			}
			to = max(to, sp.to)
		}
		if to >= top {
			intro[k] = from
		}
	}
	return intro, nil
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
