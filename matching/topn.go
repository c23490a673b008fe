package matching

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Better is the total order of viewer's list: a higher score first, and on
// equal scores the smaller tieKey of viewer's and the candidate's UserIDs,
// then (should two keys collide) the smaller UserID. Ties never depend on
// pool order, and since the key differs from viewer to viewer, nobody wins
// every tie by the accident of a small UserID.
func (p *Pool) Better(viewer int, a, b Entry) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return p.winsTie(viewer, a.Other, b.Other)
}

// winsTie is Better on equal scores, kept out of Better so that Better
// stays small enough to inline: the hot loops call it for almost every
// candidate, and almost never with a tie.
func (p *Pool) winsTie(viewer, a, b int) bool {
	ka, kb := tieKey(p.idHash[viewer], p.idHash[a]), tieKey(p.idHash[viewer], p.idHash[b])
	if ka != kb {
		return ka < kb
	}
	return p.userIDRank[a] < p.userIDRank[b]
}

// TopN returns i's best eligible candidates, best first; its length is
// min(n, number of eligible candidates).
func (p *Pool) TopN(i, n int) []Entry {
	if n <= 0 {
		return nil
	}
	top := make([]Entry, 0, min(n, p.Len()))
	pairsScored.Add(int64(p.Len() - 1))
	for j := range p.profiles {
		if !p.Eligible(i, j) {
			continue
		}
		candidate := Entry{Other: j, Score: p.Score(i, j)}
		if len(top) == n {
			worst := top[n-1]
			// The score comparison alone rejects almost every candidate
			// once the list is full; Better only settles exact ties.
			if candidate.Score < worst.Score || !p.Better(i, candidate, worst) {
				continue
			}
			top = top[:n-1]
		}
		top = p.insert(i, top, candidate)
	}
	return top
}

// insert places e into list (sorted by Better) at its position, in place.
func (p *Pool) insert(viewer int, list []Entry, e Entry) []Entry {
	at := sort.Search(len(list), func(k int) bool { return p.Better(viewer, e, list[k]) })
	list = append(list, Entry{})
	copy(list[at+1:], list[at:])
	list[at] = e
	return list
}

// Update brings the stored lists up to date after the claimed members were
// added or edited, and returns the viewers whose lists must be written back
// (ascending, no duplicates). lists[v] is v's stored list, best first, and
// is replaced in place; len(lists) must equal p.Len(). The rule:
//
//  1. Every list that cannot be a list computed from this pool (an Other out
//     of range, itself, ineligible, a stale score, out of Better order, a
//     duplicate, or longer than n) is marked for full recompute.
//  2. For each claimed u in order, lists[u] = TopN(u, n). Every other c whose
//     list contains u is marked changed (its rows show u's profile, which may
//     have changed); otherwise u is inserted into c's list if eligible and it
//     beats c's last entry or the list is short, keeping at most n entries.
//  3. The lists marked in step 1 are recomputed with TopN.
//
// If every stored list was its viewer's true top-N before the claimed
// members changed, every list is its true top-N afterwards: a claimed
// member's score against c only changes when its profile did, and then c's
// stored score for it is stale and step 1 recomputes c. That holds as long
// as the stored lists were computed with this pool's term weights
// (SameTermWeights); a caller whose weights changed passes its lists
// through MarkForRescore first.
//
// Update is UpdateContext without cancellation.
func (p *Pool) Update(lists [][]Entry, claimed []int, n int) (changed []int) {
	changed, err := p.UpdateContext(context.Background(), lists, claimed, n)
	if err != nil {
		panic(err) // unreachable: Background is never done
	}
	return changed
}

// UpdateContext is Update that stops once ctx is done: every long loop
// (validation, scoring, merging) checks ctx between small slices of work,
// so a timed-out attempt stops within milliseconds rather than running to
// the end next to its retry. It then returns an error wrapping ctx.Err()
// and leaves lists untouched; otherwise it behaves exactly like Update.
func (p *Pool) UpdateContext(ctx context.Context, lists [][]Entry, claimed []int, n int) (changed []int, err error) {
	u, err := p.prepare(ctx, lists, nil, claimed, n)
	if err != nil {
		return nil, err
	}
	offers, err := p.scoreOffers(ctx, u.freshIDs, u.fresh, u.isClaimed, n)
	if err != nil {
		return stopped(err)
	}
	return p.finishUpdate(ctx, lists, nil, u, offers, n)
}

func stopped(err error) ([]int, error) {
	return nil, fmt.Errorf("matching: update stopped: %w", err)
}

// update is what step 1 of Update found: which lists are rebuilt from
// every candidate (fresh), which are repaired from their reserves, and
// which members were claimed.
type update struct {
	isClaimed, fresh []bool
	// freshIDs are the fresh members in UserID order, the order shards
	// split them in.
	freshIDs []int
	// With reserves: repaired[v] when v's list was repaired from its
	// reserve; extended[v] is then the list and its spares, best first,
	// unless intact[v] says the reserve holds as it is. depth is the spares
	// a new reserve keeps.
	depth            int
	repaired, intact []bool
	extended         [][]Entry
}

// prepare is step 1 of an update; reserves may be nil.
func (p *Pool) prepare(ctx context.Context, lists [][]Entry, reserves []Reserve, claimed []int, n int) (*update, error) {
	if len(lists) != p.Len() {
		panic(fmt.Sprintf("matching: Update got %d lists for a pool of %d", len(lists), p.Len()))
	}
	if err := ctx.Err(); err != nil {
		_, err = stopped(err)
		return nil, err
	}
	size := p.Len()
	u := &update{isClaimed: make([]bool, size), fresh: make([]bool, size)}
	for _, c := range claimed {
		u.isClaimed[c] = true
	}
	if reserves != nil {
		u.repaired, u.intact, u.extended = make([]bool, size), make([]bool, size), make([][]Entry, size)
	}
	err := parallel(ctx, size, func(v int) {
		if u.isClaimed[v] {
			u.fresh[v] = true
			return
		}
		if reserves != nil {
			if extended, intact, ok := p.repair(v, lists[v], reserves[v], n); ok {
				u.repaired[v], u.intact[v], u.extended[v] = true, intact, extended
				return
			}
		}
		u.fresh[v] = !p.isValidList(v, lists[v], n)
	})
	if err != nil {
		_, err = stopped(err)
		return nil, err
	}
	for v, yes := range u.fresh {
		if yes {
			u.freshIDs = append(u.freshIDs, v)
		}
	}
	slices.SortFunc(u.freshIDs, func(a, b int) int { return int(p.userIDRank[a] - p.userIDRank[b]) })
	return u, nil
}

// finishUpdate is steps 2 and 3 once every pair is scored: every list
// keeps its entries and takes the offers that beat its last one; fresh
// lists are made of offers alone. With reserves (non-nil), repaired lists
// take offers into their spares too, and every list gets its new reserve.
func (p *Pool) finishUpdate(ctx context.Context, lists [][]Entry, reserves []Reserve, u *update, offers *offerTable, n int) ([]int, error) {
	// The result is the same as inserting offers one by one, since a top-N
	// of a union does not depend on the order its parts arrive in. New
	// lists go to updated, and only into lists once nothing can stop the
	// update any more.
	size := p.Len()
	isChanged := make([]bool, size)
	updated := make([][]Entry, size)
	var newReserves []Reserve
	if reserves != nil {
		newReserves = make([]Reserve, size)
	}
	err := parallel(ctx, size, func(v int) {
		switch {
		case u.fresh[v] && reserves != nil:
			updated[v], newReserves[v] = p.newReserve(v, offers.best(p, v, nil, offers.n), reserveBound{}, n, u.depth)
			isChanged[v] = true
			return
		case u.fresh[v]:
			updated[v] = offers.best(p, v, nil, n)
			isChanged[v] = true
			return
		case reserves != nil && u.repaired[v]:
			updated[v], newReserves[v] = p.reserved(v, reserves[v], u, offers, n)
		default:
			updated[v] = offers.best(p, v, lists[v], n)
		}
		isChanged[v] = !sameEntries(updated[v], lists[v])
		for _, e := range updated[v] {
			if u.isClaimed[e.Other] {
				isChanged[v] = true // its rows show a claimed member's profile
			}
		}
	})
	if err != nil {
		return stopped(err)
	}
	var changed []int
	for v, yes := range isChanged {
		if yes {
			lists[v] = updated[v]
			changed = append(changed, v)
		}
	}
	copy(reserves, newReserves)
	return changed, nil
}

// Offers are one shard's part of an update: for every member, the
// entries its share of the pairs brings into that member's list. Members
// are named by their position in UserID order, which every pool of the
// same profiles shares whatever its own order, so shards scored by other
// workers merge correctly; Members fingerprints that set.
type Offers struct {
	Members uint64 // fingerprint of the pool's UserIDs (see fingerprint)
	Rows    []Offer
	// Scored is how many fresh members the shard scored against everyone.
	Scored int
}

// Offer is one candidate for a list, by UserID rank.
type Offer struct {
	Viewer, Other uint32
	Score         float32
}

// fingerprint hashes the pool's UserIDs in UserID order (FNV-1a).
func (p *Pool) fingerprint() uint64 {
	byRank := make([]int, p.Len())
	for i, r := range p.userIDRank {
		byRank[r] = i
	}
	h := uint64(14695981039346656037)
	for _, i := range byRank {
		h = (h ^ fnv1a(p.profiles[i].UserID)) * 1099511628211
	}
	return h
}

// MarshalBinary encodes the offers compactly (12 bytes an offer), for a
// shard to hand them to the merge through the database.
func (o *Offers) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, 16+12*len(o.Rows))
	out = binary.LittleEndian.AppendUint64(out, o.Members)
	out = binary.LittleEndian.AppendUint32(out, uint32(o.Scored))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(o.Rows)))
	for _, r := range o.Rows {
		out = binary.LittleEndian.AppendUint32(out, r.Viewer)
		out = binary.LittleEndian.AppendUint32(out, r.Other)
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(r.Score))
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (o *Offers) UnmarshalBinary(data []byte) error {
	if len(data) < 16 {
		return errors.New("matching: offers too short")
	}
	o.Members = binary.LittleEndian.Uint64(data)
	o.Scored = int(binary.LittleEndian.Uint32(data[8:]))
	rows := int(binary.LittleEndian.Uint32(data[12:]))
	data = data[16:]
	if len(data) != 12*rows {
		return fmt.Errorf("matching: offers hold %d bytes for %d rows", len(data), rows)
	}
	o.Rows = make([]Offer, rows)
	for k := range o.Rows {
		o.Rows[k] = Offer{
			Viewer: binary.LittleEndian.Uint32(data[12*k:]),
			Other:  binary.LittleEndian.Uint32(data[12*k+4:]),
			Score:  math.Float32frombits(binary.LittleEndian.Uint32(data[12*k+8:])),
		}
	}
	return nil
}

// ShardOffers scores shard's share (of shards) of an update's pairs: the
// fresh members (claimed, or with a list that fails validation) are split
// in UserID order, every k-th to shard k, and each shard scores its fresh
// members against everyone, a pair of two fresh members once over all
// shards. UpdateWithOffers merges the shards' offers into exactly the lists
// UpdateContext computes. lists are not modified.
func (p *Pool) ShardOffers(ctx context.Context, lists [][]Entry, claimed []int, n, shard, shards int) (*Offers, error) {
	if shards < 1 || shard < 0 || shard >= shards {
		panic(fmt.Sprintf("matching: shard %d of %d", shard, shards))
	}
	u, err := p.prepare(ctx, lists, nil, claimed, n)
	if err != nil {
		return nil, err
	}
	var mine []int
	for k, id := range u.freshIDs {
		if k%shards == shard {
			mine = append(mine, id)
		}
	}
	table, err := p.scoreOffers(ctx, mine, u.fresh, u.isClaimed, n)
	if err != nil {
		_, err = stopped(err)
		return nil, err
	}
	// A list that is not fresh keeps its stored entries unless an offer
	// beats them, so only offers that enter the list against the stored
	// entries and this shard's other offers can enter it against every
	// shard's: the rest are left out, and most lists send nothing.
	out := &Offers{Members: p.fingerprint(), Scored: len(mine)}
	for v := range p.Len() {
		var kept []Entry
		if !u.fresh[v] {
			kept = lists[v]
		}
		for _, e := range table.best(p, v, kept, n) {
			if kept != nil && listsOther(kept, e.Other) {
				continue
			}
			out.Rows = append(out.Rows, Offer{Viewer: uint32(p.userIDRank[v]), Other: uint32(p.userIDRank[e.Other]), Score: e.Score})
		}
	}
	return out, nil
}

// UpdateWithOffers is UpdateContext with the pairs scored by ShardOffers,
// over every shard of the same update (same profiles, lists, claimed
// members and n). It returns an error if an offer names a member the pool
// does not hold or carries a score the pool does not give the pair: the
// shard was scored on other profiles.
func (p *Pool) UpdateWithOffers(ctx context.Context, lists [][]Entry, claimed []int, n int, shards []*Offers) (changed []int, err error) {
	u, err := p.prepare(ctx, lists, nil, claimed, n)
	if err != nil {
		return nil, err
	}
	size := p.Len()
	byRank := make([]int, size)
	for i, r := range p.userIDRank {
		byRank[r] = i
	}
	members := p.fingerprint()
	table := newOfferTable(len(shards), size, n, func(int) int { return n })
	for w, shard := range shards {
		pairsScored.Add(int64(len(shard.Rows)))
		if shard.Members != members {
			return nil, errors.New("matching: a shard was scored on other members")
		}
		for _, o := range shard.Rows {
			if int(o.Viewer) >= size || int(o.Other) >= size {
				return nil, fmt.Errorf("matching: a shard offers member %d of %d", max(o.Viewer, o.Other), size)
			}
			viewer, other := byRank[o.Viewer], byRank[o.Other]
			if o.Score != p.Score(viewer, other) || !p.Eligible(viewer, other) {
				return nil, fmt.Errorf("matching: a shard scores %s for %s at %v, the pool at %v",
					p.profiles[other].UserID, p.profiles[viewer].UserID, o.Score, p.Score(viewer, other))
			}
			if int(table.counts[w][viewer]) == table.capacity(viewer) {
				return nil, fmt.Errorf("matching: a shard offers more than %d entries to %s", n, p.profiles[viewer].UserID)
			}
			table.offer(p, w, viewer, Entry{Other: other, Score: o.Score})
		}
	}
	return p.finishUpdate(ctx, lists, nil, u, table, n)
}

// offerTable holds, per worker goroutine, each viewer's best offers so
// far, up to the viewer's capacity; workers never share a row, and best
// merges them.
type offerTable struct {
	n      int       // the most any list takes: capacities never exceed it
	start  []int     // viewer v's row is [start[v], start[v+1]) of each worker's lists
	lists  [][]Entry // [worker][start[viewer] + k]
	counts [][]int8  // [worker][viewer]
	// floors[worker][viewer] is the score an offer must reach to enter
	// the row: its worst entry's once the row is full, -Inf before, +Inf
	// for a row of no places. The rows of a large event do not fit in a
	// cache, and an offer is made to a different row for every pair, so
	// most offers, which enter no row, are turned away by this small array
	// without reading the row (with the tiles below: go test -run '^$'
	// -bench FullMatch -benchtime 2x ./matching/, 10,000 members uncapped,
	// 1.67-2.09 s before, 1.16-1.40 s after).
	floors [][]float32
}

// newOfferTable makes a table of workers rows per viewer, capacity(v) <= n
// entries each.
func newOfferTable(workers, size, n int, capacity func(v int) int) *offerTable {
	t := &offerTable{n: n, start: make([]int, size+1), lists: make([][]Entry, workers), counts: make([][]int8, workers)}
	for v := range size {
		t.start[v+1] = t.start[v] + min(n, capacity(v))
	}
	t.floors = make([][]float32, workers)
	for w := range workers {
		t.lists[w] = make([]Entry, t.start[size])
		t.counts[w] = make([]int8, size)
		t.floors[w] = make([]float32, size)
		for v := range size {
			t.floors[w][v] = float32(math.Inf(-1))
			if t.capacity(v) == 0 {
				t.floors[w][v] = float32(math.Inf(1))
			}
		}
	}
	return t
}

func (t *offerTable) capacity(viewer int) int { return t.start[viewer+1] - t.start[viewer] }

// scoreTileRows and scoreTileCols shape scoreOffers' tiles: the tags, bio
// signatures and floors of 512 candidates stay in a core's cache while 64
// fresh members are scored against them. A batch too small to give each
// worker a few tiles of 64 gets narrower ones, so that every core still
// takes part. The sizes were chosen with a throwaway test (not kept):
// scoring all pairs of 20,000 demodata members on 2 cores took 5.2 s in
// tiles of 64×512, 5.7 s of 16×512 and 6.3 s untiled (three runs each,
// interleaved).
const (
	scoreTileRows = 64
	scoreTileCols = 512
)

// scoreOffers scores every pair with at least one fresh member and offers
// each side to the other's list, once, where that list takes it: a fresh
// list takes every eligible candidate (its best n), any other list only
// claimed ones, so its row holds no more than there are claimed members.
// Offering both ways from one score, rather than scoring once per
// direction, halves the work of a large batch. When every member is fresh
// each pair is scored once. Otherwise a pair of two fresh members is
// offered from the one first in UserID order, and scored from both sides
// (runs are scored whole, ScoreRun) unless the pool is in UserID order:
// there a fresh member's run starts past it wherever every member before
// it in the run is fresh, since those pairs are offered from their other
// side. That halves the scoring of a sharded first match, whose workers
// read the event in UserID order.
//
// Pairs are scored in tiles (scoreTileRows fresh members against
// scoreTileCols members at a time), so that the candidates' tags and bio
// signatures, and their rows' floors, are read from a cache once per tile
// rather than from memory once per fresh member. Which order offers
// arrive in does not change a row: it keeps the best offers in a strict
// order.
//
// It returns ctx.Err() if ctx is done before every pair is scored; each
// worker checks between tiles' rows, at most every scoreTileRows·p.Len()
// pairs.
func (p *Pool) scoreOffers(ctx context.Context, freshIDs []int, fresh, isClaimed []bool, n int) (*offerTable, error) {
	size := p.Len()
	workers := max(1, min(runtime.GOMAXPROCS(0), len(freshIDs)))
	claimedCount := 0
	for _, yes := range isClaimed {
		if yes {
			claimedCount++
		}
	}
	t := newOfferTable(workers, size, n, func(v int) int {
		if fresh[v] {
			return n
		}
		return claimedCount
	})
	tileRows := max(1, min(scoreTileRows, len(freshIDs)/(4*workers)))
	// freshIDs are distinct (every caller lists each fresh member once),
	// so as many of them as members means every member is scored here.
	allFresh := len(freshIDs) == size
	// nonFreshBefore[j] counts the members below index j that are not
	// fresh; used only when the pool is in UserID order.
	var nonFreshBefore []int32
	if !allFresh && p.inUserIDOrder() {
		nonFreshBefore = make([]int32, size+1)
		for j, yes := range fresh {
			nonFreshBefore[j+1] = nonFreshBefore[j]
			if !yes {
				nonFreshBefore[j+1]++
			}
		}
	}
	done := ctx.Done()
	directional := p.directional()
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scored := int64(0)
			defer func() { pairsScored.Add(scored) }()
			floors := t.floors[w]
			scores := make([]float32, scoreTileCols)
			for {
				first := int(next.Add(int64(tileRows))) - tileRows
				if first >= len(freshIDs) || stop.Load() {
					return
				}
				if isDone(done) {
					stop.Store(true)
					return
				}
				rows := freshIDs[first:min(first+tileRows, len(freshIDs))]
				for from := 0; from < size; from += scoreTileCols {
					to := min(from+scoreTileCols, size)
					for _, i := range rows {
						start := from
						if allFresh {
							start = max(from, i+1)
						} else if nonFreshBefore != nil {
							// In UserID order the members before i come
							// first in UserID order, so a fresh one among
							// them offers its pair with i itself: when the
							// run up to i holds no other member, it is
							// skipped.
							if upTo := min(to, i+1); upTo <= from || nonFreshBefore[upTo] == nonFreshBefore[from] {
								start = max(from, i+1)
							}
						}
						if start >= to {
							continue
						}
						// Every pair of the run is scored in one call (the
						// vector kernel where there is one), the few an
						// eligibility rule skips too.
						run := scores[:to-start]
						p.ScoreRun(i, start, run)
						scored += int64(len(run))
						for j := start; j < to; j++ {
							s := run[j-start]
							// The floors turn most pairs away here, before
							// any rule is looked up (offer checks them
							// again).
							if s < floors[i] && s < floors[j] {
								continue
							}
							// A pair of two fresh members is offered from
							// one of them only: when every member is fresh,
							// and so scored here, the one with the lower
							// index (its run starts past i); otherwise the
							// one first in UserID order, which shards agree
							// on. (Which of the two that is cannot be
							// predicted from one pair to the next: visiting
							// every pair twice and branching on it was over
							// a third of the all-fresh pass.)
							if !allFresh && (j == i || (fresh[j] && p.userIDRank[j] < p.userIDRank[i])) {
								continue
							}
							toI := p.Eligible(i, j)
							toJ := toI
							if directional {
								toJ = p.Eligible(j, i)
							}
							toJ = toJ && (fresh[j] || isClaimed[i])
							if !toI && !toJ {
								continue
							}
							if toI && s >= floors[i] {
								t.offer(p, w, i, Entry{Other: j, Score: s})
							}
							if toJ && s >= floors[j] {
								t.offer(p, w, j, Entry{Other: i, Score: s})
							}
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if stop.Load() {
		return nil, ctx.Err()
	}
	return t, nil
}

// offer keeps e if it is among viewer's best offers of worker w.
func (t *offerTable) offer(p *Pool, w, viewer int, e Entry) {
	if e.Score < t.floors[w][viewer] {
		return
	}
	row := t.lists[w][t.start[viewer]:t.start[viewer+1]]
	count := int(t.counts[w][viewer])
	if count == len(row) {
		if count == 0 {
			return
		}
		if worst := row[count-1]; e.Score < worst.Score || !p.Better(viewer, e, worst) {
			return
		}
		count--
	}
	at := count
	for at > 0 && p.Better(viewer, e, row[at-1]) {
		row[at] = row[at-1]
		at--
	}
	row[at] = e
	t.counts[w][viewer] = int8(count + 1)
	if count+1 == len(row) {
		t.floors[w][viewer] = row[count].Score
	}
}

// best merges viewer's kept entries with every worker's offers into a new
// list of at most n, in Better order. An offer of someone already kept is
// the same entry (validated lists carry current scores) and is skipped.
func (t *offerTable) best(p *Pool, viewer int, kept []Entry, n int) []Entry {
	if kept != nil && !t.improves(p, viewer, kept, n) {
		return kept
	}
	out := make([]Entry, 0, n+1)
	add := func(e Entry) {
		for _, x := range out {
			if x.Other == e.Other {
				return
			}
		}
		out = p.insert(viewer, out, e)
		if len(out) > n {
			out = out[:n]
		}
	}
	for _, e := range kept {
		add(e)
	}
	for w := range t.lists {
		for _, e := range t.offers(w, viewer) {
			add(e)
		}
	}
	return out
}

// improves reports whether some offer to viewer would enter kept: most
// lists take none of a batch's claimed members, and this spares them the
// merge.
func (t *offerTable) improves(p *Pool, viewer int, kept []Entry, n int) bool {
	for w := range t.lists {
		for _, e := range t.offers(w, viewer) {
			if len(kept) < n || p.Better(viewer, e, kept[len(kept)-1]) {
				if !listsOther(kept, e.Other) {
					return true
				}
			}
		}
	}
	return false
}

func (t *offerTable) offers(w, viewer int) []Entry {
	return t.lists[w][t.start[viewer] : t.start[viewer]+int(t.counts[w][viewer])]
}

func sameEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parallel runs fn(0..n-1) on every core. Each index is handled by exactly
// one goroutine, and fn must only write to its own index's slots. Every
// goroutine checks ctx before each chunk of indexes; once ctx is done no new
// chunk starts, and parallel returns ctx.Err() after the running ones end.
// Some indexes have then not been handled.
func parallel(ctx context.Context, n int, fn func(i int)) error {
	const chunk = 64
	done := ctx.Done()
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n < 256 {
		for i := range n {
			if i%chunk == 0 && isDone(done) {
				return ctx.Err()
			}
			fn(i)
		}
		return nil
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if isDone(done) {
					stop.Store(true)
					return
				}
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
	if stop.Load() {
		return ctx.Err()
	}
	return nil
}

// isDone reports without blocking whether done is closed; a nil done (a
// context that is never cancelled) is never done.
func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// isValidList reports whether list could have been produced from this pool
// for viewer: every check is cheap and catches lists stored before a profile
// edit, or corrupted ones. Strict Better order also rules out duplicates.
func (p *Pool) isValidList(viewer int, list []Entry, n int) bool {
	if len(list) > n {
		return false
	}
	pairsScored.Add(int64(len(list)))
	for k, e := range list {
		if e.Other < 0 || e.Other >= p.Len() || !p.Eligible(viewer, e.Other) {
			return false
		}
		if e.Score != p.Score(viewer, e.Other) {
			return false
		}
		if k > 0 && !p.Better(viewer, list[k-1], e) {
			return false
		}
	}
	return true
}

func listsOther(list []Entry, other int) bool {
	for _, e := range list {
		if e.Other == other {
			return true
		}
	}
	return false
}
