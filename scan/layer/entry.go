package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/bytesize"
	"github.com/portcullis-dev/portcullis/scan/inventory"
)

// Whiteouts as containerd applies them (archive/tar.go): an entry whose base
// name starts with ".wh." is not written. ".wh..wh..opq" makes its directory
// opaque, any other ".wh..wh." name is aufs metadata, and ".wh.<name>"
// deletes <name>. Content under a directory named ".wh..wh.plnk" is
// extracted like any other: only base names count.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// analyzer is the state of one Analyze call.
type analyzer struct {
	limits     Limits
	extractors []inventory.Extractor
	res        Result
	deadline   deadline
	// byPath finds this layer's file or link at a path, so that a later entry
	// at the same path replaces it.
	byPath map[string]entryRef
	drain  bool // read the rest of the blob after stopping at a limit
	buf    []byte
	head   [inventory.SniffLen]byte
	wanted []wantedBy
	// ctx is the analysis's context: its deadline stops the secret search.
	ctx context.Context
	// sec is the state of the secret search (secrets.go).
	sec secretState
	// records counts the bytes the Result keeps, against MaxRecordBytes.
	records int64
	// packages counts the packages the Result lists, against MaxPackages.
	packages int
	// unreadTargets are the hard links an extractor wants whose target was
	// not read: checked against the path set once it is sealed.
	unreadTargets []Link
}

// wantedBy is an extractor that wants a file, and the path it is shown: the
// file's own, or the database path a candidate is read as.
type wantedBy struct {
	e  inventory.Extractor
	as string
}

// entryRef is an index into Result.Files or Result.Links.
type entryRef struct {
	link  bool
	index int
}

// entry records one tar entry.
func (a *analyzer) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
	if len(hdr.Name) > a.limits.MaxPathBytes {
		a.incomplete(fmt.Sprintf("an entry's path is %s, over %s", bytesize.Format(int64(len(hdr.Name))), bytesize.Format(int64(a.limits.MaxPathBytes))))
		return nil
	}
	p := path.Clean("/" + hdr.Name)
	dir, base := path.Split(p)
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == opaqueMarker:
			d := path.Clean(dir)
			a.res.OpaqueDirs = append(a.res.OpaqueDirs, d)
			return a.charge(int64(len(d)) + stringOverhead)
		case strings.HasPrefix(base, whiteoutMeta):
			return nil // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not written
		case base == whiteoutPrefix:
			// containerd removes (or, on overlayfs, fails on) the directory itself.
			a.incomplete(fmt.Sprintf("whiteout %s names no file", p))
			return nil
		}
		w := path.Join(dir, base[len(whiteoutPrefix):])
		a.res.Whiteouts = append(a.res.Whiteouts, w)
		return a.charge(int64(len(w)) + stringOverhead)
	}
	if p == "/" {
		return nil // containerd ignores entries that resolve to the root
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
		a.forget(p)
		a.res.Paths.add(p, true)
		return nil
	}
	if (hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink) && len(hdr.Linkname) > a.limits.MaxPathBytes {
		a.incomplete(fmt.Sprintf("link %s has a target of %s, over %s", p, bytesize.Format(int64(len(hdr.Linkname))), bytesize.Format(int64(a.limits.MaxPathBytes))))
		return nil
	}
	a.forget(p)
	a.res.Paths.add(p, false)
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		target := hdr.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		return a.addLink(Link{Path: p, Target: path.Clean("/" + target)})
	case tar.TypeLink:
		return a.hardlink(p, path.Clean("/"+hdr.Linkname))
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // archive/tar reports TypeRegA as TypeReg
		return a.regular(ctx, hdr, p, r)
	}
	return nil
}

// isSparse reports whether hdr is a sparse file, old GNU or PAX.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// regular reads a regular file if an extractor or the secret search wants it,
// or the analyzer keeps it. A file several of them want is read once. A file
// no extractor wants by its path but named like a package database
// (candidateAs) is read as one, for Squash to use if the image's database
// path leads to it through links.
func (a *analyzer) regular(ctx context.Context, hdr *tar.Header, p string, r io.Reader) error {
	size := hdr.Size
	a.wanted = a.wanted[:0]
	byPath := false // an extractor other than a Sniffer wants p
	for _, e := range a.extractors {
		if e.Wants(p) {
			a.wanted = append(a.wanted, wantedBy{e, p})
			_, sniffs := e.(inventory.Sniffer)
			byPath = byPath || !sniffs
		}
	}
	as := ""
	if c := candidateAs(p); c != "" && !byPath {
		for _, e := range a.extractors {
			if _, sniffs := e.(inventory.Sniffer); !sniffs && e.Wants(c) {
				a.wanted = append(a.wanted, wantedBy{e, c})
				as = c
			}
		}
	}
	keep := path.Base(p) == "os-release"
	if keep && size > a.limits.MaxKeptFileBytes {
		a.incomplete(fmt.Sprintf("file %s is %s, over %s", p, bytesize.Format(size), bytesize.Format(a.limits.MaxKeptFileBytes)))
		keep = false
	}
	secret := a.wantsSecrets(p, size)
	if len(a.wanted) == 0 && !keep && !secret {
		return nil
	}
	head := a.head[:min(size, int64(len(a.head)))]
	if _, err := io.ReadFull(r, head); err != nil {
		return err
	}
	a.wanted = slices.DeleteFunc(a.wanted, func(w wantedBy) bool {
		s, ok := w.e.(inventory.Sniffer)
		return ok && !s.WantsContent(w.as, size, head)
	})
	if as != "" && slices.ContainsFunc(a.wanted, func(w wantedBy) bool { return w.as == p }) {
		// A file an extractor reads for what it is (an executable named
		// "status") is not a candidate database.
		a.wanted = slices.DeleteFunc(a.wanted, func(w wantedBy) bool { return w.as != p })
		as = ""
	}
	if len(a.wanted) == 0 && !keep && !secret {
		return nil
	}
	if size > a.limits.MaxFileBytes {
		if isSparse(hdr) {
			a.incomplete(fmt.Sprintf("sparse file %s declares %s, over %s", p, bytesize.Format(size), bytesize.Format(a.limits.MaxFileBytes)))
			return nil
		}
		return a.stream(p, as, size, head, r)
	}
	if int64(cap(a.buf)) < size {
		a.buf = make([]byte, size)
	}
	data := a.buf[:size]
	copy(data, head)
	if _, err := io.ReadFull(r, data[len(head):]); err != nil {
		return err
	}
	f := File{Path: p, Size: size, As: as}
	erred := false
	for _, w := range a.wanted {
		pkgs, err := extract(ctx, w.e, w.as, data)
		if derr := a.deadline.check(); derr != nil {
			return derr
		}
		f.Packages = append(f.Packages, pkgs...)
		if err := a.countPackages(pkgs); err != nil {
			return err
		}
		erred = a.extractError(&f, err) || erred
	}
	if keep {
		f.Data = bytes.Clone(data)
		if err := a.charge(int64(len(data))); err != nil {
			return err
		}
	}
	if secret {
		a.findSecrets(p, data)
	}
	if len(f.Packages) > 0 || f.Data != nil || erred || f.As != "" {
		return a.addFile(f)
	}
	return nil
}

// contextExtractor is implemented by extractors whose in-memory extraction
// stops (returning ctx's error) once ctx is done, so that the analysis's
// deadline holds inside them too.
type contextExtractor interface {
	ExtractContext(ctx context.Context, path string, data []byte) ([]inventory.Package, error)
}

// extract runs e on data, with ctx when e accepts one.
func extract(ctx context.Context, e inventory.Extractor, p string, data []byte) ([]inventory.Package, error) {
	if ce, ok := e.(contextExtractor); ok {
		return ce.ExtractContext(ctx, p, data)
	}
	return e.Extract(p, data)
}

// stream hands a file over MaxFileBytes to an extractor that reads streams;
// one that does not makes the layer incomplete.
func (a *analyzer) stream(p, as string, size int64, head []byte, r io.Reader) error {
	f := File{Path: p, Size: size, As: as}
	streamed, erred := false, false
	for _, w := range a.wanted {
		s, ok := w.e.(inventory.StreamExtractor)
		if !ok || streamed {
			a.incomplete(fmt.Sprintf("file %s is %s, over %s", p, bytesize.Format(size), bytesize.Format(a.limits.MaxFileBytes)))
			continue
		}
		streamed = true
		m := &errorMemo{r: io.MultiReader(bytes.NewReader(head), r)}
		pkgs, err := s.ExtractStream(w.as, m)
		if m.err != nil {
			return m.err
		}
		f.Packages = append(f.Packages, pkgs...)
		if err := a.countPackages(pkgs); err != nil {
			return err
		}
		erred = a.extractError(&f, err)
	}
	if len(f.Packages) > 0 || erred || f.As != "" {
		return a.addFile(f)
	}
	return nil
}

// extractError records an extractor's error, reporting whether it was one.
// It makes the layer incomplete, naming the file and the error (a LimitError
// by its reason): what the extractor did not parse may hold packages. A
// candidate package database's error is kept with the file instead, for
// Squash to report if the image's database path leads to it.
func (a *analyzer) extractError(f *File, err error) bool {
	if err == nil {
		return false
	}
	var le *inventory.LimitError
	limitOnly := errors.As(err, &le) && errors.Is(err, le) && err.Error() == le.Error()
	if le != nil && f.As == "" {
		a.incomplete(le.Reason)
		if limitOnly {
			return false
		}
	}
	msg := truncate(err.Error(), maxErrorBytes)
	if f.As != "" {
		if f.Error == "" {
			f.Error = msg
		}
		return true
	}
	if le == nil {
		a.incomplete(fmt.Sprintf("%s could not be parsed: %s", f.Path, msg))
	}
	// A limit joined with a parse error (a Java archive) keeps both: the parse error here.
	a.res.Errors = append(a.res.Errors, FileError{Path: f.Path, Err: msg})
	return true
}

// maxErrorBytes bounds an extractor's error message kept in a Result.
const maxErrorBytes = 256

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// hardlink records a hard link. Its target is nearly always earlier in the
// same layer; when an extractor wants the link's path but the target was not
// read, what it holds is lost and the layer is incomplete. A target in a
// lower layer is resolved by Squash.
func (a *analyzer) hardlink(p, target string) error {
	l := Link{Path: p, Target: target, Hard: true}
	if ref, ok := a.byPath[target]; !ok || ref.link {
		// Extractors that choose by content saw the target's content already.
		l.Wanted = slices.ContainsFunc(a.extractors, func(e inventory.Extractor) bool {
			_, sniffs := e.(inventory.Sniffer)
			return e.Wants(p) && !(sniffs && e.Wants(target))
		})
		if l.Wanted {
			a.unreadTargets = append(a.unreadTargets, l)
		}
	}
	return a.addLink(l)
}

func (a *analyzer) addFile(f File) error {
	a.byPath[f.Path] = entryRef{index: len(a.res.Files)}
	a.res.Files = append(a.res.Files, f)
	return a.charge(int64(len(f.Path)+len(f.As)+len(f.Error)) + fileOverhead)
}

func (a *analyzer) addLink(l Link) error {
	a.linkSecrets(l)
	a.byPath[l.Path] = entryRef{link: true, index: len(a.res.Links)}
	a.res.Links = append(a.res.Links, l)
	return a.charge(int64(len(l.Path)+len(l.Target)) + linkOverhead)
}

// forget drops this layer's earlier file or link at p: the later entry wins.
// Secrets found in an earlier file at p stay, marked Replaced: the blob still
// carries them.
func (a *analyzer) forget(p string) {
	a.replaced(p)
	ref, ok := a.byPath[p]
	if !ok {
		return
	}
	delete(a.byPath, p)
	if ref.link {
		a.res.Links[ref.index].Path = ""
	} else {
		a.res.Files[ref.index].Path = ""
	}
}

// finish drops forgotten entries, seals the path set, checks the hard links
// to targets not read and labels packages with the layer.
func (a *analyzer) finish() {
	a.res.Files = slices.DeleteFunc(a.res.Files, func(f File) bool { return f.Path == "" })
	a.res.Links = slices.DeleteFunc(a.res.Links, func(l Link) bool { return l.Path == "" })
	a.res.Paths.seal()
	for _, l := range a.unreadTargets {
		if a.res.Paths.HasNonDir(l.Target) {
			a.incomplete(fmt.Sprintf("hard link %s to %s, which was not read", l.Path, l.Target))
			break
		}
	}
	for i := range a.res.Files {
		for j := range a.res.Files[i].Packages {
			a.res.Files[i].Packages[j].Layer = a.res.DiffID
		}
	}
}
