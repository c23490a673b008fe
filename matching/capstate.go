package matching

import (
	"context"
	"slices"
)

// CapState is a pool's capped assignment (see CappedLists), kept by a
// caller between updates so that the assignment of a pool Apply derives
// from that one is repaired rather than computed from scratch. The
// assignment is a function of the pool alone, so a state stays right
// whatever became of the lists computed from it (a commit that did not
// land, say): only its pool matters.
type CapState struct {
	lineage, clock    uint64 // of the pool it is the assignment of
	n, maxAppearances int
	lists             [][]Entry
	// freed are members listed by someone who left since.
	freed []int
}

// Lists are the assignment, by pool index, best first. They are shared:
// callers must not modify them.
func (s *CapState) Lists() [][]Entry { return s.lists }

// Moved carries s onto the pool of size members that Apply returned with
// moved: lists follow their owners, an entry naming someone who left gets
// Other -1, and whom the leavers listed is remembered as freed. A nil
// state stays nil.
func (s *CapState) Moved(moved []int, size int) *CapState {
	if s == nil {
		return nil
	}
	next := *s
	next.lists = make([][]Entry, size)
	if !slices.Contains(moved, -1) {
		// Nobody left: everyone kept their index.
		copy(next.lists, s.lists)
		return &next
	}
	next.freed = nil
	for _, f := range s.freed {
		if to := moved[f]; to >= 0 {
			next.freed = append(next.freed, to)
		}
	}
	for old, list := range s.lists {
		to := moved[old]
		if to < 0 {
			for _, e := range list {
				if e.Other >= 0 && moved[e.Other] >= 0 {
					next.freed = append(next.freed, moved[e.Other])
				}
			}
			continue
		}
		if len(list) == 0 {
			continue
		}
		remapped := make([]Entry, len(list))
		for k, e := range list {
			remapped[k] = Entry{Other: -1, Score: e.Score}
			if e.Other >= 0 {
				remapped[k].Other = moved[e.Other]
			}
		}
		next.lists[to] = remapped
	}
	return &next
}

// Assign returns p's capped assignment: repaired from prev when prev is
// the assignment of a pool p was derived from (by Apply, with prev carried
// along by Moved) for the same n and maxAppearances, every member set
// since then taken as changed; computed from scratch otherwise (prev nil,
// or from another lineage). repaired says which.
func (p *Pool) Assign(ctx context.Context, prev *CapState, n, maxAppearances int) (state *CapState, repaired bool, stats CapStats, err error) {
	state = &CapState{lineage: p.lineage, clock: p.clock, n: n, maxAppearances: maxAppearances}
	if prev == nil || prev.lineage != p.lineage || prev.clock > p.clock || len(prev.lists) != p.Len() ||
		prev.n != n || prev.maxAppearances != maxAppearances {
		state.lists, stats, err = p.CappedLists(ctx, n, maxAppearances, nil)
		if err != nil {
			return nil, false, stats, err
		}
		return state, false, stats, nil
	}
	changes := CapChanges{Freed: prev.freed}
	for i, revision := range p.revision {
		if revision > prev.clock {
			changes.Changed = append(changes.Changed, i)
		}
	}
	state.lists = slices.Clone(prev.lists)
	if _, stats, err = p.RepairCapped(ctx, state.lists, changes, n, maxAppearances, nil); err != nil {
		return nil, false, stats, err
	}
	return state, true, stats, nil
}
