package matching

import (
	"context"
	"slices"
)

// ReserveDepth is how many candidates past its top N a list's reserve
// should keep. An entry leaves the reserve when its member leaves the event
// or an edit drops them below the reserve's bound; with this many spares a
// list survives a long run of such changes before it is scored against the
// whole event again, for about three times the memory of the lists alone
// at TOP_N 3.
const ReserveDepth = 8

// Reserve is what an update knows about a list beyond its top N: the next
// candidates, best first, and a bound that no one else beat. A caller that
// keeps each list's reserve between updates (UpdateReserved) lets a list
// that names a departed or edited member be repaired from it, instead of
// being scored against every member again: under a burst of edits and
// departures that is most of the lists an update touches.
//
// A reserve states a fact about the pool it was computed on: every eligible
// member outside the list and its spares scored no better than the bound
// (in Better's order). The fact survives, for pools Apply derives from that
// one, as long as
//   - a member who left is dropped from the spares,
//   - a member whose profile changed is scored again, and dropped once they
//     no longer beat the bound,
//   - a member who joined or changed is offered to every list when claimed,
//     the rule every stored list already relies on,
//
// and it ends when the list's owner changes (every score of theirs moves)
// or the list the caller holds is not the one the reserve extends (its
// commit did not land). UpdateReserved checks all of this itself through
// the pool's revisions; a zero Reserve is no reserve.
type Reserve struct {
	lineage uint64 // of the pool it was computed on; 0 means none
	clock   uint64 // that pool's clock
	top     []Entry
	rest    []Entry
	bound   reserveBound
}

// reserveBound is the best score, with its tie key and UserID for exact
// ties (Better's order), that a member outside a list and its spares may
// have.
type reserveBound struct {
	set    bool // false: no eligible member was left out at all
	score  float32
	tie    uint64
	userID string
}

// Len is how many spare candidates the reserve holds past its list.
func (r Reserve) Len() int { return len(r.rest) }

// Remap moves the reserve onto the pool Apply returned with moved: entries
// of removed members are marked for dropping. Reserves whose pool grew
// without removals keep their indexes and need no remapping.
func (r Reserve) Remap(moved []int) Reserve {
	if r.lineage == 0 {
		return r
	}
	remap := func(list []Entry) []Entry {
		out := make([]Entry, len(list))
		for k, e := range list {
			out[k] = Entry{Other: -1, Score: e.Score}
			if e.Other >= 0 && e.Other < len(moved) {
				out[k].Other = moved[e.Other]
			}
		}
		return out
	}
	r.top, r.rest = remap(r.top), remap(r.rest)
	return r
}

// beatsBound reports whether e ranks above everyone the bound of viewer's
// list stands for.
func (p *Pool) beatsBound(viewer int, e Entry, b reserveBound) bool {
	if !b.set || e.Score != b.score {
		return !b.set || e.Score > b.score
	}
	if tie := tieKey(p.idHash[viewer], p.idHash[e.Other]); tie != b.tie {
		return tie < b.tie
	}
	return p.profiles[e.Other].UserID < b.userID
}

func (p *Pool) boundOf(viewer int, e Entry) reserveBound {
	return reserveBound{set: true, score: e.Score, tie: tieKey(p.idHash[viewer], p.idHash[e.Other]), userID: p.profiles[e.Other].UserID}
}

// repair returns v's list and spares as they stand in this pool, best
// first, when r is v's usable reserve and still holds a full list; false
// means v's list has to be scored against everyone (or validated as usual,
// if r does not apply). A reserve nobody in it changed or left since it
// was made comes back as intact, without a copy: most are, in a batch.
func (p *Pool) repair(v int, list []Entry, r Reserve, n int) (extended []Entry, intact, ok bool) {
	if r.lineage == 0 || r.lineage != p.lineage || p.revision[v] > r.clock || !sameEntries(list, r.top) {
		return nil, false, false
	}
	intact = true
	for _, part := range [2][]Entry{r.top, r.rest} {
		for _, e := range part {
			if e.Other < 0 || e.Other >= p.Len() || p.revision[e.Other] > r.clock {
				intact = false
			}
		}
	}
	if intact {
		return nil, true, true
	}
	out := make([]Entry, 0, len(r.top)+len(r.rest)+1)
	rescored := false
	for _, part := range [2][]Entry{r.top, r.rest} {
		for _, e := range part {
			if e.Other < 0 {
				continue // left the event
			}
			if e.Other >= p.Len() || e.Other == v {
				return nil, false, false // not a reserve of this pool: never trust it
			}
			if p.revision[e.Other] > r.clock {
				if !p.Eligible(v, e.Other) {
					continue
				}
				e.Score = p.Score(v, e.Other)
				pairsScored.Add(1)
				if !p.beatsBound(v, e, r.bound) {
					continue // someone left out may now rank above them
				}
				rescored = true
			}
			out = append(out, e)
		}
	}
	if rescored {
		slices.SortFunc(out, func(a, b Entry) int {
			if p.Better(v, a, b) {
				return -1
			}
			return 1
		})
	}
	if r.bound.set && len(out) < n {
		return nil, false, false // too few spares left to know the top N
	}
	return out, false, true
}

// UpdateReserved is UpdateContext for a caller that keeps reserves between
// updates: reserves[v] is v's reserve from an earlier update (the zero
// Reserve if none) and is replaced, like lists[v], by v's reserve after
// this one; len(reserves) must equal p.Len(). A list whose reserve applies
// is repaired from it; every other list is handled exactly as
// UpdateContext handles it, and lists scored against the whole pool come
// with a reserve of up to depth spares. Once every member who joined or
// changed has been claimed, the lists are the same as UpdateContext's;
// before that, a repaired list may lack a changed member not yet offered,
// as any list kept from an earlier update may. rescored is how many lists
// were scored against the whole pool.
func (p *Pool) UpdateReserved(ctx context.Context, lists [][]Entry, reserves []Reserve, claimed []int, n, depth int) (changed []int, rescored int, err error) {
	if len(reserves) != p.Len() || depth < 0 {
		panic("matching: UpdateReserved needs one reserve per member and a depth of at least 0")
	}
	u, err := p.prepare(ctx, lists, reserves, claimed, n)
	if err != nil {
		return nil, 0, err
	}
	u.depth = depth
	offers, err := p.scoreOffers(ctx, u.freshIDs, u.fresh, u.isClaimed, n+depth+1)
	if err != nil {
		changed, err = stopped(err)
		return changed, 0, err
	}
	changed, err = p.finishUpdate(ctx, lists, reserves, u, offers, n)
	return changed, len(u.freshIDs), err
}

// reserved is finishUpdate for a list repaired from its reserve r: the
// spares take the offers that beat the bound, the list is their first n,
// and the rest (up to u.depth) make the new reserve. An intact reserve that
// no offer enters is kept as it is.
func (p *Pool) reserved(v int, r Reserve, u *update, offers *offerTable, n int) ([]Entry, Reserve) {
	extended, bound := u.extended[v], r.bound
	enters := func(e Entry) bool {
		return p.beatsBound(v, e, bound) && !listsOther(r.top, e.Other) && !listsOther(r.rest, e.Other)
	}
	if u.intact[v] {
		taken := false
		for w := range offers.lists {
			taken = taken || slices.ContainsFunc(offers.offers(w, v), enters)
		}
		if !taken {
			return r.top, r
		}
		extended = append(append(make([]Entry, 0, len(r.top)+len(r.rest)+1), r.top...), r.rest...)
	}
	for w := range offers.lists {
		for _, e := range offers.offers(w, v) {
			if p.beatsBound(v, e, bound) && !listsOther(extended, e.Other) {
				extended = p.insert(v, extended, e)
			}
		}
	}
	return p.newReserve(v, extended, bound, n, u.depth)
}

// newReserve splits an extended list, best first, whose left-out members
// are bounded by bound, into v's top n and a reserve of at most
// depth spares; spares cut off raise the bound.
func (p *Pool) newReserve(v int, extended []Entry, bound reserveBound, n, depth int) ([]Entry, Reserve) {
	if keep := n + depth; len(extended) > keep {
		bound = p.boundOf(v, extended[keep])
		extended = extended[:keep]
	}
	top := slices.Clip(extended[:min(n, len(extended))])
	rest := slices.Clone(extended[len(top):])
	return top, Reserve{lineage: p.lineage, clock: p.clock, top: top, rest: rest, bound: bound}
}
