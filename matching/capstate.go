package matching

import (
	"context"
	"fmt"
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
	// share is the fair share (FairShare), which repair keeps; lists is
	// share with its short lists filled (FillShort).
	share, lists [][]Entry
	// freed are members listed by someone who left since.
	freed []int
}

// Lists are the assignment, by pool index, best first. They are shared:
// callers must not modify them.
func (s *CapState) Lists() [][]Entry { return s.lists }

// Moved carries s onto the pool of size members that Apply returned with
// moved: the fair share's lists follow their owners, an entry naming someone who left gets
// Other -1, and whom the leavers listed is remembered as freed. A nil
// state stays nil.
func (s *CapState) Moved(moved []int, size int) *CapState {
	if s == nil {
		return nil
	}
	next := *s
	next.lists = nil // filled again by Assign
	next.share = make([][]Entry, size)
	if !slices.Contains(moved, -1) {
		// Nobody left: everyone kept their index.
		copy(next.share, s.share)
		return &next
	}
	next.freed = nil
	for _, f := range s.freed {
		if to := moved[f]; to >= 0 {
			next.freed = append(next.freed, to)
		}
	}
	for old, list := range s.share {
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
		next.share[to] = remapped
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
	if maxAppearances < n {
		return nil, false, stats, fmt.Errorf("matching: a cap of %d appearances cannot fill lists of %d", maxAppearances, n)
	}
	if prev == nil || prev.lineage != p.lineage || prev.clock > p.clock || len(prev.share) != p.Len() ||
		prev.n != n || prev.maxAppearances != maxAppearances {
		if state.share, stats, err = p.FairShare(ctx, n, nil); err != nil {
			return nil, false, stats, err
		}
	} else {
		changes := CapChanges{Freed: prev.freed}
		for i, revision := range p.revision {
			if revision > prev.clock {
				changes.Changed = append(changes.Changed, i)
			}
		}
		state.share = slices.Clone(prev.share)
		if _, stats, err = p.RepairFairShare(ctx, state.share, changes, n, nil); err != nil {
			return nil, false, stats, err
		}
		repaired = true
	}
	if state.lists, err = p.FillShort(ctx, state.share, n, maxAppearances); err != nil {
		return nil, false, stats, err
	}
	return state, repaired, stats, nil
}
