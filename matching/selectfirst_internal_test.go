package matching

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestSelectFirst checks quickselect against a sort, on slices with and
// without repeated values, sorted, reversed and random, for every k.
func TestSelectFirst(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 300 {
		n := 1 + rng.IntN(70)
		xs := make([]int, n)
		for i := range xs {
			switch round % 4 {
			case 0:
				xs[i] = rng.IntN(1000)
			case 1:
				xs[i] = rng.IntN(4) // many repeats
			case 2:
				xs[i] = i
			default:
				xs[i] = n - i
			}
		}
		want := slices.Sorted(slices.Values(xs))
		for k := 1; k <= n; k++ {
			got := slices.Clone(xs)
			selectFirst(got, k, cmp.Compare[int])
			first := slices.Sorted(slices.Values(got[:k]))
			if !slices.Equal(first, want[:k]) {
				t.Fatalf("selectFirst(%v, %d) put %v first, want %v", xs, k, got[:k], want[:k])
			}
		}
	}
}

// TestBestBetterIsSortBetterPrefix: the deep scans' selection keeps the
// same entries, in the same order, as sorting them all.
func TestBestBetterIsSortBetterPrefix(t *testing.T) {
	t.Parallel()
	p := NewPool(demodata.Generate(3, 400))
	for v := range 20 {
		var all []Entry
		for c := range p.Len() {
			if p.Eligible(v, c) {
				all = append(all, Entry{Other: c, Score: p.Score(v, c)})
			}
		}
		want := p.sortBetter(v, slices.Clone(all))
		for _, keep := range []int{1, 5, 37, len(all) - 1, len(all), len(all) + 3} {
			got := p.bestBetter(v, slices.Clone(all), keep)
			if !slices.Equal(got, want[:min(keep, len(want))]) {
				t.Fatalf("viewer %d, keep %d: bestBetter differs from sortBetter's first %d", v, keep, keep)
			}
		}
	}
}

// TestPackedListsTakeAppendsApart: packed lists share one array, so each
// must end where its capacity does, or an append to one (as the capper
// and the fill make to lists they own) would overwrite the next.
func TestPackedListsTakeAppendsApart(t *testing.T) {
	t.Parallel()
	lists := [][]Entry{{{Other: 1, Score: 0.5}}, nil, {{Other: 0, Score: 0.5}, {Other: 3, Score: 0.25}}, {{Other: 2, Score: 0.25}}}
	packed := packLists(lists)
	for v := range lists {
		if !slices.Equal(packed[v], lists[v]) {
			t.Fatalf("packed list %d is %v, want %v", v, packed[v], lists[v])
		}
	}
	_ = append(packed[0], Entry{Other: 9, Score: 0.1})
	_ = append(packed[2], Entry{Other: 9, Score: 0.1})
	for v := range lists {
		if !slices.Equal(packed[v], lists[v]) {
			t.Fatalf("after appends to others, packed list %d is %v, want %v", v, packed[v], lists[v])
		}
	}
}
