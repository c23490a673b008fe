package matching_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// storedEntry is a list entry as the database keeps it: by UserID, since
// pool indexes change every time the pool is rebuilt.
type storedEntry struct {
	otherID string
	score   float32
}

// TestUpdateKeepsEveryListTopN simulates an event over many batches:
// newcomers join and are claimed, profiles are edited and claimed, and the
// pool is rebuilt in a fresh random order each time. After every Update each
// list must be exactly the brute-force top-N.
func TestUpdateKeepsEveryListTopN(t *testing.T) {
	const n = 5
	rng := rand.New(rand.NewPCG(7, 11))
	newcomers := demoProfiles(99, 300)
	var profiles []attendee.Profile
	stored := map[string][]storedEntry{}
	var previous *matching.Pool

	for round := 0; round < 160; round++ {
		var claimedIDs []string
		if len(newcomers) > 0 && (len(profiles) < 10 || rng.IntN(3) > 0) {
			for range 1 + rng.IntN(4) {
				if len(newcomers) == 0 {
					break
				}
				profiles = append(profiles, newcomers[0])
				claimedIDs = append(claimedIDs, newcomers[0].UserID)
				newcomers = newcomers[1:]
			}
		} else {
			for range 1 + rng.IntN(3) {
				k := rng.IntN(len(profiles))
				profiles[k] = editProfile(rng, profiles[k], profiles)
				claimedIDs = append(claimedIDs, profiles[k].UserID)
			}
		}
		if rng.IntN(4) == 0 { // claiming an unchanged member must be harmless
			claimedIDs = append(claimedIDs, profiles[rng.IntN(len(profiles))].UserID)
		}

		order := slices.Clone(profiles)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		pool := matching.NewPool(order)
		lists := loadLists(t, pool, stored)
		if previous != nil && !pool.SameTermWeights(previous) {
			// A term changed class: every score may have moved, and a list
			// whose own entries did not may still have been beaten.
			lists = matching.MarkForRescore(lists)
		}
		previous = pool
		before := cloneLists(lists)
		claimed := make([]int, len(claimedIDs))
		for k, id := range claimedIDs {
			claimed[k], _ = pool.Index(id)
		}

		changed := pool.Update(lists, claimed, n)

		checkChanged(t, round, pool, before, lists, claimed, changed)
		for v := range pool.Len() {
			if want := bruteTopN(pool, v, n); !slices.Equal(lists[v], want) {
				t.Fatalf("round %d: list of %d = %+v, want %+v", round, v, lists[v], want)
			}
		}
		checkMutualInvariant(t, round, pool, lists, n)
		stored = saveLists(pool, lists)
	}
	if len(profiles) < 200 {
		t.Fatalf("simulation only grew to %d members", len(profiles))
	}
}

// editProfile changes a profile the ways users do, including edits that
// create exact score ties (copying someone's tags) and eligibility changes
// (joining someone's company).
func editProfile(rng *rand.Rand, p attendee.Profile, everyone []attendee.Profile) attendee.Profile {
	someone := everyone[rng.IntN(len(everyone))]
	switch rng.IntN(7) {
	case 0:
		p.DisplayName += " Jr."
	case 1:
		p.Company = someone.Company
	case 2:
		p.Company = ""
	case 3:
		p.Interests = slices.Clone(someone.Interests)
	case 4: // become a twin of someone: ties with everyone they score against
		p.Company, p.Industry, p.Bio = someone.Company+" ", someone.Industry, someone.Bio
		p.Interests, p.LookingFor, p.Offering = someone.Interests, someone.LookingFor, someone.Offering
	case 5: // blank profile: scores 0 with most, a pure UserID tie-break
		p.Industry, p.Bio, p.Interests, p.LookingFor, p.Offering = "", "", nil, nil, nil
	default: // rewrite everything but the identity
		id := p.UserID
		p = demodata.Generate(rng.Int64(), 1)[0]
		p.UserID = id
	}
	return p
}

func loadLists(t *testing.T, pool *matching.Pool, stored map[string][]storedEntry) [][]matching.Entry {
	lists := make([][]matching.Entry, pool.Len())
	for v := range lists {
		for _, e := range stored[pool.Profile(v).UserID] {
			other, ok := pool.Index(e.otherID)
			if !ok {
				t.Fatalf("stored list names unknown %s", e.otherID)
			}
			lists[v] = append(lists[v], matching.Entry{Other: other, Score: e.score})
		}
	}
	return lists
}

func saveLists(pool *matching.Pool, lists [][]matching.Entry) map[string][]storedEntry {
	stored := map[string][]storedEntry{}
	for v, list := range lists {
		for _, e := range list {
			stored[pool.Profile(v).UserID] = append(stored[pool.Profile(v).UserID], storedEntry{pool.Profile(e.Other).UserID, e.Score})
		}
	}
	return stored
}

func cloneLists(lists [][]matching.Entry) [][]matching.Entry {
	out := make([][]matching.Entry, len(lists))
	for v, list := range lists {
		out[v] = slices.Clone(list)
	}
	return out
}

// checkChanged verifies the changed set: sorted and unique, covering the
// claimed members, every list that differs, and every list showing a
// claimed member (whose rows display that member's profile).
func checkChanged(t *testing.T, round int, pool *matching.Pool, before, after [][]matching.Entry, claimed, changed []int) {
	t.Helper()
	for k := 1; k < len(changed); k++ {
		if changed[k-1] >= changed[k] {
			t.Fatalf("round %d: changed %v not strictly ascending", round, changed)
		}
	}
	isChanged := make([]bool, pool.Len())
	for _, v := range changed {
		isChanged[v] = true
	}
	for _, u := range claimed {
		if !isChanged[u] {
			t.Fatalf("round %d: claimed %d not reported changed", round, u)
		}
	}
	for v := range pool.Len() {
		if isChanged[v] {
			continue
		}
		if !slices.Equal(before[v], after[v]) {
			t.Fatalf("round %d: list of %d changed but not reported", round, v)
		}
		for _, e := range after[v] {
			if slices.Contains(claimed, e.Other) {
				t.Fatalf("round %d: list of %d shows claimed %d but was not reported", round, v, e.Other)
			}
		}
	}
}

// checkMutualInvariant: if A lists B with score s, then B lists A, or B's
// list is full of entries scoring at least s.
func checkMutualInvariant(t *testing.T, round int, pool *matching.Pool, lists [][]matching.Entry, n int) {
	t.Helper()
	for a, list := range lists {
		for _, e := range list {
			b := e.Other
			if slices.ContainsFunc(lists[b], func(x matching.Entry) bool { return x.Other == a }) {
				continue
			}
			if len(lists[b]) != n {
				t.Fatalf("round %d: %d lists %d, who does not list back with room to spare", round, a, b)
			}
			for _, x := range lists[b] {
				if x.Score < e.Score {
					t.Fatalf("round %d: %d lists %d at %v, but %d keeps %d at only %v", round, a, b, e.Score, b, x.Other, x.Score)
				}
			}
		}
	}
}

func TestUpdateRecomputesInvalidLists(t *testing.T) {
	const n = 4
	profiles := demoProfiles(21, 80)
	pool := matching.NewPool(profiles)
	lists := make([][]matching.Entry, pool.Len())
	for v := range lists {
		lists[v] = pool.TopN(v, n)
	}
	colleague, viewer := findColleagues(t, pool)

	type entries = []matching.Entry
	corruptions := []struct {
		viewer  int
		why     string
		corrupt func(entries) entries
	}{
		{0, "lists itself", func(l entries) entries { return append(l[:n-1], matching.Entry{Other: 0}) }},
		{1, "stale score", func(l entries) entries { l[1].Score += 0.001; return l }},
		{2, "out of order", func(l entries) entries { l[0], l[1] = l[1], l[0]; return l }},
		{3, "duplicate", func(l entries) entries { return append(l[:n-1], l[n-2]) }},
		{4, "too long", func(entries) entries { return pool.TopN(4, n+1) }},
		{5, "index out of range", func(l entries) entries { l[n-1].Other = pool.Len(); return l }},
		{6, "negative index", func(l entries) entries { l[n-1].Other = -1; return l }},
		{viewer, "lists a colleague", func(l entries) entries {
			return append(l[:n-1], matching.Entry{Other: colleague, Score: pool.Score(viewer, colleague)})
		}},
	}
	var want []int
	for _, c := range corruptions {
		lists[c.viewer] = c.corrupt(slices.Clone(lists[c.viewer]))
		want = append(want, c.viewer)
	}

	changed := pool.Update(lists, nil, n)
	if !slices.Equal(changed, want) {
		t.Fatalf("changed = %v, want the corrupted %v", changed, want)
	}
	for v := range lists {
		if !slices.Equal(lists[v], pool.TopN(v, n)) {
			t.Fatalf("list of %d not repaired: %+v", v, lists[v])
		}
	}
}

// findColleagues returns two members of the same company, the second not
// among the first seven (which TestUpdateRecomputesInvalidLists corrupts
// otherwise).
func findColleagues(t *testing.T, pool *matching.Pool) (colleague, viewer int) {
	for viewer = 7; viewer < pool.Len(); viewer++ {
		for colleague = range pool.Len() {
			if colleague != viewer && !pool.Eligible(viewer, colleague) {
				return colleague, viewer
			}
		}
	}
	t.Fatal("demo pool has no colleagues")
	return 0, 0
}

func TestUpdateInsertsNewcomerOnlyWhereItBeatsTheLast(t *testing.T) {
	const n = 3
	profiles := demoProfiles(31, 60)
	pool := matching.NewPool(profiles[:59])
	lists := make([][]matching.Entry, pool.Len())
	for v := range lists {
		lists[v] = pool.TopN(v, n)
	}
	pool = matching.NewPool(profiles) // indexes unchanged: appended at the end
	lists = append(lists, nil)
	changed := pool.Update(lists, []int{59}, n)
	for v := range 59 {
		shouldChange := slices.ContainsFunc(lists[v], func(e matching.Entry) bool { return e.Other == 59 })
		if slices.Contains(changed, v) != shouldChange {
			t.Fatalf("viewer %d: changed=%v but newcomer listed=%v", v, slices.Contains(changed, v), shouldChange)
		}
	}
	if !slices.Equal(lists[59], pool.TopN(59, n)) {
		t.Fatalf("newcomer's list %+v", lists[59])
	}
}

// TestPairsScoredCountsAFullUpdateOnce: a full update scores every pair of
// members once, and PairsScored says so. (Not parallel: the count is the
// process's.)
func TestPairsScoredCountsAFullUpdateOnce(t *testing.T) {
	const size, n = 300, 3
	pool := matching.NewPool(demodata.Generate(5, size))
	lists := make([][]matching.Entry, size)
	reserves := make([]matching.Reserve, size)
	all := make([]int, size)
	for v := range all {
		all[v] = v
	}
	before := matching.PairsScored()
	if _, _, err := pool.UpdateReserved(context.Background(), lists, reserves, all, n, matching.ReserveDepth); err != nil {
		t.Fatal(err)
	}
	// Pairs neither side may meet (same company) are scored too: runs of
	// candidates are scored whole.
	if got := matching.PairsScored() - before; got != size*(size-1)/2 {
		t.Errorf("a full update of %d members counted %d pair scores; it has %d pairs", size, got, size*(size-1)/2)
	}
	// A newcomer's update scores the newcomer against everyone (and checks
	// the stored scores of the lists it keeps, which this count includes).
	before = matching.PairsScored()
	next, _, err := pool.Apply(context.Background(), demodata.Generate(5, size+1)[size:], nil)
	if err != nil {
		t.Fatal(err)
	}
	lists = append(lists, nil)
	if _, _, err := next.UpdateReserved(context.Background(), lists, append(reserves, matching.Reserve{}), []int{size}, n, matching.ReserveDepth); err != nil {
		t.Fatal(err)
	}
	if got := matching.PairsScored() - before; got < size || got > int64(size*(n+1)+size) {
		t.Errorf("a newcomer's update counted %d pair scores, want between %d and %d", got, size, size*(n+1)+size)
	}
}
