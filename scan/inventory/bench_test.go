package inventory

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// The benchmarks feed each parser hostile input ten times past its bounds;
// run with -benchmem, ns/op and B/op must stay flat as the input grows
// (compare the sizes), which shows the work is linear and stops at the bound.

func BenchmarkDpkgFlood(b *testing.B) {
	for _, n := range []int{MaxPackagesPerFile, 10 * MaxPackagesPerFile} {
		var buf bytes.Buffer
		for i := range n {
			fmt.Fprintf(&buf, "Package: p%d\nStatus: install ok installed\nVersion: 1\n\n", i)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				Dpkg{}.Extract(dpkgStatus, buf.Bytes())
			}
		})
	}
}

func BenchmarkGoStreamMarkers(b *testing.B) {
	c := append([]byte{}, buildInfoMagic...)
	c = append(c, 8, buildInfoInline)
	c = append(c, make([]byte, 16)...)
	c = append(c, 4, 'g', 'o', '1', '.')
	c = binary.AppendUvarint(c, maxModInfo)
	c = append(c, make([]byte, 64-len(c))...)
	for _, mib := range []int{16, 160} {
		data := bytes.Repeat(c, mib<<20/len(c))
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				scanBuildInfo(bytes.NewReader(data))
			}
		})
	}
	partial := buildInfoMagic[:13]
	for _, mib := range []int{16, 160} {
		data := bytes.Repeat(partial, mib<<20/len(partial))
		b.Run(fmt.Sprintf("partial/%dMiB", mib), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				scanBuildInfo(bytes.NewReader(data))
			}
		})
	}
}

func BenchmarkJavaEntries(b *testing.B) {
	for _, n := range []int{maxZipEntries / 10, maxZipEntries + 1} {
		entries := make([]zipEntry, n)
		for i := range entries {
			entries[i] = zipEntry{name: "f", stored: true}
		}
		jar := buildZip(b, entries...)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(jar)))
			for b.Loop() {
				Java{}.Extract("/a.jar", jar)
			}
		})
	}
}

func BenchmarkNPMDeep(b *testing.B) {
	for _, depth := range []int{maxJSONDepth, 10 * maxJSONDepth} {
		data := []byte(`{"a":` + string(bytes.Repeat([]byte("["), depth)) + string(bytes.Repeat([]byte("]"), depth)) + `}`)
		b.Run(fmt.Sprint(depth), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				NPM{}.Extract("/n/node_modules/x/package.json", data)
			}
		})
	}
}
