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

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // aufs metadata, and the opaque marker below
	opaqueMarker   = ".wh..wh..opq"
	// maxOSRelease bounds the os-release files kept.
	maxOSRelease = 64 << 10
)

// analyzer is the state of one Analyze call.
type analyzer struct {
	limits     Limits
	extractors []inventory.Extractor
	res        Result
	// byPath finds this layer's file or link at a path, so that a later entry
	// at the same path replaces it.
	byPath map[string]entryRef
	drain  bool // read the rest of the blob after stopping at a limit
	buf    []byte
	head   [inventory.SniffLen]byte
	wanted []inventory.Extractor
	// ctx is the analysis's context: its deadline stops the secret search.
	ctx context.Context
	// sec is the state of the secret search (secrets.go).
	sec secretState
}

// entryRef is an index into Result.Files or Result.Links.
type entryRef struct {
	link  bool
	index int
}

// entry records one tar entry.
func (a *analyzer) entry(hdr *tar.Header, r io.Reader) error {
	p := path.Clean("/" + hdr.Name)
	dir, base := path.Split(p)
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == opaqueMarker:
			a.res.OpaqueDirs = append(a.res.OpaqueDirs, path.Clean(dir))
		case strings.HasPrefix(base, whiteoutMeta) || base == whiteoutPrefix:
			// aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
		default:
			a.res.Whiteouts = append(a.res.Whiteouts, path.Join(dir, base[len(whiteoutPrefix):]))
		}
		return nil
	}
	if strings.Contains(p, "/"+whiteoutMeta) {
		return nil // inside aufs bookkeeping directories (.wh..wh.plnk/)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
		a.forget(p)
		a.res.Paths.add(p, true)
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
		a.addLink(Link{Path: p, Target: path.Clean("/" + target)})
	case tar.TypeLink:
		a.hardlink(p, path.Clean("/"+hdr.Linkname))
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // archive/tar reports TypeRegA as TypeReg
		return a.regular(p, hdr.Size, r)
	}
	return nil
}

// regular reads a regular file if an extractor or the secret search wants it,
// or the analyzer keeps it. A file several of them want is read once.
func (a *analyzer) regular(p string, size int64, r io.Reader) error {
	a.wanted = a.wanted[:0]
	for _, e := range a.extractors {
		if e.Wants(p) {
			a.wanted = append(a.wanted, e)
		}
	}
	keep := path.Base(p) == "os-release" && size <= maxOSRelease
	secret := a.wantsSecrets(p, size)
	if len(a.wanted) == 0 && !keep && !secret {
		return nil
	}
	head := a.head[:min(size, int64(len(a.head)))]
	if _, err := io.ReadFull(r, head); err != nil {
		return err
	}
	a.wanted = slices.DeleteFunc(a.wanted, func(e inventory.Extractor) bool {
		s, ok := e.(inventory.Sniffer)
		return ok && !s.WantsContent(p, size, head)
	})
	if len(a.wanted) == 0 && !keep && !secret {
		return nil
	}
	if size > a.limits.MaxFileBytes {
		return a.stream(p, size, head, r)
	}
	if int64(cap(a.buf)) < size {
		a.buf = make([]byte, size)
	}
	data := a.buf[:size]
	copy(data, head)
	if _, err := io.ReadFull(r, data[len(head):]); err != nil {
		return err
	}
	f := File{Path: p, Size: size}
	erred := false
	for _, e := range a.wanted {
		pkgs, err := e.Extract(p, data)
		f.Packages = append(f.Packages, pkgs...)
		erred = a.extractError(p, err) || erred
	}
	if keep {
		f.Data = bytes.Clone(data)
	}
	if secret {
		a.findSecrets(p, data)
	}
	if len(f.Packages) > 0 || f.Data != nil || erred {
		a.addFile(f)
	}
	return nil
}

// stream hands a file over MaxFileBytes to an extractor that reads streams;
// one that does not makes the layer incomplete.
func (a *analyzer) stream(p string, size int64, head []byte, r io.Reader) error {
	f := File{Path: p, Size: size}
	streamed, erred := false, false
	for _, e := range a.wanted {
		s, ok := e.(inventory.StreamExtractor)
		if !ok || streamed {
			a.incomplete(fmt.Sprintf("file %s is %s, over %s", p, bytesize.Format(size), bytesize.Format(a.limits.MaxFileBytes)))
			continue
		}
		streamed = true
		m := &errorMemo{r: io.MultiReader(bytes.NewReader(head), r)}
		pkgs, err := s.ExtractStream(p, m)
		if m.err != nil {
			return m.err
		}
		f.Packages = append(f.Packages, pkgs...)
		erred = a.extractError(p, err)
	}
	if len(f.Packages) > 0 || erred {
		a.addFile(f)
	}
	return nil
}

// extractError records an extractor's error, reporting whether it was one; a
// LimitError makes the layer incomplete instead.
func (a *analyzer) extractError(p string, err error) bool {
	if err == nil {
		return false
	}
	var le *inventory.LimitError
	if errors.As(err, &le) {
		a.incomplete(le.Reason)
		return false
	}
	a.res.Errors = append(a.res.Errors, FileError{Path: p, Err: err.Error()})
	return true
}

// hardlink records a hard link. Its target is nearly always earlier in the
// same layer; when an extractor wants the link's path but the target was not
// read, what it holds is lost and the layer is incomplete.
func (a *analyzer) hardlink(p, target string) {
	a.addLink(Link{Path: p, Target: target, Hard: true})
	if ref, ok := a.byPath[target]; ok && !ref.link {
		return // read: stacking gives the link its packages
	}
	// Extractors that choose by content saw the target's content already.
	lost := slices.ContainsFunc(a.extractors, func(e inventory.Extractor) bool {
		_, sniffs := e.(inventory.Sniffer)
		return e.Wants(p) && !(sniffs && e.Wants(target))
	})
	if lost && a.res.Paths.hasUnsealedNonDir(pathHash(target)) {
		a.incomplete(fmt.Sprintf("hard link %s to %s, which was not read", p, target))
	}
	// A target from a lower layer is resolved when the layers are stacked.
}

func (a *analyzer) addFile(f File) {
	a.byPath[f.Path] = entryRef{index: len(a.res.Files)}
	a.res.Files = append(a.res.Files, f)
}

func (a *analyzer) addLink(l Link) {
	a.linkSecrets(l)
	a.byPath[l.Path] = entryRef{link: true, index: len(a.res.Links)}
	a.res.Links = append(a.res.Links, l)
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

// finish drops forgotten entries, seals the path set and labels packages with the layer.
func (a *analyzer) finish() {
	a.res.Files = slices.DeleteFunc(a.res.Files, func(f File) bool { return f.Path == "" })
	a.res.Links = slices.DeleteFunc(a.res.Links, func(l Link) bool { return l.Path == "" })
	a.res.Paths.seal()
	for i := range a.res.Files {
		for j := range a.res.Files[i].Packages {
			a.res.Files[i].Packages[j].Layer = a.res.DiffID
		}
	}
}
