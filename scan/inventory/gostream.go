package inventory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime/debug"
	"strings"
)

// Build information as the Go linker lays it out since Go 1.18: a 32-byte
// header starting with buildInfoMagic, 16-byte aligned in the file, then the
// toolchain version and the module information as varint-prefixed strings.
var buildInfoMagic = []byte("\xff Go buildinf:")

const (
	buildInfoHeaderSize = 32
	buildInfoAlign      = 16
	buildInfoInline     = 0x2
	// maxModInfo bounds the module information accepted while streaming.
	maxModInfo = 16 << 20
)

// ExtractStream finds the build information in an executable read as a
// stream, for files too large to read into memory. It finds binaries built by
// Go 1.18 or later, whose build information is stored inline.
func (GoBinary) ExtractStream(p string, r io.Reader) ([]Package, error) {
	vers, mod, err := scanBuildInfo(r)
	if err != nil || vers == "" {
		return nil, err
	}
	bi := &debug.BuildInfo{}
	if mod != "" {
		if bi, err = debug.ParseBuildInfo(mod); err != nil {
			return nil, nil
		}
	}
	bi.GoVersion = vers
	return goPackages(p, bi), nil
}

// scanBuildInfo reads r to its end or to the build information, whichever
// comes first, and returns the version and module strings ("" when absent).
func scanBuildInfo(r io.Reader) (vers, mod string, err error) {
	buf := make([]byte, 0, 1<<20)
	var base int64 // file offset of buf[0]
	pos := 0       // where to search from in buf
	eof := false
	fill := func() error {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			eof = true
			return nil
		}
		return err
	}
	// shift drops buf[:from], keeping the rest at the front.
	shift := func(from int) {
		n := copy(buf, buf[from:])
		buf = buf[:n]
		base += int64(from)
		pos = 0
	}
	if err := fill(); err != nil {
		return "", "", err
	}
	for {
		i := bytes.Index(buf[pos:], buildInfoMagic)
		if i < 0 {
			if eof {
				return "", "", nil
			}
			shift(max(pos, len(buf)-(len(buildInfoMagic)-1)))
			if err := fill(); err != nil {
				return "", "", err
			}
			continue
		}
		i += pos
		if (base+int64(i))%buildInfoAlign != 0 {
			pos = i + 1
			continue
		}
		vers, mod, status := decodeBuildInfo(buf[i:])
		switch {
		case status == infoOK:
			return vers, mod, nil
		case status == infoShort && !eof:
			shift(i)
			if len(buf) == cap(buf) {
				if cap(buf) >= maxModInfo {
					pos = 1
					continue
				}
				grown := make([]byte, len(buf), 2*cap(buf))
				copy(grown, buf)
				buf = grown
			}
			if err := fill(); err != nil {
				return "", "", err
			}
		default:
			pos = i + 1
		}
	}
}

type infoStatus int

const (
	infoOK infoStatus = iota
	infoShort
	infoBad
)

// decodeBuildInfo decodes inline build information at the start of b.
func decodeBuildInfo(b []byte) (vers, mod string, status infoStatus) {
	if len(b) < buildInfoHeaderSize {
		return "", "", infoShort
	}
	if b[15]&buildInfoInline == 0 || (b[14] != 4 && b[14] != 8) {
		return "", "", infoBad
	}
	rest := b[buildInfoHeaderSize:]
	vers, rest, status = decodeVarString(rest, 1<<10)
	if status != infoOK {
		return "", "", status
	}
	if !strings.HasPrefix(vers, "go1") && !strings.HasPrefix(vers, "devel ") {
		return "", "", infoBad
	}
	mod, _, status = decodeVarString(rest, maxModInfo)
	if status != infoOK {
		return "", "", status
	}
	// Strip the 16-byte sentinels around the module information.
	if len(mod) >= 33 && mod[len(mod)-17] == '\n' {
		mod = mod[16 : len(mod)-16]
	} else {
		mod = ""
	}
	return vers, mod, infoOK
}

// decodeVarString decodes a varint length and that many bytes.
func decodeVarString(b []byte, maxLen uint64) (string, []byte, infoStatus) {
	n, k := binary.Uvarint(b)
	switch {
	case k == 0 && len(b) < binary.MaxVarintLen64:
		return "", nil, infoShort
	case k <= 0 || n > maxLen:
		return "", nil, infoBad
	case uint64(len(b)-k) < n:
		return "", nil, infoShort
	}
	return string(b[k : k+int(n)]), b[k+int(n):], infoOK
}
