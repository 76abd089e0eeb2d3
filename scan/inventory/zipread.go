package inventory

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A zip archive read the way the JDK's java.util.zip.ZipFile reads it
// (ZipFile.Source: findEND, initCEN, checkAndAddEntry, getDataPos), so that a
// jar means to this package what it means to the JVM:
//
//   - the end of central directory record (EOCD) is searched backwards from
//     the end of the file, and the last one wins if its comment reaches
//     exactly to the end of the file or, failing that, if the central
//     directory and first local header it implies start with their
//     signatures; a record failing both is skipped, not an error;
//   - a zip64 EOCD is used when its locator precedes the EOCD and its values
//     agree with the EOCD's where those are not 0xffff/0xffffffff;
//   - the central directory starts cenlen bytes before the EOCD, whatever its
//     recorded offset says: the recorded offset only gives the start of the
//     zip within the file (a stub prefixed to an executable jar);
//   - every header in the central directory counts, however many entries
//     the EOCD declares (a 16-bit field that wraps), and the headers must
//     fill the directory exactly;
//   - an entry's data starts after its local header's own name and extra
//     lengths, and is its compressed size (from the central directory, or
//     zip64 extra) long; a deflated entry is inflated to the end of its
//     stream, whatever uncompressed size it declares.
const (
	zipEOCDLen       = 22
	zipEOCDMaxLen    = zipEOCDLen + 0xffff
	zipCENHeaderLen  = 46
	zipLOCHeaderLen  = 30
	zip64LocatorLen  = 20
	zip64EOCDLen     = 56
	zipMagic32       = 0xffffffff
	zipMagic16       = 0xffff
	zipStored        = 0
	zipDeflated      = 8
	zipSigLOC        = "PK\x03\x04"
	zipSigCEN        = "PK\x01\x02"
	zipSigEOCD       = "PK\x05\x06"
	zipSig64Locator  = "PK\x06\x07"
	zipSig64EOCD     = "PK\x06\x06"
	zipExtraZip64Tag = 0x0001
)

// zipFile is one entry of a central directory.
type zipFile struct {
	name   []byte // points into the archive
	method uint16
	csize  uint64
	size   uint64 // as declared; not trusted
	locoff uint64 // relative to the archive's start (locpos)
}

// zipArchive is an archive's central directory, read from data.
type zipArchive struct {
	data   []byte
	locpos uint64
	files  []zipFile
}

// errNotZip reports that no end of central directory record the JDK would
// accept was found.
var errNotZip = errors.New("zip END header not found")

// readZip reads the central directory of the zip archive in data, refusing
// one with more than maxEntries entries (a *LimitError).
func readZip(data []byte, maxEntries int) (*zipArchive, error) {
	endpos, cenlen, cenoff, err := zipFindEnd(data)
	if err != nil {
		return nil, err
	}
	if cenlen > endpos {
		return nil, errors.New("invalid END header (bad central directory size)")
	}
	cenpos := endpos - cenlen
	if cenoff > cenpos {
		return nil, errors.New("invalid END header (bad central directory offset)")
	}
	z := &zipArchive{data: data, locpos: cenpos - cenoff}
	cen := data[cenpos:endpos]
	for len(cen) > 0 {
		if len(cen) < zipCENHeaderLen || string(cen[:4]) != zipSigCEN {
			return nil, errors.New("invalid CEN header (bad signature or header size)")
		}
		if len(z.files) == maxEntries {
			return nil, limitf("archive has over %d entries", maxEntries)
		}
		flags := binary.LittleEndian.Uint16(cen[8:])
		f := zipFile{
			method: binary.LittleEndian.Uint16(cen[10:]),
			csize:  uint64(binary.LittleEndian.Uint32(cen[20:])),
			size:   uint64(binary.LittleEndian.Uint32(cen[24:])),
			locoff: uint64(binary.LittleEndian.Uint32(cen[42:])),
		}
		nlen := int(binary.LittleEndian.Uint16(cen[28:]))
		elen := int(binary.LittleEndian.Uint16(cen[30:]))
		clen := int(binary.LittleEndian.Uint16(cen[32:]))
		if flags&1 != 0 {
			return nil, errors.New("invalid CEN header (encrypted entry)")
		}
		if f.method != zipStored && f.method != zipDeflated {
			return nil, fmt.Errorf("invalid CEN header (bad compression method: %d)", f.method)
		}
		if zipCENHeaderLen+nlen+elen+clen > len(cen) {
			return nil, errors.New("invalid CEN header (bad header size)")
		}
		f.name = cen[zipCENHeaderLen : zipCENHeaderLen+nlen]
		if err := f.zip64(cen[zipCENHeaderLen+nlen : zipCENHeaderLen+nlen+elen]); err != nil {
			return nil, err
		}
		z.files = append(z.files, f)
		cen = cen[zipCENHeaderLen+nlen+elen+clen:]
	}
	return z, nil
}

// zipFindEnd finds the EOCD as the JDK's findEND does and returns its
// position and the central directory's length and recorded offset (from the
// zip64 EOCD where one applies; its position then stands for the EOCD's).
func zipFindEnd(data []byte) (endpos, cenlen, cenoff uint64, err error) {
	size := uint64(len(data))
	if size < zipEOCDLen {
		return 0, 0, 0, errNotZip
	}
	lowest := 0
	if len(data) > zipEOCDMaxLen {
		lowest = len(data) - zipEOCDMaxLen
	}
	for i := len(data) - zipEOCDLen; i >= lowest; i-- {
		if data[i] != 'P' || string(data[i:i+4]) != zipSigEOCD {
			continue
		}
		e := data[i:]
		total := uint64(binary.LittleEndian.Uint16(e[10:]))
		cenlen = uint64(binary.LittleEndian.Uint32(e[12:]))
		cenoff = uint64(binary.LittleEndian.Uint32(e[16:]))
		comlen := uint64(binary.LittleEndian.Uint16(e[20:]))
		endpos = uint64(i)
		if endpos+zipEOCDLen+comlen != size {
			// Trailing bytes: accept only if the directory and the first
			// local header are where this record puts them.
			if cenlen > endpos || cenoff > endpos-cenlen ||
				!hasSig(data, endpos-cenlen, zipSigCEN) || !hasSig(data, endpos-cenlen-cenoff, zipSigLOC) {
				continue
			}
		}
		if endpos < zip64LocatorLen || !hasSig(data, endpos-zip64LocatorLen, zipSig64Locator) {
			return endpos, cenlen, cenoff, nil
		}
		end64 := binary.LittleEndian.Uint64(data[endpos-zip64LocatorLen+8:])
		if end64 > size-zip64EOCDLen || size < zip64EOCDLen || !hasSig(data, end64, zipSig64EOCD) {
			return endpos, cenlen, cenoff, nil
		}
		e64 := data[end64:]
		total64 := binary.LittleEndian.Uint64(e64[32:])
		cenlen64 := binary.LittleEndian.Uint64(e64[40:])
		cenoff64 := binary.LittleEndian.Uint64(e64[48:])
		if cenlen64 != cenlen && cenlen != zipMagic32 ||
			cenoff64 != cenoff && cenoff != zipMagic32 ||
			total64 != total && total != zipMagic16 {
			return endpos, cenlen, cenoff, nil
		}
		return end64, cenlen64, cenoff64, nil
	}
	return 0, 0, 0, errNotZip
}

// hasSig reports whether data holds the 4-byte signature sig at off.
func hasSig(data []byte, off uint64, sig string) bool {
	return off <= uint64(len(data)) && uint64(len(data))-off >= 4 && string(data[off:off+4]) == sig
}

// zip64 replaces the sizes and offset the central directory marks as
// 0xffffffff with those of the zip64 extra field, in the order the format
// (and the JDK's ZipEntry.setExtra0) gives them.
func (f *zipFile) zip64(extra []byte) error {
	if f.size != zipMagic32 && f.csize != zipMagic32 && f.locoff != zipMagic32 {
		return nil
	}
	for len(extra) >= 4 {
		tag := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+n > len(extra) {
			break
		}
		if tag == zipExtraZip64Tag {
			b := extra[4 : 4+n]
			for _, v := range []*uint64{&f.size, &f.csize, &f.locoff} {
				if *v != zipMagic32 {
					continue
				}
				if len(b) < 8 {
					return errors.New("invalid zip64 extra field")
				}
				*v, b = binary.LittleEndian.Uint64(b), b[8:]
			}
			return nil
		}
		extra = extra[4+n:]
	}
	return nil
}

// raw returns the compressed bytes of f, located as the JDK's getDataPos
// locates them.
func (z *zipArchive) raw(f *zipFile) ([]byte, error) {
	loc := z.locpos + f.locoff
	if loc < z.locpos || !hasSig(z.data, loc, zipSigLOC) || uint64(len(z.data))-loc < zipLOCHeaderLen {
		return nil, fmt.Errorf("invalid LOC header for %.100q", f.name)
	}
	h := z.data[loc:]
	start := loc + zipLOCHeaderLen + uint64(binary.LittleEndian.Uint16(h[26:])) + uint64(binary.LittleEndian.Uint16(h[28:]))
	if start > uint64(len(z.data)) || f.csize > uint64(len(z.data))-start {
		return nil, fmt.Errorf("entry %.100q runs past the end of the archive", f.name)
	}
	return z.data[start : start+f.csize], nil
}

// zipInflater decompresses entries, reusing one decompressor.
type zipInflater struct {
	fr io.ReadCloser
	br bytes.Reader
}

// errTooLarge reports that an entry holds more than the bytes asked for.
var errTooLarge = errors.New("entry larger than allowed")

// content returns up to max bytes of f's content; errTooLarge if there are
// more. A stored entry's content is its compressed bytes, not a copy.
func (zi *zipInflater) content(z *zipArchive, f *zipFile, max int64) ([]byte, error) {
	raw, err := z.raw(f)
	if err != nil {
		return nil, err
	}
	if f.method == zipStored {
		if int64(len(raw)) > max {
			return nil, errTooLarge
		}
		return raw, nil
	}
	zi.br.Reset(raw)
	if zi.fr == nil {
		zi.fr = flate.NewReader(&zi.br)
	} else if err := zi.fr.(flate.Resetter).Reset(&zi.br, nil); err != nil {
		return nil, err
	}
	// Start from the declared size (right for an honest archive: one
	// allocation), unless it is more than a few times the compressed size
	// (which honest jars, mostly compressed already, never are), and grow
	// by doubling, never past max+1: memory follows the bound and the
	// archive's size, whatever the entry declares.
	buf := make([]byte, 0, min(f.size, uint64(max), 4*f.csize+512)+1)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, errTooLarge
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf))+512, max+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := zi.fr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inflating %.100q: %w", f.name, err)
		}
	}
	if int64(len(buf)) > max {
		return nil, errTooLarge
	}
	return buf, nil
}

// head returns the first bytes (at most len(buf)) of f's content.
func (zi *zipInflater) head(z *zipArchive, f *zipFile, buf []byte) []byte {
	raw, err := z.raw(f)
	if err != nil {
		return nil
	}
	if f.method == zipStored {
		return raw[:copy(buf, raw)]
	}
	zi.br.Reset(raw)
	if zi.fr == nil {
		zi.fr = flate.NewReader(&zi.br)
	} else if zi.fr.(flate.Resetter).Reset(&zi.br, nil) != nil {
		return nil
	}
	n, _ := io.ReadFull(zi.fr, buf)
	return buf[:n]
}
