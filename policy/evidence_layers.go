package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// LayerMismatch is a layer whose content is not what the image configuration says: the
// uncompressed digest (diffID) the gateway computed from the layer blob differs from the
// one the configuration's rootfs.diff_ids lists at that position. containerd refuses to
// unpack such an image, and evidence about the claimed layer says nothing about this one,
// so content rules deny it whatever the environment's fail mode.
type LayerMismatch struct {
	// Number is the layer's position in the manifest, 1 for the lowest.
	Number int `json:"number"`
	// Blob is the layer blob's (compressed) digest, as the manifest names it.
	Blob string `json:"blob"`
	// Claimed is the diffID the image configuration lists for the layer.
	Claimed string `json:"claimed"`
	// Actual is the diffID computed from the blob's content.
	Actual string `json:"actual"`
}

// String names the layer, its blob and both diffIDs in full.
func (m LayerMismatch) String() string {
	return fmt.Sprintf("layer %d (blob %s): the image configuration says diffID %s, its content is %s", m.Number, m.Blob, m.Claimed, m.Actual)
}

// mismatchVerdict is the failure of a content rule on an image whose layers are not what
// its configuration says.
func mismatchVerdict(ms []LayerMismatch) (finding, fix string) {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "the image's layers are not the ones its configuration names, so its content cannot be judged by it: " + strings.Join(parts, "; "),
		"rebuild and push the image with a standard tool (docker, buildkit, crane, ko); a configuration whose rootfs.diff_ids do not match the layers cannot be unpacked by containerd"
}

// UnsearchedFile is a file of a layer the secret search did not read in full (binary
// content, over the size the search reads, an archive past the depth it opens, ...).
type UnsearchedFile struct {
	// Path is the file's path in the layer.
	Path string `json:"path"`
	// Layer is the layer's diffID; LayerNumber its position, 1 for the lowest.
	Layer       string `json:"layer,omitempty"`
	LayerNumber int    `json:"layerNumber,omitempty"`
	// Reason says why it was not searched.
	Reason string `json:"reason,omitempty"`
}

// String names the file, its layer and why it was not searched.
func (u UnsearchedFile) String() string {
	s := u.Path
	if u.LayerNumber > 0 {
		s += " in layer " + strconv.Itoa(u.LayerNumber)
	}
	if u.Reason != "" {
		s += " (" + u.Reason + ")"
	}
	return s
}
