package hostile

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"

	"github.com/klauspost/compress/zstd"
)

// Gzip compresses b as one gzip member.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// GzipMembers compresses each part as a gzip member of its own, joined: one
// stream, as gzip reads it.
func GzipMembers(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, Gzip(p)...)
	}
	return out
}

// GzipBomb is a gzip stream of a tar holding one file of mib MiB of zeros,
// built without holding it: each MiB is a member of its own, about 1 KiB.
func GzipBomb(name string, mib int) []byte {
	out := Gzip(header(name, '0', int64(mib)<<20))
	zeros := Gzip(make([]byte, 1<<20))
	for range mib {
		out = append(out, zeros...)
	}
	return append(out, Gzip(End())...)
}

// ZstdFrame is data as one zstd frame of raw (stored) blocks whose header
// declares a window of 2^windowLog bytes (10 to 41), as a zstd encoder may:
// containerd's decoder accepts up to 2^31.
func ZstdFrame(data []byte, windowLog int) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd}
	// Frame header descriptor: no content size, not single-segment, no
	// checksum, no dictionary; then the window descriptor (exponent only).
	out = append(out, 0x00, byte(windowLog-10)<<3)
	maxBlock := min(128<<10, 1<<windowLog)
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), maxBlock)
		last := 0
		if n == len(data) {
			last = 1
		}
		bh := uint32(n)<<3 | uint32(last) // block type 0: raw
		out = append(out, byte(bh), byte(bh>>8), byte(bh>>16))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

// ZstdSkippable is a zstd skippable frame (magic 0x184D2A50 + n) holding payload.
func ZstdSkippable(n byte, payload []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, 0x184D2A50+uint32(n&0x0f))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(payload)))
	return append(out, payload...)
}

// ZstdBomb is GzipBomb in zstd: a frame per MiB of zeros (a few dozen bytes each).
func ZstdBomb(name string, mib int) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	out := enc.EncodeAll(header(name, '0', int64(mib)<<20), nil)
	zeros := enc.EncodeAll(make([]byte, 1<<20), nil)
	for range mib {
		out = append(out, zeros...)
	}
	return append(out, enc.EncodeAll(End(), nil)...)
}
