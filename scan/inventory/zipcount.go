package inventory

import (
	"bytes"
	"encoding/binary"
)

// zipEntryCount reads the number of entries a zip archive declares in its end
// of central directory record (or its zip64 one), so that an archive declaring
// millions can be refused before a reader allocates for them.
func zipEntryCount(data []byte) (uint64, bool) {
	const (
		eocdLen          = 22
		eocdSig          = "PK\x05\x06"
		zip64LocatorLen  = 20
		zip64LocatorSig  = "PK\x06\x07"
		zip64EOCDSig     = "PK\x06\x06"
		maxCommentLength = 0xffff
	)
	if len(data) < eocdLen {
		return 0, false
	}
	start := max(0, len(data)-eocdLen-maxCommentLength)
	i := bytes.LastIndex(data[start:len(data)-eocdLen+4], []byte(eocdSig))
	if i < 0 {
		return 0, false
	}
	i += start
	n := uint64(binary.LittleEndian.Uint16(data[i+10:]))
	if n != 0xffff || i < zip64LocatorLen || len(data) < 56 {
		return n, true
	}
	loc := data[i-zip64LocatorLen : i]
	if string(loc[:4]) != zip64LocatorSig {
		return n, true
	}
	off := binary.LittleEndian.Uint64(loc[8:])
	if off > uint64(len(data)-56) || string(data[off:off+4]) != zip64EOCDSig {
		return n, true
	}
	return binary.LittleEndian.Uint64(data[off+32:]), true
}
