package matching

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
)

// FillShort tops up the lists of a fair share (FairShare: nobody in more
// than n lists) that are shorter than n, letting members appear in up to
// maxAppearances lists: in the one order over all pairs (pairBefore), a
// short viewer takes its best eligible candidate that it does not list yet
// and that is in fewer than maxAppearances lists. Best pair first means no
// candidate ever turns a taker away for a better one, so the result is a
// function of share alone. Afterwards a list is short only when every
// eligible member it lacks is in maxAppearances lists.
//
// Lists that are full come back shared with share; filled ones are new.
// An open event seldom has a short list (a fair share fills every list
// whose viewer may meet more than about one member in n); rules,
// exclusions and languages that leave a few members wanted by many make
// them.
func (p *Pool) FillShort(ctx context.Context, share [][]Entry, n, maxAppearances int) ([][]Entry, error) {
	return p.fillShort(ctx, share, n, maxAppearances, nil)
}

// fillShort is FillShort reading a short viewer's candidates from its
// ranking in rankings, when not nil and that ranking is complete, rather
// than scoring and sorting the event for it. The viewers a fair share
// leaves short proposed to everyone they rank, so the run that made it
// left each of them a complete ranking: every eligible member, best
// first, the order the fill needs.
func (p *Pool) fillShort(ctx context.Context, share [][]Entry, n, maxAppearances int, rankings []ranking) ([][]Entry, error) {
	if maxAppearances < n {
		return nil, fmt.Errorf("matching: a cap of %d appearances cannot fill lists of %d", maxAppearances, n)
	}
	size := p.Len()
	if len(share) != size {
		panic(fmt.Sprintf("matching: FillShort got %d lists for a pool of %d", len(share), size))
	}
	appears := make([]int, size)
	var short []int
	for v, list := range share {
		for _, e := range list {
			appears[e.Other]++
		}
		if len(list) < n {
			short = append(short, v)
		}
	}
	if len(short) == 0 {
		return share, nil
	}
	// Each short viewer's candidates that could still take it, best
	// first. Appearances only grow from here, so a candidate already at
	// the cap is never one.
	candidates := make([][]Entry, len(short))
	if err := parallel(ctx, len(short), func(k int) {
		v := short[k]
		var found []Entry
		if v < len(rankings) && rankings[v].ready && rankings[v].complete {
			for _, e := range rankings[v].entries {
				if appears[e.Other] < maxAppearances && p.Eligible(v, e.Other) && !listsOther(share[v], e.Other) {
					found = append(found, e)
				}
			}
			candidates[k] = found
			return
		}
		pairsScored.Add(int64(size))
		for c := range size {
			if appears[c] < maxAppearances && p.Eligible(v, c) && !listsOther(share[v], c) {
				found = append(found, Entry{Other: c, Score: p.Score(v, c)})
			}
		}
		candidates[k] = p.sortBetter(v, found)
	}); err != nil {
		return nil, fmt.Errorf("matching: filling short lists stopped: %w", err)
	}

	lists := slices.Clone(share)
	proposals := &fillHeap{p: p}
	for k, v := range short {
		lists[v] = slices.Clone(share[v])
		if len(candidates[k]) > 0 {
			proposals.pairs = append(proposals.pairs, fillProposal{k: k, pair: capPair{v: int32(v), c: int32(candidates[k][0].Other), score: candidates[k][0].Score}})
		}
	}
	heap.Init(proposals)
	next := make([]int, len(short))
	for proposals.Len() > 0 {
		top := heap.Pop(proposals).(fillProposal)
		v, c := int(top.pair.v), int(top.pair.c)
		if appears[c] < maxAppearances {
			lists[v] = p.insert(v, lists[v], Entry{Other: c, Score: top.pair.score})
			appears[c]++
		}
		next[top.k]++
		if ranking := candidates[top.k]; len(lists[v]) < n && next[top.k] < len(ranking) {
			e := ranking[next[top.k]]
			heap.Push(proposals, fillProposal{k: top.k, pair: capPair{v: top.pair.v, c: int32(e.Other), score: e.Score}})
		}
	}
	return lists, nil
}

// fillProposal is short viewer number k's next pair.
type fillProposal struct {
	k    int
	pair capPair
}

// fillHeap orders proposals by pairBefore (container/heap).
type fillHeap struct {
	p     *Pool
	pairs []fillProposal
}

func (h *fillHeap) Len() int           { return len(h.pairs) }
func (h *fillHeap) Less(i, j int) bool { return h.p.pairBefore(h.pairs[i].pair, h.pairs[j].pair) }
func (h *fillHeap) Swap(i, j int)      { h.pairs[i], h.pairs[j] = h.pairs[j], h.pairs[i] }
func (h *fillHeap) Push(x any)         { h.pairs = append(h.pairs, x.(fillProposal)) }
func (h *fillHeap) Pop() any {
	last := h.pairs[len(h.pairs)-1]
	h.pairs = h.pairs[:len(h.pairs)-1]
	return last
}
