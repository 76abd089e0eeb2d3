package secrets

import (
	"cmp"
	"slices"
)

// hit is where a match is, what decides between overlapping ones, and
// which match it is: found[set][index] in run. The order found (detector
// order, then the detector's own) is that of (set, index).
type hit struct {
	start, end int
	priority   int32
	set, index int32
}

// resolveCheckEvery is how many hits resolve weighs between checks of its budget.
const resolveCheckEvery = 4096

// resolve returns, of hits, those that survive overlaps, ordered by start:
// in the order of priority (highest first), then length (longest first),
// then the order found, a hit is kept unless it overlaps one kept before.
//
// Kept hits never overlap each other, so whether a hit [s, e) overlaps one
// of them comes down to two questions: does a kept hit start in [s, e), and
// does the last kept hit starting before s end after s. A Fenwick tree over
// the distinct starts answers both in O(log n): O(n log n) in all, however
// the hits nest and overlap (the pairwise comparison this replaces was
// quadratic, and a file of tokens made it so).
func resolve(b *budget, hits []hit) ([]hit, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	starts := make([]int, len(hits))
	for i, h := range hits {
		starts[i] = h.start
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	slices.SortFunc(hits, func(x, y hit) int {
		return cmp.Or(
			cmp.Compare(y.priority, x.priority),
			cmp.Compare(y.end-y.start, x.end-x.start),
			cmp.Compare(x.set, y.set),
			cmp.Compare(x.index, y.index))
	})
	tree := make(fenwick, len(starts)+1)
	endAt := make([]int, len(starts)) // the end of the kept hit at each start
	var kept []hit
	for n, h := range hits {
		if n%resolveCheckEvery == resolveCheckEvery-1 {
			if err := b.err(); err != nil {
				return nil, err
			}
		}
		// Number of distinct starts before h.start and before h.end.
		si, _ := slices.BinarySearch(starts, h.start)
		ei, _ := slices.BinarySearch(starts, h.end)
		before := tree.sum(si)
		if tree.sum(ei) > before {
			continue // a kept hit starts inside h
		}
		if before > 0 && endAt[tree.find(before)] > h.start {
			continue // the kept hit before h runs into it
		}
		tree.add(si, 1)
		endAt[si] = h.end
		kept = append(kept, h)
	}
	slices.SortFunc(kept, func(x, y hit) int { return cmp.Compare(x.start, y.start) })
	return kept, nil
}

// fenwick is a binary indexed tree of counts over positions 0…len-2.
type fenwick []int

// add adds d at position i.
func (f fenwick) add(i, d int) {
	for i++; i < len(f); i += i & -i {
		f[i] += d
	}
}

// sum returns the total at positions before i.
func (f fenwick) sum(i int) int {
	s := 0
	for ; i > 0; i -= i & -i {
		s += f[i]
	}
	return s
}

// find returns the position of the k-th count (k ≥ 1, counts being 0 or 1):
// the smallest i with sum(i+1) ≥ k.
func (f fenwick) find(k int) int {
	pos := 0
	step := 1
	for step*2 < len(f) {
		step *= 2
	}
	for ; step > 0; step /= 2 {
		if pos+step < len(f) && f[pos+step] < k {
			pos += step
			k -= f[pos]
		}
	}
	return pos // 1-based pos+1 is the answer; as a 0-based position, pos
}
