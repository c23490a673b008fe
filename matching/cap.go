package matching

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// A capped assignment gives every member a list of at most n others, in
// two tiers.
//
// The fair share (FairShare) lets nobody appear in more than n lists, n
// being also the length of a list, so that the places of all lists, n per
// member, can be spread evenly; and no pair would rather be listed than
// what they have: there is no blocking pair, a viewer A and an eligible
// candidate B not in A's list where
//
//   - A would take B: A's list is short, or B ranks above A's worst entry
//     (A's own order, Better), and
//   - B would take A: B is in fewer than n lists, or B ranks A above one of
//     the viewers whose lists B is in. B ranks viewers the way B's own list
//     would rank them (Better from B's side): by the pair's score, which is
//     symmetric, ties broken by the pair's tieKey.
//
// Because both sides rank a pair by the same score, and both sides'
// tie-breaks are restrictions of one strict order over all pairs (see
// pairBefore), the fair share is unique: it is what taking pairs best
// first, while both sides have room, gives. So a repaired fair share
// equals one computed from scratch, whatever order the changes came in.
//
// The fill (FillShort, capfill.go) then tops up the lists the fair share
// leaves short (every eligible candidate they lack already holds n better
// viewers: members few may meet, under rules or exclusions), best pair
// first, from candidates in fewer than maxAppearances lists. After it a
// list is short only when every eligible member it lacks is in
// maxAppearances lists. The fill is a function of the fair share, so the
// whole assignment is unique too.
//
// The fair share is computed by many-to-many deferred acceptance in the
// global pair order: viewers propose down their ranking, each proposal is
// taken in order of the pair's rank, and a full candidate lets its worst
// holder go when a better one proposes, who then proposes on. Repair runs
// the same process from the previous fair share: it drops what changed,
// and a candidate that gains room while full is offered again to every
// viewer who would now take it, since it may have turned them away before.
// (The capper below takes its cap as a parameter; FairShare passes n.)

// pairBefore orders pairs (viewer a.v, candidate a.c) over the whole
// event: higher score first, then the pair's tieKey (symmetric), then by
// the viewer's UserID, then by the candidate's. Restricted to one viewer it
// is Better; restricted to one candidate it is Better from the candidate's
// side (on equal scores and keys, the viewer first in UserID order). One
// order that both sides' preferences agree with is what makes the capped
// assignment unique; should Better's tie-break change, this must change
// with it.
func (p *Pool) pairBefore(a, b capPair) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	if ka, kb := tieKey(p.idHash[a.v], p.idHash[a.c]), tieKey(p.idHash[b.v], p.idHash[b.c]); ka != kb {
		return ka < kb
	}
	if a.v != b.v {
		return p.userIDRank[a.v] < p.userIDRank[b.v]
	}
	return p.userIDRank[a.c] < p.userIDRank[b.c]
}

// capPair is a viewer, a candidate and the pair's score; cursor marks the
// viewer's own next proposal, of which the heap holds at most one per
// viewer.
type capPair struct {
	v, c   int32
	score  float32
	cursor bool
}

// capRankingDepth is how many candidates a viewer's ranking is scanned
// for the first time it has no reserve to start from: a viewer turned away
// by all of them scans the event again below the last one, for four times
// as many each time (up to capRankingMaxDepth), so that a viewer far down
// a crowded ranking costs a few scans rather than one per few candidates.
// A scan costs about the same whatever its depth (every pair is scored);
// what a deeper one adds is memory, kept with the ranking. (Variables only
// so that tests can make rankings shallow, to run every path past the
// first scan on small events; they change no result.)
var (
	capRankingDepth    = 24
	capRankingMaxDepth = 4096
)

// ranking is a prefix of one viewer's candidates, best first (Better),
// and where the rest begins: every eligible candidate outside entries
// ranks no better than bound (reserve semantics); complete means there is
// no rest. next is the viewer's next proposal. A scan below the bound
// appends to entries, so that a ranking stays a prefix from the top: the
// index of who ranks whom (see offerAgain) and the next repair (CapState)
// rely on it. entries may be shared with a CapState and are never written
// in place.
type ranking struct {
	ready    bool
	depth    int // how many the last scan kept
	entries  []Entry
	bound    reserveBound
	complete bool
	next     int
}

// CapChanges tells RepairFairShare what changed since the fair share it
// repairs was made.
type CapChanges struct {
	// Changed are members who joined, whose profile changed, or whose
	// eligibility with anyone changed: every pair of theirs is decided
	// again.
	Changed []int
	// Freed are members who were in the list of a member who left, so
	// they may have room they did not have.
	Freed []int
}

// CapStats says how much work an assignment took.
type CapStats struct {
	// Proposals is how many pairs were considered; Scans how many times
	// the event was scanned for one viewer's ranking or for the viewers of
	// a candidate who gained room (the pass that ranks everyone at once,
	// when CappedLists gets no reserves, is not counted).
	Proposals, Scans int
}

// CappedLists computes the capped assignment of the whole pool from
// scratch: the fair share (FairShare), then its short lists filled up to
// maxAppearances (FillShort). Lists come back best first (Better).
func (p *Pool) CappedLists(ctx context.Context, n, maxAppearances int, reserves []Reserve) ([][]Entry, CapStats, error) {
	if maxAppearances < n {
		return nil, CapStats{}, fmt.Errorf("matching: a cap of %d appearances cannot fill lists of %d", maxAppearances, n)
	}
	share, stats, err := p.FairShare(ctx, n, reserves)
	if err != nil {
		return nil, stats, err
	}
	lists, err := p.FillShort(ctx, share, n, maxAppearances)
	return lists, stats, err
}

// FairShare computes the pool's assignment with nobody in more than n
// lists (the rule above with maxAppearances = n) from scratch; lists come
// back best first (Better).
// reserves, if not nil, hold one Reserve per member, current for this pool
// (as UpdateReserved leaves them once every member who joined or changed
// has been claimed), and spare scanning the event for every viewer; a
// zero Reserve, or one of another pool lineage or naming a stale score, is
// scanned for instead.
func (p *Pool) FairShare(ctx context.Context, n int, reserves []Reserve) ([][]Entry, CapStats, error) {
	c, err := p.fairShare(ctx, n, reserves)
	if err != nil {
		return nil, CapStats{}, err
	}
	return c.lists, c.stats, nil
}

// fairShare is FairShare, returning the capper it ran (for its rankings).
func (p *Pool) fairShare(ctx context.Context, n int, reserves []Reserve) (*capper, error) {
	c, err := p.newCapper(n, n, reserves, nil)
	if err != nil {
		return nil, err
	}
	c.index = indexUnbuilt // every list starts empty
	if reserves == nil {
		if err := c.rankAll(ctx); err != nil {
			return nil, err
		}
	}
	for v := range p.Len() {
		c.wake(v)
	}
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	for v, list := range c.lists {
		if len(list) == 0 {
			c.lists[v] = nil
			continue
		}
		c.sort(v)
	}
	c.lists = packLists(c.lists)
	return c, nil
}

// packLists copies lists into one backing array, each list's capacity its
// length, so that appending to one never writes into the next. Every
// repair passes over all the lists of the fair share it starts from
// (repairFairShare, indexHolders, FillShort), and at 50,000 members one
// small allocation per member made each of those passes a cache miss per
// member: packed, they read memory in order.
func packLists(lists [][]Entry) [][]Entry {
	total := 0
	for _, list := range lists {
		total += len(list)
	}
	flat := make([]Entry, 0, total)
	packed := make([][]Entry, len(lists))
	for v, list := range lists {
		if len(list) > 0 {
			start := len(flat)
			flat = append(flat, list...)
			packed[v] = flat[start:len(flat):len(flat)]
		}
	}
	return packed
}

// RepairFairShare makes lists, the fair share (FairShare) of the pool
// before changes (moved onto this pool by the caller: an entry naming a
// member who left has Other -1), the fair share of this pool, in place,
// and returns the viewers whose lists it rewrote (ascending). A list is
// rewritten when its members or their order changed, or when it names a
// changed member (whose rows show their profile). Lists that were not a
// fair share with the same n must be computed with FairShare instead:
// repair trusts every pair that did not change. On error (ctx done) lists
// are untouched.
func (p *Pool) RepairFairShare(ctx context.Context, lists [][]Entry, changes CapChanges, n int, reserves []Reserve) ([]int, CapStats, error) {
	rewritten, c, err := p.repairFairShare(ctx, lists, changes, n, reserves, nil, nil)
	if err != nil {
		return nil, CapStats{}, err
	}
	return rewritten, c.stats, nil
}

// repairFairShare is RepairFairShare starting from rankings, when not nil:
// one per member, each a prefix of that member's ranking in this pool or
// not ready (refreshRankings makes them so), and from index, when not nil:
// an index of who ranks whom that is true of every ranking it does not
// hold loose. It returns the capper it ran.
func (p *Pool) repairFairShare(ctx context.Context, lists [][]Entry, changes CapChanges, n int, reserves []Reserve, rankings []ranking, index *rankIndex) ([]int, *capper, error) {
	if len(lists) != p.Len() {
		panic(fmt.Sprintf("matching: RepairFairShare got %d lists for a pool of %d", len(lists), p.Len()))
	}
	if rankings != nil && len(rankings) != p.Len() {
		panic(fmt.Sprintf("matching: repairFairShare got %d rankings for a pool of %d", len(rankings), p.Len()))
	}
	c, err := p.newCapper(n, n, reserves, rankings)
	if err != nil {
		return nil, nil, err
	}
	if rankings != nil {
		c.index = indexUnbuilt
		c.keptCursors, c.keptNext = true, make([]int, p.Len())
		for v, r := range rankings {
			c.keptNext[v] = min(r.next, len(r.entries))
		}
		if index != nil {
			c.rankedBy, c.isLoose, c.loose = index.rankedBy, slices.Clone(index.isLoose), slices.Clone(index.loose)
			c.index = indexBuilt
		}
	}
	size := p.Len()
	changed := make([]bool, size)
	for _, m := range changes.Changed {
		changed[m] = true
	}
	suspectCandidate := make([]bool, size)
	for _, m := range changes.Freed {
		suspectCandidate[m] = true
	}
	var suspectViewers []int
	// Keep every pair of two unchanged members (its score and both sides'
	// orders are what they were); the rest go, and both sides of each are
	// looked at again. Lists that keep everything are shared, not copied.
	for v, list := range lists {
		if changed[v] {
			suspectViewers = append(suspectViewers, v)
			suspectCandidate[v] = true
			for _, e := range list {
				if e.Other >= 0 {
					suspectCandidate[e.Other] = true
				}
			}
			c.owned[v] = true
			continue
		}
		kept := list
		for k, e := range list {
			if e.Other >= 0 && !changed[e.Other] && p.Eligible(v, e.Other) {
				if len(kept) < len(list) {
					kept = append(kept, e)
				}
				continue
			}
			if len(kept) == len(list) {
				kept = append(make([]Entry, 0, n+1), list[:k]...)
				c.owned[v] = true
				suspectViewers = append(suspectViewers, v)
			}
			if e.Other >= 0 {
				suspectCandidate[e.Other] = true
			}
		}
		c.lists[v] = kept
	}
	c.indexHolders()
	for _, v := range suspectViewers {
		c.lost(v)
	}
	for cand := range size {
		if suspectCandidate[cand] {
			if err := c.offerAgain(ctx, cand); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := c.run(ctx); err != nil {
		return nil, nil, err
	}
	var rewritten []int
	for v, list := range c.lists {
		if !c.owned[v] {
			continue // every entry kept, none changed
		}
		c.sort(v)
		if !sameEntries(list, lists[v]) || changed[v] || slices.ContainsFunc(list, func(e Entry) bool { return changed[e.Other] }) {
			rewritten = append(rewritten, v)
		}
	}
	for _, v := range rewritten {
		lists[v] = c.lists[v]
	}
	return rewritten, c, nil
}

// capper is one run of deferred acceptance.
type capper struct {
	p              *Pool
	n              int
	maxAppearances int
	lists          [][]Entry // viewer -> candidates held, in no order
	holders        [][]Entry // candidate -> viewers (Other) holding it
	// holderFloor[cand] is the lowest score among cand's holders when
	// cand is full, -Inf while it has room (setFloor).
	holderFloor []float32
	rankings    []ranking
	reserves    []Reserve
	// owned[v]: lists[v] is the capper's own copy (others may be the
	// caller's, which are never written to).
	owned  []bool
	queued []bool // the viewer's cursor proposal is in the heap
	// keptCursors: the rankings came with cursors from an earlier run
	// (a repair from a CapState), which were at keptNext.
	keptCursors bool
	keptNext    []int
	heap        []capPair
	stats       CapStats
	// The index of who ranks whom (buildIndex): rankedBy[cand] are the
	// viewers whose indexed ranking holds cand; loose are the viewers
	// whose ranking the index does not show.
	index    int
	rankedBy [][]int32
	isLoose  []bool
	loose    []int32
	// err is why a scan inside a step stopped (ctx done); run returns it.
	err error
}

// newCapper starts a run from rankings, or from none ready when rankings
// is nil.
func (p *Pool) newCapper(n, maxAppearances int, reserves []Reserve, rankings []ranking) (*capper, error) {
	if n < 0 || maxAppearances < n {
		return nil, fmt.Errorf("matching: a cap of %d appearances cannot fill lists of %d", maxAppearances, n)
	}
	if reserves != nil && len(reserves) != p.Len() {
		panic(fmt.Sprintf("matching: got %d reserves for a pool of %d", len(reserves), p.Len()))
	}
	size := p.Len()
	if rankings == nil {
		rankings = make([]ranking, size)
	}
	noFloor := make([]float32, size) // nobody holds anyone yet
	for cand := range noFloor {
		noFloor[cand] = float32(math.Inf(-1))
	}
	return &capper{
		p: p, n: n, maxAppearances: maxAppearances,
		lists:       make([][]Entry, size),
		holders:     make([][]Entry, size),
		holderFloor: noFloor,
		rankings:    rankings,
		reserves:    reserves,
		queued:      make([]bool, size),
		owned:       make([]bool, size),
		index:       indexNotWorthIt, // see indexUnbuilt
	}, nil
}

// rankAllExtraDepth is how many candidates past a full update's reserves
// (n + ReserveDepth) rankAll keeps per viewer. The pass pays for every
// place it keeps on every pair, while a viewer turned away by all of them
// costs one scan of the event; with nobody in more than n lists of a fair
// share, many viewers are turned away by the hubs at the top of their
// rankings. On 10,000 demodata members with TOP_N 3 (go test -run '^$'
// -bench FullMatch/cap -benchtime 3x -count 2 ./matching/, quiet 2-core
// machine): no extra depth 4,524 scans, 3.64-3.65 s; 24 extra 1,463
// scans, 2.81-3.04 s; 64 extra 628 scans, 4.16-5.30 s. The offer table
// counts in int8, so the whole depth must stay below 127. (A variable for
// tests, as capRankingDepth.)
var rankAllExtraDepth = 24

// rankAll gives every viewer a ranking prefix, scoring each pair once, of
// n + ReserveDepth + rankAllExtraDepth candidates.
func (c *capper) rankAll(ctx context.Context) error {
	p := c.p
	depth := c.n + ReserveDepth + rankAllExtraDepth
	size := p.Len()
	all := make([]int, size)
	fresh := make([]bool, size)
	for v := range all {
		all[v], fresh[v] = v, true
	}
	table, err := p.scoreOffers(ctx, all, fresh, make([]bool, size), depth+1)
	if err != nil {
		return fmt.Errorf("matching: capped assignment stopped: %w", err)
	}
	return parallel(ctx, size, func(v int) {
		c.rankings[v] = cut(p, v, table.best(p, v, nil, depth+1), depth)
	})
}

// cut makes a ranking of the best-first candidates found, keeping depth of
// them: the first one left out bounds the rest.
func cut(p *Pool, viewer int, found []Entry, depth int) ranking {
	if len(found) <= depth {
		return ranking{ready: true, depth: depth, entries: found, complete: true}
	}
	return ranking{ready: true, depth: depth, entries: found[:depth], bound: p.boundOf(viewer, found[depth])}
}

// next returns v's next candidate to propose to, or false when v has
// proposed to everyone eligible.
func (c *capper) next(v int) (Entry, bool) {
	r := &c.rankings[v]
	if !r.ready {
		*r = c.firstRanking(v)
		c.markLoose(v)
	}
	for r.next >= len(r.entries) {
		if r.complete {
			return Entry{}, false
		}
		more := c.scanBelow(v, r.bound, true, min(4*max(r.depth, capRankingDepth/4), capRankingMaxDepth))
		r.entries = append(r.entries[:len(r.entries):len(r.entries)], more.entries...)
		r.depth, r.bound, r.complete = more.depth, more.bound, more.complete
		c.markLoose(v)
	}
	return r.entries[r.next], true
}

// firstRanking is v's reserve when there is a usable one, else a scan.
func (c *capper) firstRanking(v int) ranking {
	if c.reserves != nil {
		r := c.reserves[v]
		if r.lineage == c.p.lineage && r.lineage != 0 {
			entries := make([]Entry, 0, len(r.top)+len(r.rest))
			pairsScored.Add(int64(len(r.top) + len(r.rest)))
			usable := true
			for _, e := range slices.Concat(r.top, r.rest) {
				if e.Other < 0 || e.Other >= c.p.Len() || e.Score != c.p.Score(v, e.Other) || !c.p.Eligible(v, e.Other) {
					usable = false
					break
				}
				entries = append(entries, e)
			}
			if usable {
				return ranking{ready: true, depth: len(entries), entries: entries, bound: r.bound, complete: !r.bound.set}
			}
		}
	}
	return c.scanBelow(v, reserveBound{}, false, capRankingDepth)
}

// scanBelow scores v against the whole pool for its best candidates that
// rank no better than bound (all of them if below is false), keeping
// depth of them, on every
// core: this is the cost of a viewer turned away by its whole ranking so
// far, and of a repair's changed members.
func (c *capper) scanBelow(v int, bound reserveBound, below bool, depth int) ranking {
	c.stats.Scans++
	pairsScored.Add(int64(c.p.Len() - 1))
	p := c.p
	keep := depth + 1
	parts := splitRange(p.Len())
	found := make([][]Entry, len(parts))
	var wg sync.WaitGroup
	for w, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			top := make([]Entry, 0, min(2*keep, part[1]-part[0])+1)
			floor := float32(math.Inf(-1))
			scores := make([]float32, min(scanChunk, part[1]-part[0]))
			for from := part[0]; from < part[1]; from += scanChunk {
				run := scores[:min(scanChunk, part[1]-from)]
				p.ScoreRun(v, from, run)
				for k, score := range run {
					e := Entry{Other: from + k, Score: score}
					// Most of an event scores below what is kept
					// already (floor, or a full top's worst): it is
					// turned away before any rule is looked up.
					if e.Score < floor || (len(top) == keep && keep <= insertionKeepLimit && e.Score < top[keep-1].Score) {
						continue
					}
					if !p.Eligible(v, e.Other) || (below && p.beatsBound(v, e, bound)) {
						continue
					}
					if keep > insertionKeepLimit {
						// Kept unsorted (sorted below), but cut back
						// to the best keep whenever it holds twice
						// that: from then on a candidate scoring below
						// the keep-th best so far (floor) cannot be
						// kept.
						if top = append(top, e); len(top) == 2*keep {
							top = p.selectBetter(v, top, keep)
							floor = lowestScore(top)
						}
						continue
					}
					if len(top) == keep {
						if worst := top[keep-1]; e.Score < worst.Score || !p.Better(v, e, worst) {
							continue
						}
						top = top[:keep-1]
					}
					top = p.insert(v, top, e)
				}
			}
			found[w] = top
		}()
	}
	wg.Wait()
	var merged []Entry
	if keep > insertionKeepLimit {
		merged = p.bestBetter(v, slices.Concat(found...), keep)
	} else {
		merged = found[0]
		for _, more := range found[1:] {
			for _, e := range more {
				merged = p.insert(v, merged, e)
			}
		}
	}
	return cut(p, v, merged[:min(len(merged), keep)], depth)
}

// scanChunk is how many candidates a scan scores per ScoreRun: few
// enough that their scores stay in the core's cache until read.
const scanChunk = 1024

// sortBetter sorts entries into v's order (Better), computing each
// entry's tie key once rather than in every comparison: scores tie often
// (few tags make few distinct scores), and a tie key costs two hashes.
func (p *Pool) sortBetter(v int, entries []Entry) []Entry {
	keys := p.betterKeys(v, entries)
	slices.SortFunc(keys, compareBetter)
	return writeBack(entries, keys)
}

// bestBetter is the first keep of sortBetter(v, entries): selected, then
// only they are sorted. A deep scan keeps a few thousand of an event's
// candidates, and sorting all of them (up to 50,000 at 50,000 members)
// was most of the single-threaded part of a capped full match at that
// size.
func (p *Pool) bestBetter(v int, entries []Entry, keep int) []Entry {
	if len(entries) <= keep {
		return p.sortBetter(v, entries)
	}
	keys := p.firstKeys(v, entries, keep)
	slices.SortFunc(keys, compareBetter)
	return writeBack(entries[:keep], keys)
}

// selectBetter is the first keep of sortBetter(v, entries), in no order;
// entries holds at least keep.
func (p *Pool) selectBetter(v int, entries []Entry, keep int) []Entry {
	return writeBack(entries[:keep], p.firstKeys(v, entries, keep))
}

// firstKeys are the keys of the first keep of entries in Better order, in
// no order.
func (p *Pool) firstKeys(v int, entries []Entry, keep int) []betterKey {
	keys := p.betterKeys(v, entries)
	selectFirst(keys, keep, compareBetter)
	return keys[:keep]
}

// lowestScore is the lowest score of entries, which is not empty.
func lowestScore(entries []Entry) float32 {
	lowest := entries[0].Score
	for _, e := range entries[1:] {
		lowest = min(lowest, e.Score)
	}
	return lowest
}

// betterKey is an entry with what Better compares, computed once.
type betterKey struct {
	score float32
	rank  int32 // the UserID's rank, the last tie-break
	tie   uint64
	other int
}

func (p *Pool) betterKeys(v int, entries []Entry) []betterKey {
	keys := make([]betterKey, len(entries))
	for k, e := range entries {
		keys[k] = betterKey{score: e.Score, rank: p.userIDRank[e.Other], tie: tieKey(p.idHash[v], p.idHash[e.Other]), other: e.Other}
	}
	return keys
}

// compareBetter orders keys as Better orders entries: better first.
func compareBetter(a, b betterKey) int {
	switch {
	case a.score != b.score:
		return cmp.Compare(b.score, a.score)
	case a.tie != b.tie:
		return cmp.Compare(a.tie, b.tie)
	default:
		return cmp.Compare(a.rank, b.rank)
	}
}

func writeBack(entries []Entry, keys []betterKey) []Entry {
	for k, key := range keys {
		entries[k] = Entry{Other: key.other, Score: key.score}
	}
	return entries
}

// selectFirst reorders xs so that its first k are the k first in order
// compare (a strict order: no two distinct elements compare equal), in no
// particular order among themselves: Hoare's quickselect, with the median
// of three as the pivot, in linear expected time.
func selectFirst[T any](xs []T, k int, compare func(a, b T) int) {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if compare(xs[mid], xs[lo]) < 0 {
			xs[mid], xs[lo] = xs[lo], xs[mid]
		}
		if compare(xs[hi], xs[lo]) < 0 {
			xs[hi], xs[lo] = xs[lo], xs[hi]
		}
		if compare(xs[hi], xs[mid]) < 0 {
			xs[hi], xs[mid] = xs[mid], xs[hi]
		}
		pivot := xs[mid]
		i, j := lo, hi
		for i <= j {
			for compare(xs[i], pivot) < 0 {
				i++
			}
			for compare(pivot, xs[j]) < 0 {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		// xs[lo..j] come before the pivot or are it, xs[i..hi] after it or
		// it, and what lies between is the pivot.
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// insertionKeepLimit is the deepest scan that keeps its best candidates
// by insertion into a sorted slice; a deeper one keeps every candidate and
// sorts them, which is cheaper than inserting into thousands. (A variable
// for tests, as capRankingDepth.)
var insertionKeepLimit = 256

// splitRange cuts [0, size) into one part per core, or one part when
// size is too small for goroutines to pay.
func splitRange(size int) [][2]int {
	workers := runtime.GOMAXPROCS(0)
	if size < 2048 || workers < 2 {
		return [][2]int{{0, size}}
	}
	parts := make([][2]int, workers)
	for w := range parts {
		parts[w] = [2]int{w * size / workers, (w + 1) * size / workers}
	}
	return parts
}

// wake queues v's next proposal if v has room and none is queued.
func (c *capper) wake(v int) {
	if c.queued[v] || len(c.lists[v]) >= c.n {
		return
	}
	e, ok := c.next(v)
	if !ok {
		return
	}
	c.queued[v] = true
	c.push(capPair{v: int32(v), c: int32(e.Other), score: e.Score, cursor: true})
}

// lost is wake for a viewer that lost an entry it did not let go itself.
// In a run that started from kept cursors (see keptRankings) it first
// queues the pairs of v's that block among those its cursor passed in an
// earlier run: v may have let some of them go, back then, for the one it
// has just lost. (Pairs passed in this run are the run's own business, as
// in a run from scratch.)
func (c *capper) lost(v int) {
	if c.keptCursors {
		c.catchUp(v)
	}
	c.wake(v)
}

func (c *capper) catchUp(v int) {
	r := &c.rankings[v]
	for _, e := range r.entries[:c.keptNext[v]] {
		if c.blocks(v, e.Other, e.Score) {
			c.push(capPair{v: int32(v), c: int32(e.Other), score: e.Score})
		}
	}
}

// offerAgain queues every pair of cand's that blocks: run when cand may
// take viewers it turned away before. A viewer with room proposes on down
// its ranking by itself (wake), so the pairs offerAgain must find are
// those the viewer's cursor has passed (while short) or that rank above
// its worst entry (while full): pairs of candidates in its ranking, since
// every entry a viewer holds comes from its ranking or ranks above an
// entry that does. So once the index of who ranks whom is built, cand is
// offered only to the viewers whose indexed ranking holds it, and to the
// loose ones whose ranking the index does not show, instead of being
// scored against the whole event.
func (c *capper) offerAgain(ctx context.Context, cand int) error {
	if c.index == indexUnbuilt {
		c.buildIndex()
	}
	if c.index == indexBuilt {
		for _, v := range c.rankedBy[cand] {
			if !c.isLoose[v] {
				c.offer(int(v), cand)
			}
		}
		for _, v := range c.loose {
			c.offer(int(v), cand)
		}
		if checkIndexedOffers {
			c.checkIndexedOffers(cand)
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("matching: capped assignment stopped: %w", err)
	}
	c.stats.Scans++
	p := c.p
	pairsScored.Add(int64(p.Len() - 1))
	// Score is symmetric bit for bit, so cand's row is everyone's score
	// of cand.
	scores := make([]float32, p.Len())
	var wg sync.WaitGroup
	for _, part := range splitRange(p.Len()) {
		wg.Go(func() { p.ScoreRun(cand, part[0], scores[part[0]:part[1]]) })
	}
	wg.Wait()
	for v, s := range scores {
		if p.Eligible(v, cand) && c.blocks(v, cand, s) {
			c.push(capPair{v: int32(v), c: int32(cand), score: s})
		}
	}
	return nil
}

// offer queues v and cand if they block.
func (c *capper) offer(v, cand int) {
	if !c.p.Eligible(v, cand) {
		return
	}
	pairsScored.Add(1)
	if s := c.p.Score(v, cand); c.blocks(v, cand, s) {
		c.push(capPair{v: int32(v), c: int32(cand), score: s})
	}
}

// The index of who ranks whom is built at a run's first offerAgain, from
// the rankings then ready; a viewer whose ranking is not ready then, or
// changes later (a first scan, or a scan below its bound), is loose for
// the rest of the run and looked at by every offerAgain. It serves only
// runs whose lists hold nothing from outside their viewers' rankings: a
// fair share from scratch, whose lists start empty, and a repair from
// rankings kept with the lists (CapState), where only changed members,
// whose lists are emptied, have none. A repair without them ranks the
// viewers it wakes from the top, below what they hold, so it scans
// (indexNotWorthIt from the start). When too many viewers are loose from
// the start, scanning is cheaper too.
const (
	indexUnbuilt = iota
	indexBuilt
	indexNotWorthIt
)

// buildIndex builds the index on every core: each takes a range of
// viewers, counts their entries per candidate, and writes them after the
// lower ranges' in each candidate's run, so that rankedBy[cand] lists its
// viewers in ascending order, as one pass would. (At 50,000 members a
// build is some 25 ms on one core, all of it in a newcomer's time when
// the repair before left no index.)
func (c *capper) buildIndex() {
	size := c.p.Len()
	c.isLoose = make([]bool, size)
	for v := range size {
		if !c.rankings[v].ready {
			c.isLoose[v] = true
			c.loose = append(c.loose, int32(v))
		}
	}
	if len(c.loose) > size/4 {
		c.index, c.isLoose, c.loose = indexNotWorthIt, nil, nil
		return
	}
	parts := splitRange(size)
	counts := make([][]int32, len(parts)) // counts[w][cand]: part w's entries of cand
	var wg sync.WaitGroup
	for w, part := range parts {
		wg.Go(func() {
			counts[w] = make([]int32, size)
			for v := part[0]; v < part[1]; v++ {
				if !c.isLoose[v] {
					for _, e := range c.rankings[v].entries {
						counts[w][e.Other]++
					}
				}
			}
		})
	}
	wg.Wait()
	// Each candidate's run starts where the one before ends; each part
	// writes from where the lower parts' entries of that candidate end.
	start := make([]int, size+1)
	total := 0
	for cand := range size {
		start[cand] = total
		for w := range parts {
			count := counts[w][cand]
			counts[w][cand] = int32(total)
			total += int(count)
		}
	}
	start[size] = total
	flat := make([]int32, total)
	for w, part := range parts {
		wg.Go(func() {
			next := counts[w]
			for v := part[0]; v < part[1]; v++ {
				if !c.isLoose[v] {
					for _, e := range c.rankings[v].entries {
						flat[next[e.Other]] = int32(v)
						next[e.Other]++
					}
				}
			}
		})
	}
	wg.Wait()
	c.rankedBy = make([][]int32, size)
	for cand := range size {
		c.rankedBy[cand] = flat[start[cand]:start[cand+1]:start[cand+1]]
	}
	c.index = indexBuilt
}

// checkIndexedOffers makes every offerAgain that uses the index check,
// by scoring cand against the whole event, that it offered cand to every
// viewer that blocks with cand, save those whose queued proposal ranks
// cand no better than itself (they reach cand on their own). Tests set
// it (CheckIndexedOffers): a missed pair seldom changes an assignment, so
// comparing assignments would rarely show one.
var checkIndexedOffers = false

func (c *capper) checkIndexedOffers(cand int) {
	for v := range c.p.Len() {
		e := Entry{Other: cand, Score: c.p.Score(v, cand)}
		if !c.p.Eligible(v, cand) || !c.blocks(v, cand, e.Score) || c.isLoose[v] || slices.Contains(c.rankedBy[cand], int32(v)) {
			continue
		}
		if r := &c.rankings[v]; c.queued[v] && !c.p.Better(v, e, r.entries[r.next]) {
			continue
		}
		panic(fmt.Sprintf("matching: the index did not offer %d to %d, which blocks with it (ranking %+v, list %v)",
			cand, v, c.rankings[v], c.lists[v]))
	}
}

// rankIndex is the index of who ranks whom as a run left it, kept in a
// CapState so that the next repair need not build it again: rankedBy as
// last built, and the viewers loose since. It is never modified; a
// repair copies what it changes.
type rankIndex struct {
	rankedBy [][]int32
	isLoose  []bool
	loose    []int32
}

// keptIndex is c's index for the next repair, or nil when c built none.
func (c *capper) keptIndex() *rankIndex {
	if c.index != indexBuilt {
		return nil
	}
	return &rankIndex{rankedBy: c.rankedBy, isLoose: c.isLoose, loose: c.loose}
}

// markLoose takes v's ranking out of the index: it changed.
func (c *capper) markLoose(v int) {
	if c.index == indexBuilt && !c.isLoose[v] {
		c.isLoose[v] = true
		c.loose = append(c.loose, int32(v))
	}
}

// blocks reports whether v and cand would both rather list each other
// than what they hold now.
func (c *capper) blocks(v, cand int, score float32) bool {
	list := c.lists[v]
	if listsOther(list, cand) {
		return false
	}
	if len(list) >= c.n && !c.p.Better(v, Entry{Other: cand, Score: score}, worstOf(c.p, v, list)) {
		return false
	}
	// Most pairs a run looks at score below the worst holder of a full
	// candidate; the floor turns them away without reading the holders.
	switch floor := c.holderFloor[cand]; {
	case score < floor:
		return false
	case score > floor:
		return true
	}
	return c.p.Better(cand, Entry{Other: v, Score: score}, worstOf(c.p, cand, c.holders[cand]))
}

// setFloor updates holderFloor[cand] after cand's holders changed: the
// lowest score among them when cand is full, else -Inf (cand has room for
// anyone).
func (c *capper) setFloor(cand int) {
	held := c.holders[cand]
	switch {
	case len(held) < c.maxAppearances:
		c.holderFloor[cand] = float32(math.Inf(-1))
		return
	case len(held) == 0: // a cap of 0: cand takes nobody
		c.holderFloor[cand] = float32(math.Inf(1))
		return
	}
	c.holderFloor[cand] = lowestScore(held)
}

// run takes proposals best pair first until none is left.
func (c *capper) run(ctx context.Context) error {
	done := ctx.Done()
	for steps := 0; len(c.heap) > 0; steps++ {
		if c.err != nil {
			return c.err
		}
		if steps%1024 == 0 && isDone(done) {
			return fmt.Errorf("matching: capped assignment stopped: %w", ctx.Err())
		}
		pair := c.pop()
		c.stats.Proposals++
		v, cand := int(pair.v), int(pair.c)
		if pair.cursor {
			c.queued[v] = false
		}
		if c.blocks(v, cand, pair.score) {
			c.take(ctx, v, cand, pair.score)
		}
		// The viewer moves past cand whether taken or not. Taking the
		// best blocking pair settles every pair ranked above it for good
		// (it then agrees with the unique assignment there), and the heap
		// only ever holds a viewer's next proposal or pairs offerAgain
		// found, so a pair turned down here never blocks later. A full
		// viewer proposes to nobody: pairs of theirs that block when a
		// candidate frees a place are queued by offerAgain.
		if pair.cursor {
			c.rankings[v].next++
		}
		c.wake(v)
	}
	return c.err
}

// take lists cand for v; each side lets its worst go if over its limit.
func (c *capper) take(ctx context.Context, v, cand int, score float32) {
	c.own(v)
	c.lists[v] = append(c.lists[v], Entry{Other: cand, Score: score})
	c.holders[cand] = append(c.holders[cand], Entry{Other: v, Score: score})
	c.setFloor(cand)
	if len(c.lists[v]) > c.n {
		w := worstOf(c.p, v, c.lists[v]).Other
		c.dropEntry(v, w)
		c.dropHolder(w, v)
		if len(c.holders[w]) == c.maxAppearances-1 && c.err == nil {
			// w was full, so it may have turned away viewers it would
			// take now.
			c.err = c.offerAgain(ctx, w)
		}
	}
	if len(c.holders[cand]) > c.maxAppearances {
		y := c.worstHolder(cand)
		c.dropHolder(cand, y)
		c.dropEntry(y, cand)
		c.lost(y)
	}
}

func (c *capper) worstHolder(cand int) int {
	return worstOf(c.p, cand, c.holders[cand]).Other
}

func (c *capper) dropEntry(v, cand int) {
	c.own(v)
	c.lists[v] = slices.DeleteFunc(c.lists[v], func(e Entry) bool { return e.Other == cand })
}

func (c *capper) dropHolder(cand, v int) {
	c.holders[cand] = slices.DeleteFunc(c.holders[cand], func(e Entry) bool { return e.Other == v })
	c.setFloor(cand)
}

// worstOf is the last of entries in owner's order; entries is not empty.
func worstOf(p *Pool, owner int, entries []Entry) Entry {
	worst := entries[0]
	for _, e := range entries[1:] {
		if p.Better(owner, worst, e) {
			worst = e
		}
	}
	return worst
}

// own makes lists[v] the capper's to change.
func (c *capper) own(v int) {
	if !c.owned[v] {
		c.lists[v] = append(make([]Entry, 0, c.n+1), c.lists[v]...)
		c.owned[v] = true
	}
}

// sort puts lists[v] in Better order.
func (c *capper) sort(v int) {
	slices.SortFunc(c.lists[v], func(a, b Entry) int {
		if c.p.Better(v, a, b) {
			return -1
		}
		return 1
	})
}

// indexHolders fills holders from lists: one backing array, each
// candidate's part exactly as long as its holders, so that only the
// candidates a run changes ever allocate.
func (c *capper) indexHolders() {
	counts := make([]int32, len(c.lists))
	total := 0
	for _, list := range c.lists {
		for _, e := range list {
			counts[e.Other]++
			total++
		}
	}
	flat := make([]Entry, total)
	at := 0
	for cand, count := range counts {
		c.holders[cand] = flat[at : at : at+int(count)]
		at += int(count)
	}
	for v, list := range c.lists {
		for _, e := range list {
			c.holders[e.Other] = append(c.holders[e.Other], Entry{Other: v, Score: e.Score})
		}
	}
	for cand := range c.holders {
		c.setFloor(cand)
	}
}

// The heap is a binary max-heap in pairBefore order.

func (c *capper) push(pair capPair) {
	c.heap = append(c.heap, pair)
	h := c.heap
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !c.p.pairBefore(h[i], h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (c *capper) pop() capPair {
	h := c.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		best, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && c.p.pairBefore(h[l], h[best]) {
			best = l
		}
		if r < len(h) && c.p.pairBefore(h[r], h[best]) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	c.heap = h
	return top
}
