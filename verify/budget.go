package verify

import (
	"fmt"
	"slices"
)

// Budget bounds the work of one verification of one image digest (one subject), so that
// signature artifacts anyone with push rights can add cost a bounded number of upstream
// reads. Every manifest and blob read counts, discovery included (the `.sig` tag, the
// referrers list and the referrers fallback tag: three reads). Work over budget is left
// undone and reported in the Result (Rejected with KindOverBudget, Spent.Exceeded); it
// never counts as a valid signature and is not an error.
type Budget struct {
	// Referrers is how many referrer manifests one verification reads (default 64).
	Referrers int
	// Layers is how many signature layers of one manifest (the `.sig` manifest, or a cosign
	// signature referrer) are examined, one blob read each (default 32).
	Layers int
	// Reads is how many upstream reads (manifests, blobs, the referrers list) one
	// verification makes in all, discovery included (default 128).
	Reads int
	// Bytes is how many bytes of manifests and blobs one verification reads in all,
	// discovery included (default 8 MiB). A read is started only when the size its
	// descriptor declares fits; a manifest read by tag or a descriptor that understates
	// its size can overrun the budget by at most one manifest (1 MiB).
	Bytes int64
}

// DefaultBudget is the budget of a Verifier made without WithBudget.
func DefaultBudget() Budget {
	return Budget{Referrers: 64, Layers: 32, Reads: 128, Bytes: 8 << 20}
}

// WithBudget sets the budget of each verification; zero or negative fields keep their
// defaults (see DefaultBudget).
func WithBudget(b Budget) Option {
	return func(v *Verifier) {
		d := DefaultBudget()
		if b.Referrers > 0 {
			d.Referrers = b.Referrers
		}
		if b.Layers > 0 {
			d.Layers = b.Layers
		}
		if b.Reads > 0 {
			d.Reads = b.Reads
		}
		if b.Bytes > 0 {
			d.Bytes = b.Bytes
		}
		v.budget = d
	}
}

// Budget limits, as Spent.Exceeded names them (and metrics label them).
const (
	// LimitReferrers is Budget.Referrers.
	LimitReferrers = "referrers"
	// LimitLayers is Budget.Layers.
	LimitLayers = "layers"
	// LimitReads is Budget.Reads.
	LimitReads = "reads"
	// LimitBytes is Budget.Bytes.
	LimitBytes = "bytes"
)

// Spent is the work one verification did, and what it left undone.
type Spent struct {
	// Reads counts the upstream reads made, discovery included.
	Reads int `json:"reads,omitempty"`
	// Bytes counts the bytes of manifests and blobs read.
	Bytes int64 `json:"bytes,omitempty"`
	// Referrers counts the referrer manifests read.
	Referrers int `json:"referrers,omitempty"`
	// Unexamined counts the referrers and signature layers left unexamined, because the
	// goal was met first or over budget.
	Unexamined int `json:"unexamined,omitempty"`
	// GoalMet says the verification stopped because the goal was met.
	GoalMet bool `json:"goalMet,omitempty"`
	// Exceeded names, sorted, the limits that left work undone (LimitReferrers,
	// LimitLayers, LimitReads, LimitBytes); empty when the budget sufficed.
	Exceeded []string `json:"exceeded,omitempty"`
}

// Requirement is what one caller's rule needs: valid signatures by at least Threshold
// distinct authorities among Authorities (names as in Authority.Name).
type Requirement struct {
	// Authorities are the names of the authorities that count.
	Authorities []string
	// Threshold is how many distinct authorities must have signed (at least 1).
	Threshold int
}

// Goal says when a verification may stop: as soon as every requirement is met. Artifacts
// not examined then are counted in Spent.Unexamined. The zero Goal is never met: every
// artifact within the budget is examined.
type Goal struct {
	// Requirements must all be met.
	Requirements []Requirement
}

// Met reports whether the signatures of res meet every requirement of g; false for the
// zero Goal.
func (g Goal) Met(res Result) bool {
	if len(g.Requirements) == 0 {
		return false
	}
	got := res.Authorities()
	for _, r := range g.Requirements {
		n := 0
		for _, a := range r.Authorities {
			if slices.Contains(got, a) {
				n++
			}
		}
		if n < max(r.Threshold, 1) {
			return false
		}
	}
	return true
}

// String describes g canonically (sorted names, sorted requirements), for cache keys:
// e.g. "1of[release,security];2of[a,b,c]". The zero Goal is "all".
func (g Goal) String() string {
	if len(g.Requirements) == 0 {
		return "all"
	}
	parts := make([]string, len(g.Requirements))
	for i, r := range g.Requirements {
		names := slices.Clone(r.Authorities)
		slices.Sort(names)
		names = slices.Compact(names)
		parts[i] = fmt.Sprintf("%dof%q", max(r.Threshold, 1), names)
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	s := parts[0]
	for _, p := range parts[1:] {
		s += ";" + p
	}
	return s
}

// ledger counts one verification's reads against its budget.
type ledger struct {
	b     Budget
	spent Spent
}

// afford reports whether a read of size bytes (as declared; 0 when unknown) fits the
// budget, recording the limit that does not.
func (l *ledger) afford(size int64) bool {
	switch {
	case l.spent.Reads >= l.b.Reads:
		l.exceed(LimitReads)
	case size > 0 && l.spent.Bytes+size > l.b.Bytes:
		l.exceed(LimitBytes)
	case l.spent.Bytes >= l.b.Bytes:
		l.exceed(LimitBytes)
	default:
		return true
	}
	return false
}

// charge counts one read of n bytes.
func (l *ledger) charge(n int) {
	l.spent.Reads++
	l.spent.Bytes += int64(n)
}

// exceed records that limit left work undone.
func (l *ledger) exceed(limit string) {
	if !slices.Contains(l.spent.Exceeded, limit) {
		l.spent.Exceeded = append(l.spent.Exceeded, limit)
		slices.Sort(l.spent.Exceeded)
	}
}

// exhausted reports whether no further read fits: the reads or bytes limit was hit.
func (l *ledger) exhausted() bool {
	return slices.Contains(l.spent.Exceeded, LimitReads) || slices.Contains(l.spent.Exceeded, LimitBytes)
}

// describe says what limit stops the work, for a rejection's detail.
func (l *ledger) describe(limit string) string {
	switch limit {
	case LimitReferrers:
		return fmt.Sprintf("over the budget of %d referrer manifests per image", l.b.Referrers)
	case LimitLayers:
		return fmt.Sprintf("over the budget of %d signature layers per manifest", l.b.Layers)
	case LimitReads:
		return fmt.Sprintf("over the budget of %d registry reads per verification", l.b.Reads)
	default:
		return fmt.Sprintf("over the budget of %d bytes read per verification", l.b.Bytes)
	}
}

// lastExhausted names the reads or bytes limit that was hit.
func (l *ledger) lastExhausted() string {
	if slices.Contains(l.spent.Exceeded, LimitReads) {
		return LimitReads
	}
	return LimitBytes
}
