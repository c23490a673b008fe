package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

// engineLists returns every member's list as the engine computes it for a
// whole event: every member claimed against empty stored lists, which is
// what a worker does when an event is first matched. With maxAppearances
// above 0 that is the capped assignment (MAX_APPEARANCES), otherwise each
// member's own top-N.
func engineLists(pool *matching.Pool, n, maxAppearances int) ([][]matching.Entry, error) {
	if maxAppearances > 0 {
		lists, _, err := pool.CappedLists(context.Background(), n, maxAppearances, nil)
		if err != nil {
			return nil, fmt.Errorf("matching the event with MAX_APPEARANCES %d: %w", maxAppearances, err)
		}
		return lists, nil
	}
	lists := make([][]matching.Entry, pool.Len())
	claimed := make([]int, pool.Len())
	for i := range claimed {
		claimed[i] = i
	}
	if _, err := pool.UpdateContext(context.Background(), lists, claimed, n); err != nil {
		return nil, fmt.Errorf("matching the event: %w", err)
	}
	return lists, nil
}

// forEach runs fn(0..n-1) on every core; fn writes only its own index's
// slots.
func forEach(n int, fn func(i int)) {
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// appearances[i] is how many lists name member i.
func appearances(lists [][]matching.Entry, size int) []int {
	counts := make([]int, size)
	for _, list := range lists {
		for _, e := range list {
			counts[e.Other]++
		}
	}
	return counts
}

// gini of non-negative counts: 0 when all are equal, near 1 when one
// member has them all.
func gini(counts []int) float64 {
	sorted := slices.Clone(counts)
	slices.Sort(sorted)
	total, weighted := 0.0, 0.0
	for k, c := range sorted {
		total += float64(c)
		weighted += float64(k+1) * float64(c)
	}
	if total == 0 {
		return 0
	}
	n := float64(len(sorted))
	return 2*weighted/(n*total) - (n+1)/n
}

// percentile is the smallest count at or above share of the members.
func percentile(counts []int, share float64) int {
	if len(counts) == 0 {
		return 0
	}
	sorted := slices.Clone(counts)
	slices.Sort(sorted)
	k := int(math.Ceil(share*float64(len(sorted)))) - 1
	return sorted[max(k, 0)]
}

// violation is one kind of pair that must never be listed. Exclusions,
// organiser rules and languages add theirs here as they land.
type violation struct {
	name    string
	applies func(profiles []attendee.Profile, viewer, other int) bool
}

var violations = []violation{
	{"same company", func(profiles []attendee.Profile, viewer, other int) bool {
		a, b := matching.NormalizeTag(profiles[viewer].Company), matching.NormalizeTag(profiles[other].Company)
		return a != "" && a == b
	}},
}

// quality is one population's figures.
type quality struct {
	members, n                 int
	maxAppearances             int // 0: no cap
	overCap                    int // members in more lists than maxAppearances
	uncappedInAList            float64
	uncappedMostListed         int
	uncappedGini               float64
	inAList, fullLists         float64
	mostListed                 int
	gini, reciprocity          float64
	scoreKept, tiePlaces       float64
	tiesToSmallerID            float64
	stufferAppears, honestP90  int
	offerStufferAppears        int
	violations                 map[string]int
	planted, plantedGroups     int
	plantedEngine, plantedRand float64
	plantedJaccard             float64
}

// measure computes every figure of one event.
func measure(profiles []attendee.Profile, groups [][]int, n, maxAppearances int) (*quality, error) {
	pool := matching.NewPool(profiles)
	lists, err := engineLists(pool, n, maxAppearances)
	if err != nil {
		return nil, err
	}
	// The same event without the cap: the stuffers are measured on it (a
	// cap would hide what scoring alone lets them buy), and its spread is
	// shown beside the capped one.
	uncapped := lists
	if maxAppearances > 0 {
		if uncapped, err = engineLists(pool, n, 0); err != nil {
			return nil, err
		}
	}
	size := pool.Len()
	q := &quality{members: size, n: n, maxAppearances: maxAppearances, violations: map[string]int{}}
	counts := appearances(lists, size)
	uncappedCounts := appearances(uncapped, size)
	q.uncappedMostListed, q.uncappedGini = slices.Max(append(uncappedCounts, 0)), gini(uncappedCounts)
	for i := range size {
		if uncappedCounts[i] > 0 {
			q.uncappedInAList++
		}
		if maxAppearances > 0 && counts[i] > maxAppearances {
			q.overCap++
		}
	}
	q.uncappedInAList /= float64(max(size, 1))
	listed, full, entries, reciprocal := 0, 0, 0, 0
	for i, list := range lists {
		if counts[i] > 0 {
			listed++
		}
		if len(list) == n {
			full++
		}
		for _, e := range list {
			entries++
			if slices.ContainsFunc(lists[e.Other], func(back matching.Entry) bool { return back.Other == i }) {
				reciprocal++
			}
			for _, v := range violations {
				if v.applies(profiles, i, e.Other) {
					q.violations[v.name]++
				}
			}
		}
	}
	q.inAList = share(listed, size)
	q.fullLists = share(full, size)
	q.mostListed = slices.Max(append(counts, 0))
	q.gini = gini(counts)
	q.reciprocity = share(reciprocal, entries)

	// Unconstrained top-N, one place more to see the ties at its end.
	unconstrained := make([][]matching.Entry, size)
	forEach(size, func(i int) { unconstrained[i] = pool.TopN(i, n+1) })
	// A tie-break by user ID hands every tie to the smaller user ID; a fair
	// one about half of them.
	kept, best, places, tied, ties, toSmaller := 0.0, 0.0, 0, 0, 0, 0
	for i := range size {
		for _, e := range lists[i] {
			kept += float64(e.Score)
		}
		top := unconstrained[i]
		for k := range min(n, len(top)) {
			best += float64(top[k].Score)
			places++
			if (k > 0 && top[k-1].Score == top[k].Score) || (k+1 < len(top) && top[k+1].Score == top[k].Score) {
				tied++
			}
			if k+1 < len(top) && top[k+1].Score == top[k].Score {
				ties++
				if profiles[top[k].Other].UserID < profiles[top[k+1].Other].UserID {
					toSmaller++
				}
			}
		}
	}
	q.scoreKept = kept / best
	q.tiePlaces = share(tied, places)
	q.tiesToSmallerID = share(toSmaller, ties)

	if q.stufferAppears, q.honestP90, err = measureStuffer(pool, uncapped, tagStuffer(profiles), n); err != nil {
		return nil, err
	}
	if q.offerStufferAppears, _, err = measureStuffer(pool, uncapped, offerStuffer(profiles), n); err != nil {
		return nil, err
	}

	if len(groups) > 0 {
		q.plantedGroups = len(groups)
		q.plantedEngine, q.plantedRand, q.plantedJaccard, q.planted = plantedRecall(pool, lists, groups, n)
	}
	return q, nil
}

func share(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// plantedRecall is the share of planted partners' places in the top n that
// partners take: in the engine's lists, in expectation for lists drawn at
// random among eligible candidates, and in top-n lists by the Jaccard of
// interests alone. The places are min(n, eligible partners) per planted
// member.
func plantedRecall(pool *matching.Pool, lists [][]matching.Entry, groups [][]int, n int) (engine, random, jaccard float64, members int) {
	size := pool.Len()
	interests := make([][]string, size)
	for i := range size {
		for _, tag := range pool.Profile(i).Interests {
			if key := matching.NormalizeTag(tag); key != "" && !slices.Contains(interests[i], key) {
				interests[i] = append(interests[i], key)
			}
		}
	}
	places, hitEngine, hitJaccard, hitRandom := 0, 0, 0, 0.0
	for _, group := range groups {
		for _, i := range group {
			partners, eligible := 0, 0
			for j := range size {
				if pool.Eligible(i, j) {
					eligible++
					if slices.Contains(group, j) {
						partners++
					}
				}
			}
			if partners == 0 {
				continue
			}
			members++
			places += min(n, partners)
			hitRandom += float64(min(n, eligible)) * float64(partners) / float64(eligible)
			for _, e := range lists[i] {
				if slices.Contains(group, e.Other) {
					hitEngine++
				}
			}
			for _, j := range jaccardTop(pool, interests, i, n) {
				if slices.Contains(group, j) {
					hitJaccard++
				}
			}
		}
	}
	return share(hitEngine, places), hitRandom / float64(places), share(hitJaccard, places), members
}

// jaccardTop is i's top n eligible candidates by the Jaccard of interest
// tags alone, ties broken by pool index.
func jaccardTop(pool *matching.Pool, interests [][]string, i, n int) []int {
	type scored struct {
		j     int
		score float64
	}
	var top []scored
	for j := range pool.Len() {
		if !pool.Eligible(i, j) {
			continue
		}
		shared := 0
		for _, key := range interests[i] {
			if slices.Contains(interests[j], key) {
				shared++
			}
		}
		union := len(interests[i]) + len(interests[j]) - shared
		s := scored{j: j}
		if union > 0 {
			s.score = float64(shared) / float64(union)
		}
		if len(top) == n && s.score <= top[n-1].score {
			continue
		}
		at, _ := slices.BinarySearchFunc(top, s, func(a, b scored) int {
			if a.score > b.score {
				return -1
			}
			if a.score < b.score {
				return 1
			}
			return 0
		})
		// Equal scores keep the earlier index first.
		for at < len(top) && top[at].score == s.score {
			at++
		}
		top = slices.Insert(top, at, s)
		if len(top) > n {
			top = top[:n]
		}
	}
	out := make([]int, len(top))
	for k, s := range top {
		out[k] = s.j
	}
	return out
}

// tagStuffer is a member who offers every tag anyone looks for, looks for
// every tag anyone offers and claims every interest, most common tags
// first (scoring reads only the first profiletext.MaxTagsPerField).
func tagStuffer(profiles []attendee.Profile) attendee.Profile {
	return attendee.Profile{
		UserID:      "ffffffff-ffff-4fff-bfff-ffffffffffff",
		DisplayName: "Tag Stuffer",
		Offering:    byFrequency(profiles, func(p *attendee.Profile) []string { return p.LookingFor }),
		LookingFor:  byFrequency(profiles, func(p *attendee.Profile) []string { return p.Offering }),
		Interests:   byFrequency(profiles, func(p *attendee.Profile) []string { return p.Interests }),
	}
}

func byFrequency(profiles []attendee.Profile, field func(*attendee.Profile) []string) []string {
	count := map[string]int{}
	for k := range profiles {
		for _, tag := range field(&profiles[k]) {
			if key := matching.NormalizeTag(tag); key != "" {
				count[key]++
			}
		}
	}
	tags := make([]string, 0, len(count))
	for key := range count {
		tags = append(tags, key)
	}
	slices.SortFunc(tags, func(a, b string) int {
		if count[a] != count[b] {
			return count[b] - count[a]
		}
		if a < b {
			return -1
		}
		return 1
	})
	return tags
}

// offerStuffer is the first member of the event, under a new user ID,
// also offering every tag anyone looks for: an honest profile plus the
// stuffing that made hubs of the real event's members (issue 11).
func offerStuffer(profiles []attendee.Profile) attendee.Profile {
	stuffer := profiles[0]
	stuffer.UserID = "eeeeeeee-eeee-4eee-beee-eeeeeeeeeeee"
	stuffer.Offering = byFrequency(profiles, func(p *attendee.Profile) []string { return p.LookingFor })
	return stuffer
}

// measureStuffer has stuffer join the matched event, as a newcomer does
// (Pool.Apply, then an update with them claimed), and returns their
// appearances and the honest members' 90th percentile.
func measureStuffer(pool *matching.Pool, lists [][]matching.Entry, stuffer attendee.Profile, n int) (appears, honestP90 int, err error) {
	next, _, err := pool.Apply(context.Background(), []attendee.Profile{stuffer}, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("adding the stuffer: %w", err)
	}
	grown := append(slices.Clone(lists), nil)
	if !next.SameTermWeights(pool) {
		grown = matching.MarkForRescore(grown)
	}
	if _, err := next.UpdateContext(context.Background(), grown, []int{next.Len() - 1}, n); err != nil {
		return 0, 0, fmt.Errorf("matching the stuffer: %w", err)
	}
	counts := appearances(grown, next.Len())
	last := len(counts) - 1
	return counts[last], percentile(counts[:last], 0.9), nil
}
