package hostile

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Entry is one tar entry.
type Entry struct {
	// Name is the entry's path in the tar.
	Name string
	// Type is the tar type flag; zero means a regular file.
	Type byte
	// Body is a regular file's content.
	Body []byte
	// Link is a symlink's or hard link's target.
	Link string
}

// File is a regular file entry.
func File(name string, body []byte) Entry { return Entry{Name: name, Body: body} }

// Dir is a directory entry.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Symlink is a symbolic link entry.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}

// Hardlink is a hard link entry.
func Hardlink(name, target string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: target} }

var mtime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Tar writes entries as a tar stream (PAX where a name or target needs it),
// with its end-of-archive blocks.
func Tar(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: 0o644, ModTime: mtime}
		if e.Type == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("hostile: writing %q: %v", e.Name, err))
		}
		tw.Write(e.Body)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Entries writes entries without the end-of-archive blocks, to be joined
// with other parts and ended with End.
func Entries(entries ...Entry) []byte {
	b := Tar(entries...)
	return b[:len(b)-1024]
}

// End is the end of a tar archive: two zero blocks.
func End() []byte { return make([]byte, 1024) }

// SparsePAX returns a tar entry (no end blocks) for a GNU sparse file in PAX
// format 1.0, as GNU tar writes it, which archive/tar's Writer refuses to: a
// file of realSize bytes holding data at offset 0 and holes (zeros) after it.
// A few hundred bytes declare up to 2^63-1 bytes.
func SparsePAX(name string, realSize int64, data []byte) []byte {
	records := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     name,
		"GNU.sparse.realsize": strconv.FormatInt(realSize, 10),
	}
	var pax []byte
	for _, k := range []string{"GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.realsize"} {
		pax = append(pax, paxRecord(k, records[k])...)
	}
	// The sparse map, in the data section: the number of fragments, then
	// offset and size of each, padded to a block.
	sparseMap := pad([]byte("1\n0\n" + strconv.Itoa(len(data)) + "\n"))
	body := append(sparseMap, pad(data)...)
	var out []byte
	out = append(out, header("PaxHeaders/"+name, 'x', int64(len(pax)))...)
	out = append(out, pad(pax)...)
	out = append(out, header("GNUSparseFile.0/"+name, '0', int64(len(sparseMap)+len(data)))...)
	return append(out, body...)
}

// paxRecord formats one PAX record: "<len> <key>=<value>\n", len counting itself.
func paxRecord(k, v string) []byte {
	n := len(k) + len(v) + 3
	for l := len(strconv.Itoa(n)); ; {
		total := n + l
		if len(strconv.Itoa(total)) == l {
			return []byte(strconv.Itoa(total) + " " + k + "=" + v + "\n")
		}
		l++
	}
}

// pad pads b with zeros to a whole number of 512-byte blocks.
func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// header is a ustar header block.
func header(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", mtime.Unix()))
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}
