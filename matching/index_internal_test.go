package matching

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestBuildIndexListsEveryRankingInViewerOrder: the index built on every
// core names, for each candidate, exactly the viewers whose ready ranking
// holds it, in ascending order, as one pass over the rankings would; it
// leaves the viewers whose ranking is not ready loose. The event is large
// enough to be split between cores (splitRange), where the machine has
// more than one.
func TestBuildIndexListsEveryRankingInViewerOrder(t *testing.T) {
	t.Parallel()
	const size = 5000
	pool := NewPool(demodata.Generate(3, size))
	rng := rand.New(rand.NewPCG(5, 8))
	c := &capper{p: pool, rankings: make([]ranking, size)}
	want := make([][]int32, size)
	for v := range size {
		if rng.IntN(50) == 0 {
			continue // not ready: loose
		}
		r := ranking{ready: true}
		for range rng.IntN(40) {
			other := rng.IntN(size)
			if other == v || slices.ContainsFunc(r.entries, func(e Entry) bool { return e.Other == other }) {
				continue
			}
			r.entries = append(r.entries, Entry{Other: other})
			want[other] = append(want[other], int32(v))
		}
		c.rankings[v] = r
	}
	if len(splitRange(size)) < 2 {
		t.Log("one core here: the index is built in one part")
	}
	c.buildIndex()
	if c.index != indexBuilt {
		t.Fatalf("index state %d, want built", c.index)
	}
	for cand := range size {
		if !slices.Equal(c.rankedBy[cand], want[cand]) {
			t.Fatalf("rankedBy[%d] = %v, want %v", cand, c.rankedBy[cand], want[cand])
		}
	}
	for v := range size {
		if c.isLoose[v] == c.rankings[v].ready {
			t.Fatalf("viewer %d: loose %v with a ranking ready %v", v, c.isLoose[v], c.rankings[v].ready)
		}
	}
	if len(c.loose) == 0 {
		t.Fatal("no viewer is loose: the test proves nothing about them")
	}
}
