package secrets

// Counts counts secrets by confidence level.
type Counts struct {
	High   int `json:"high,omitempty"`
	Medium int `json:"medium,omitempty"`
	Low    int `json:"low,omitempty"`
}

// Add adds n to the count of level c; an unknown level counts as low.
func (n *Counts) Add(c Confidence, d int) {
	switch c {
	case ConfidenceHigh:
		n.High += d
	case ConfidenceMedium:
		n.Medium += d
	default:
		n.Low += d
	}
}

// Of returns the count of level c.
func (n Counts) Of(c Confidence) int {
	switch c {
	case ConfidenceHigh:
		return n.High
	case ConfidenceMedium:
		return n.Medium
	default:
		return n.Low
	}
}

// Total returns the count of every level.
func (n Counts) Total() int { return n.High + n.Medium + n.Low }

// Plus returns the sum of n and m, level by level.
func (n Counts) Plus(m Counts) Counts {
	return Counts{High: n.High + m.High, Medium: n.Medium + m.Medium, Low: n.Low + m.Low}
}

// NotSearched is a file, or a file inside an archive, that the secret
// search did not read in full, and why: a secret in it would not have been
// found.
type NotSearched struct {
	// Path is the file's path.
	Path string `json:"path"`
	// Member is the file inside the archive at Path ("lib/app.jar!/key.pem"
	// for nested archives), empty for Path itself.
	Member string `json:"member,omitempty"`
	// Reason says why, e.g. "over 1 MiB".
	Reason string `json:"reason"`
}

// Location names the file for people: "path" or "path!/member".
func (n NotSearched) Location() string {
	if n.Member != "" {
		return n.Path + "!/" + n.Member
	}
	return n.Path
}

// MaxNotSearched is the most NotSearched entries a Report lists; its
// NotSearchedCount counts them all.
const MaxNotSearched = 100

// Report is what Search found in one file.
type Report struct {
	// Secrets are the secrets found, at most MaxFindings of each confidence
	// level: those of the files inside an archive first (depth first), then
	// those of its own bytes the members did not show, each in the order
	// they appear.
	Secrets []Secret `json:"secrets,omitempty"`
	// Omitted counts, per level, the secrets found past MaxFindings.
	Omitted Counts `json:"omitted,omitzero"`
	// NotSearched lists the files inside the file (members of its archives)
	// that were not searched, at most MaxNotSearched of them; the file
	// itself when the search stopped early.
	NotSearched []NotSearched `json:"notSearched,omitempty"`
	// NotSearchedCount counts all of them.
	NotSearchedCount int `json:"notSearchedCount,omitempty"`
	// ExpandedBytes counts the bytes decompressed from archives inside the file.
	ExpandedBytes int64 `json:"expandedBytes,omitempty"`
}

// collector gathers findings, keeping at most max of each level.
type collector struct {
	max     int
	kept    Counts
	omitted Counts
	secrets []Secret
}

func newCollector(max int) *collector { return &collector{max: max} }

// add keeps s unless its level is full, which it counts instead.
func (c *collector) add(s Secret) {
	if c.kept.Of(s.Confidence) >= c.max {
		c.omitted.Add(s.Confidence, 1)
		return
	}
	c.kept.Add(s.Confidence, 1)
	c.secrets = append(c.secrets, s)
}

// full reports whether level conf has all the findings it may keep.
func (c *collector) full(conf Confidence) bool { return c.kept.Of(conf) >= c.max }

// scan runs the detectors on data, the file at path (member inside it, if
// any), and adds what they find.
func (c *collector) scan(b *budget, path, member string, data []byte) error {
	return run(b, textFilter, bytesText(data), c, Secret{Path: path, Member: member}, nil)
}
