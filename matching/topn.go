package matching

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// Better is the total order of every list: a higher score first, and on
// equal scores the smaller Profile(Other).UserID first, so ties never depend
// on pool order. The order is the same for every viewer; viewer is unused
// and only keeps call sites explicit about whose list is being ordered.
func (p *Pool) Better(viewer int, a, b Entry) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return p.userIDRank[a.Other] < p.userIDRank[b.Other]
}

// TopN returns i's best eligible candidates, best first; its length is
// min(n, number of eligible candidates).
func (p *Pool) TopN(i, n int) []Entry {
	if n <= 0 {
		return nil
	}
	top := make([]Entry, 0, min(n, p.Len()))
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
// stored score for it is stale and step 1 recomputes c.
func (p *Pool) Update(lists [][]Entry, claimed []int, n int) (changed []int) {
	if len(lists) != p.Len() {
		panic(fmt.Sprintf("matching: Update got %d lists for a pool of %d", len(lists), p.Len()))
	}
	isClaimed := make([]bool, p.Len())
	for _, u := range claimed {
		isClaimed[u] = true
	}
	isChanged := make([]bool, p.Len())
	needsRecompute := make([]bool, p.Len())
	parallel(p.Len(), func(v int) {
		needsRecompute[v] = !isClaimed[v] && !p.isValidList(v, lists[v], n)
	})

	// Claimed members and invalid lists get a full TopN over the pool, which
	// already accounts for every claimed member; the insertion pass below is
	// only needed for the other lists. This gives the same lists as applying
	// step 2 member by member, since a top-N of a union does not depend on
	// the order its parts arrive in.
	parallel(p.Len(), func(v int) {
		if isClaimed[v] || needsRecompute[v] {
			lists[v] = p.TopN(v, n)
			isChanged[v] = true
			return
		}
		list := lists[v]
		for _, u := range claimed {
			if listsOther(list, u) {
				isChanged[v] = true
				continue
			}
			if !p.Eligible(u, v) {
				continue
			}
			candidate := Entry{Other: u, Score: p.Score(v, u)}
			if len(list) < n || (len(list) > 0 && p.Better(v, candidate, list[len(list)-1])) {
				list = p.withEntry(v, list, candidate, n)
				isChanged[v] = true
			}
		}
		lists[v] = list
	})

	for v, yes := range isChanged {
		if yes {
			changed = append(changed, v)
		}
	}
	return changed
}

// parallel runs fn(0..n-1) on every core. Each index is handled by exactly
// one goroutine, and fn must only write to its own index's slots.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n < 256 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	const chunk = 64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
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
}

// isValidList reports whether list could have been produced from this pool
// for viewer: every check is cheap and catches lists stored before a profile
// edit, or corrupted ones. Strict Better order also rules out duplicates.
func (p *Pool) isValidList(viewer int, list []Entry, n int) bool {
	if len(list) > n {
		return false
	}
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

// withEntry returns a new list with e inserted and cut to n entries. It
// copies rather than inserting in place because the stored slices belong to
// the caller and may share backing arrays with data it still uses.
func (p *Pool) withEntry(viewer int, list []Entry, e Entry, n int) []Entry {
	out := make([]Entry, len(list), len(list)+1)
	copy(out, list)
	out = p.insert(viewer, out, e)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
