package matching

import (
	"context"
	"fmt"
	"slices"
	"sort"
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
	// rankings are the prefixes of every member's ranking the fair share
	// was made from, kept so that a repair starts from them instead of
	// scanning the event for every viewer it wakes (refreshRankings).
	// After Moved they may end before the members who joined since.
	rankings []ranking
	// index is the index of who ranks whom the last run left, or nil.
	index *rankIndex
}

// Lists are the assignment, by pool index, best first. They are shared:
// callers must not modify them.
func (s *CapState) Lists() [][]Entry { return s.lists }

// CarriedTo is s, the assignment of from, carried onto to, a pool derived
// from from (to.DerivesFrom(from)), its members matched by UserID: what
// Moved along every Apply between them would give. nil when to does not
// derive from from.
func (s *CapState) CarriedTo(from, to *Pool) *CapState {
	if s == nil || !to.DerivesFrom(from) || len(s.share) != from.Len() {
		return nil
	}
	moved := make([]int, from.Len())
	for i := range moved {
		moved[i] = -1
		if j, ok := to.Index(from.profiles[i].UserID); ok {
			moved[i] = j
		}
	}
	return s.Moved(moved, to.Len())
}

func isIdentity(moved []int) bool {
	for i, to := range moved {
		if to != i {
			return false
		}
	}
	return true
}

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
	if isIdentity(moved) {
		// Nobody left (or came back): everyone kept their index. The
		// rankings are shared, never written (refreshRankings copies
		// them), and end before the members who joined, who have none.
		copy(next.share, s.share)
		return &next
	}
	next.rankings = make([]ranking, size)
	next.index = nil // it names members by their old indexes
	for old, r := range s.rankings {
		to := moved[old]
		if to < 0 || !r.ready {
			continue
		}
		entries := make([]Entry, 0, len(r.entries))
		cursor := r.next
		for k, e := range r.entries {
			if moved[e.Other] >= 0 {
				entries = append(entries, Entry{Other: moved[e.Other], Score: e.Score})
			} else if k < r.next {
				cursor-- // it stays on the same candidate
			}
		}
		r.entries, r.next = entries, cursor
		next.rankings[to] = r
	}
	next.freed = nil
	for _, f := range s.freed {
		if to := moved[f]; to >= 0 {
			next.freed = append(next.freed, to)
		}
	}
	total := 0
	for _, list := range s.share {
		total += len(list)
	}
	flat := make([]Entry, 0, total) // packed, as packLists
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
		start := len(flat)
		for _, e := range list {
			remapped := Entry{Other: -1, Score: e.Score}
			if e.Other >= 0 {
				remapped.Other = moved[e.Other]
			}
			flat = append(flat, remapped)
		}
		next.share[to] = flat[start:len(flat):len(flat)]
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
		c, err := p.fairShare(ctx, n, nil)
		if err != nil {
			return nil, false, stats, err
		}
		state.share, stats, state.rankings, state.index = c.lists, c.stats, c.keptRankings(), c.keptIndex()
	} else {
		changes := CapChanges{Freed: prev.freed}
		for i, revision := range p.revision {
			if revision > prev.clock {
				changes.Changed = append(changes.Changed, i)
			}
		}
		var rankings []ranking
		var index *rankIndex
		if prev.rankings != nil && len(prev.rankings) <= p.Len() {
			var touched []int
			if rankings, touched, err = p.refreshRankings(ctx, prev.rankings, changes.Changed, prev.index); err != nil {
				return nil, false, stats, err
			}
			// A changed member's own ranking is scanned anew, which makes
			// it loose then (capper.next).
			index = prev.index.with(touched, p.Len())
		}
		state.share = slices.Clone(prev.share)
		_, c, err := p.repairFairShare(ctx, state.share, changes, n, nil, rankings, index)
		if err != nil {
			return nil, false, stats, err
		}
		stats, state.rankings, state.index, repaired = c.stats, c.keptRankings(), c.keptIndex(), true
	}
	if state.lists, err = p.fillShort(ctx, state.share, n, maxAppearances, state.rankings); err != nil {
		return nil, false, stats, err
	}
	return state, repaired, stats, nil
}

// keptRankings are c's rankings as the next repair starts from them,
// each viewer's cursor where this run left it. Everything above a cursor
// was proposed to and is held, or was let go, or turned the viewer away
// for better ones; such a pair blocks again only when its candidate gains
// room (offerAgain on every changed, freed or dropped member) or its
// viewer loses an entry (catchUp, in capper.lost), so a viewer woken by
// the repair proposes on from its cursor rather than from the top.
func (c *capper) keptRankings() []ranking {
	return c.rankings
}

// refreshRankings makes prev, prefixes of every member's ranking moved
// onto p from the pool before the members in changed were set, prefixes
// of their rankings in p: a changed member's own is dropped (it is
// scanned for again), and every other's loses the changed members it
// holds and gains those that now rank above its bound. prev is not
// modified: it and its entries may be shared with the state it came from;
// it ends early when members joined since (they have none yet).
// index, when not nil, is an index of who ranks whom true of prev but for
// its loose viewers; it spares looking for the changed members in every
// other ranking.
func (p *Pool) refreshRankings(ctx context.Context, prev []ranking, changed []int, index *rankIndex) (rankings []ranking, touched []int, err error) {
	rankings = make([]ranking, p.Len())
	copy(rankings, prev) // members past its end joined since: none yet
	if len(changed) == 0 {
		return rankings, nil, nil
	}
	isChanged := make([]bool, p.Len())
	for _, x := range changed {
		isChanged[x] = true
		rankings[x] = ranking{}
	}
	// Members past prev's end joined since: no ranking in prev names
	// them, so only the others are looked for: for newcomers alone no
	// ranking's entries are read but those they enter.
	held := slices.DeleteFunc(slices.Clone(changed), func(x int) bool { return x >= len(prev) })
	// mayHold[v]: v's ranking may hold a changed member (nil: any may).
	var mayHold []bool
	switch {
	case len(held) == 0:
		mayHold = make([]bool, p.Len())
	case index != nil && len(index.rankedBy) <= p.Len():
		mayHold = make([]bool, p.Len())
		for _, x := range held {
			if x < len(index.rankedBy) {
				for _, v := range index.rankedBy[x] {
					mayHold[v] = true
				}
			}
		}
		for _, v := range index.loose {
			mayHold[v] = true
		}
	}
	isTouched := make([]bool, p.Len())
	pairsScored.Add(int64(len(changed) * p.Len()))
	err = parallel(ctx, p.Len(), func(v int) {
		r := &rankings[v]
		if !r.ready {
			return
		}
		// The cursor (next) stays on the same candidate: entries removed
		// above it move it up, entries inserted above it move it down.
		var entries []Entry // a copy, once one is needed
		next := r.next
		// A ranking that cannot hold a changed member is not read at
		// all: each first read is a cache miss, and at 50,000 members
		// they were a tenth of a newcomer's CPU.
		var held []Entry
		if mayHold == nil || mayHold[v] {
			held = r.entries
		}
		for k, e := range held {
			if entries == nil && isChanged[e.Other] {
				entries = append(make([]Entry, 0, len(r.entries)+len(changed)), r.entries[:k]...)
			}
			if isChanged[e.Other] && k < r.next {
				next--
			}
			if entries != nil && !isChanged[e.Other] {
				entries = append(entries, e)
			}
		}
		for _, x := range changed {
			if !p.Eligible(v, x) {
				continue
			}
			if e := (Entry{Other: x, Score: p.Score(v, x)}); r.complete || p.beatsBound(v, e, r.bound) {
				if entries == nil {
					// Shared with prev, so clipped: the Insert below copies
					// it rather than write past its end. A complete
					// ranking holds everyone its viewer may meet, and a
					// newcomer enters every one it is eligible for, so
					// this copy is written once, not zeroed, copied and
					// moved.
					entries = slices.Clip(r.entries)
				}
				at := sort.Search(len(entries), func(k int) bool { return p.Better(v, e, entries[k]) })
				entries = slices.Insert(entries, at, e)
				if at < next {
					next++
				}
			}
		}
		if entries != nil {
			r.entries, r.next, isTouched[v] = entries, next, true
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("matching: capped assignment stopped: %w", err)
	}
	for v, t := range isTouched {
		if t {
			touched = append(touched, v)
		}
	}
	return rankings, touched, nil
}

// maxLooseShare is how many of an event's members may be loose in a kept
// index (1 in maxLooseShare) before a repair builds it again: each loose
// viewer costs a score in every offerAgain, a build one pass over every
// ranking. (A variable so that tests can keep every index.)
var maxLooseShare = 32

// with is x for a repair of a pool of size members whose rankings changed
// for the members in loose: x with them loose, or nil when x is nil or
// too many are loose (the repair then builds a new one).
func (x *rankIndex) with(loose []int, size int) *rankIndex {
	if x == nil || len(x.rankedBy) > size {
		return nil
	}
	next := &rankIndex{rankedBy: x.rankedBy, isLoose: slices.Clone(x.isLoose), loose: slices.Clone(x.loose)}
	if grow := size - len(x.rankedBy); grow > 0 {
		// Members who joined since: nobody's indexed ranking holds them.
		next.rankedBy = append(x.rankedBy[:len(x.rankedBy):len(x.rankedBy)], make([][]int32, grow)...)
		next.isLoose = append(next.isLoose, make([]bool, grow)...)
	}
	for _, v := range loose {
		if !next.isLoose[v] {
			next.isLoose[v] = true
			next.loose = append(next.loose, int32(v))
		}
	}
	if len(next.loose)*maxLooseShare > size {
		return nil
	}
	return next
}
