package matching

import (
	"context"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestRepairLeavesThePreviousRankingsIntact: a repair starts from the
// previous assignment's rankings, whose entries it shares, so newcomers
// entering them must go into copies. Each state is compared, after the
// repairs that followed it, with a deep copy taken when it was made.
func TestRepairLeavesThePreviousRankingsIntact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const size, newcomers = 1500, 12
	profiles := demodata.Generate(21, size+newcomers)
	pool := NewPool(profiles[:size])
	state, _, _, err := pool.Assign(ctx, nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	type kept struct {
		state   *CapState
		entries [][]Entry
	}
	snapshot := func(s *CapState) kept {
		k := kept{state: s, entries: make([][]Entry, len(s.rankings))}
		for v, r := range s.rankings {
			k.entries[v] = slices.Clone(r.entries)
		}
		return k
	}
	states := []kept{snapshot(state)}
	spare := 0 // rankings whose entries have room past their end
	for _, r := range state.rankings {
		if cap(r.entries) > len(r.entries) {
			spare++
		}
	}
	if spare == 0 {
		t.Fatal("no ranking has room past its end: an Insert in place would go unnoticed")
	}
	for k := range newcomers {
		grown, moved, err := pool.Apply(ctx, profiles[size+k:size+k+1], nil)
		if err != nil {
			t.Fatal(err)
		}
		next, repaired, _, err := grown.Assign(ctx, state.Moved(moved, grown.Len()), 3, 6)
		if err != nil || !repaired {
			t.Fatalf("newcomer %d: repaired %v, err %v", k, repaired, err)
		}
		pool, state = grown, next
		states = append(states, snapshot(state))
	}
	for n, k := range states {
		for v, r := range k.state.rankings {
			if !slices.Equal(r.entries, k.entries[v]) {
				t.Fatalf("state %d: viewer %d's ranking changed after later repairs", n, v)
			}
		}
	}
}
