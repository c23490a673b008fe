package matching_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// checkFilled fills share (a fair share) up to maxAppearances and checks
// the result by brute force: it keeps every entry of share, fills only
// lists share left short, respects the cap, and leaves a list short only
// when every eligible member it lacks is at the cap. It returns the
// filled lists.
func checkFilled(t *testing.T, pool *matching.Pool, share [][]matching.Entry, n, maxAppearances int) [][]matching.Entry {
	t.Helper()
	filled, err := pool.FillShort(context.Background(), share, n, maxAppearances)
	if err != nil {
		t.Fatal(err)
	}
	size := pool.Len()
	appears := make([]int, size)
	for v, list := range filled {
		if len(share[v]) == n && !sameList(list, share[v]) {
			t.Fatalf("full list of %d changed by the fill: %v, was %v", v, list, share[v])
		}
		if len(list) > n {
			t.Fatalf("filled list of %d holds %d > %d", v, len(list), n)
		}
		for k, e := range list {
			if !pool.Eligible(v, e.Other) || e.Score != pool.Score(v, e.Other) {
				t.Fatalf("filled list of %d names %v: ineligible or a stale score", v, e)
			}
			if k > 0 && !pool.Better(v, list[k-1], e) {
				t.Fatalf("filled list of %d out of order or duplicated: %v", v, list)
			}
			appears[e.Other]++
		}
		for _, e := range share[v] {
			if !slices.ContainsFunc(list, func(f matching.Entry) bool { return f.Other == e.Other }) {
				t.Fatalf("the fill dropped %d from the list of %d", e.Other, v)
			}
		}
	}
	for c, a := range appears {
		if a > maxAppearances {
			t.Fatalf("%d appears in %d lists after the fill, cap %d", c, a, maxAppearances)
		}
	}
	for v, list := range filled {
		if len(list) == n {
			continue
		}
		for c := range size {
			if pool.Eligible(v, c) && appears[c] < maxAppearances &&
				!slices.ContainsFunc(list, func(e matching.Entry) bool { return e.Other == c }) {
				t.Fatalf("list of %d is short (%d) while %d, eligible, is in %d < %d lists", v, len(list), c, appears[c], maxAppearances)
			}
		}
	}
	return filled
}

// checkCapped fails t unless lists are a capped assignment of pool as the
// rule defines it, checked by brute force over every pair:
//   - every list holds at most n distinct eligible others with their
//     current scores, best first (Better);
//   - nobody is in more than maxAppearances lists;
//   - no blocking pair: no viewer A and eligible B outside A's list where A
//     has room or ranks B above its worst entry, and B is in fewer than
//     maxAppearances lists or ranks A above one of the viewers listing B;
//   - so a list is short only when every eligible member it lacks is in
//     maxAppearances lists (checked on its own, for a clearer message),
//     and never when the viewer has more than n·size/maxAppearances+n−1
//     eligible candidates.
func checkCapped(t *testing.T, pool *matching.Pool, lists [][]matching.Entry, n, maxAppearances int) {
	t.Helper()
	size := pool.Len()
	if len(lists) != size {
		t.Fatalf("%d lists for %d members", len(lists), size)
	}
	holders := make([][]int, size)
	for v, list := range lists {
		if len(list) > n {
			t.Fatalf("list of %d holds %d > %d", v, len(list), n)
		}
		for k, e := range list {
			if e.Other < 0 || e.Other >= size || !pool.Eligible(v, e.Other) {
				t.Fatalf("list of %d names %d, not eligible", v, e.Other)
			}
			if e.Score != pool.Score(v, e.Other) {
				t.Fatalf("list of %d scores %d at %v, pool says %v", v, e.Other, e.Score, pool.Score(v, e.Other))
			}
			if k > 0 && !pool.Better(v, list[k-1], e) {
				t.Fatalf("list of %d out of order or duplicated at %d: %v", v, k, list)
			}
			holders[e.Other] = append(holders[e.Other], v)
		}
	}
	for c, hs := range holders {
		if len(hs) > maxAppearances {
			t.Fatalf("%d appears in %d lists, cap %d", c, len(hs), maxAppearances)
		}
	}
	for a, list := range lists {
		eligible := 0
		for b := range size {
			if !pool.Eligible(a, b) {
				continue
			}
			eligible++
			if slices.ContainsFunc(list, func(e matching.Entry) bool { return e.Other == b }) {
				continue
			}
			s := pool.Score(a, b)
			aWants := len(list) < n || pool.Better(a, matching.Entry{Other: b, Score: s}, list[len(list)-1])
			bTakes := len(holders[b]) < maxAppearances
			for _, h := range holders[b] {
				if pool.Better(b, matching.Entry{Other: a, Score: s}, matching.Entry{Other: h, Score: pool.Score(h, b)}) {
					bTakes = true
				}
			}
			if len(list) < n && len(holders[b]) < maxAppearances {
				t.Fatalf("list of %d is short (%d of %d) while eligible %d is in only %d lists", a, len(list), n, b, len(holders[b]))
			}
			if aWants && bTakes {
				t.Fatalf("blocking pair: %d would list %d (score %v) and %d would take them; list %v, holders of %d: %v",
					a, b, s, b, list, b, holders[b])
			}
		}
		// The guarantee the rule gives by counting places (see cap.go).
		if len(list) < n && (eligible-n+1)*maxAppearances > n*size {
			t.Fatalf("list of %d is short (%d of %d) with %d eligible candidates in an event of %d", a, len(list), n, eligible, size)
		}
		if eligible < n && len(list) != eligible {
			t.Fatalf("list of %d holds %d of its %d eligible candidates", a, len(list), eligible)
		}
	}
}

// capEvent is a random event changing step by step: members join, edit
// their profiles and leave.
type capEvent struct {
	rng      *rand.Rand
	demo     bool
	seed     int64
	profiles []attendee.Profile
	nextID   int
}

func (e *capEvent) newProfile() attendee.Profile {
	e.nextID++
	if e.demo {
		return demodata.Generate(e.seed, e.nextID)[e.nextID-1]
	}
	p := randomProfiles(e.rng, 1)[0]
	p.UserID = userID(e.nextID)
	p.DisplayName = fmt.Sprintf("Person %d", e.nextID)
	return p
}

// edited is profile with someone else's answers.
func (e *capEvent) edited(profile attendee.Profile) attendee.Profile {
	other := e.newProfile()
	other.UserID, other.DisplayName = profile.UserID, profile.DisplayName
	return other
}

// TestCappedAssignmentUnderChanges builds random events, computes their
// capped assignment, then applies random sequences of newcomers, edits and
// departures, repairing the assignment after each step. After every step
// the repaired lists must be a capped assignment (checked by brute force),
// equal the one computed from scratch (the assignment is unique), and every
// list the repair changed must be among those it reports.
//
// Small events rank everyone within one scan. Shallow ones rank few
// candidates per scan (ShallowRankings), so that rankings stop at a
// bound, are scanned below it, and are kept and refreshed between steps
// (CapState) in events small enough to check by brute force; kept-index
// ones also keep the index of who ranks whom from step to step however
// stale it grows (KeepRankIndexes). Every use of the index is checked
// against a scan (CheckIndexedOffers).
func TestCappedAssignmentUnderChanges(t *testing.T) {
	defer matching.CheckIndexedOffers()()
	for seed := range int64(12) {
		for _, demo := range []bool{false, true} {
			testCappedEventUnderChanges(t, "small", seed, demo, 20, 80, 25)
		}
	}
	defer matching.ShallowRankings(2, 0)()
	for seed := range int64(4) {
		for _, demo := range []bool{false, true} {
			testCappedEventUnderChanges(t, "shallow", seed+100, demo, 40, 60, 12)
		}
	}
	defer matching.KeepRankIndexes()()
	for seed := range int64(4) {
		for _, demo := range []bool{false, true} {
			testCappedEventUnderChanges(t, "kept-index", seed+200, demo, 40, 60, 12)
		}
	}
}

func testCappedEventUnderChanges(t *testing.T, kind string, seed int64, demo bool, minSize, sizeSpan, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(seed), 77))
	n := 1 + rng.IntN(4)
	maxAppearances := n + rng.IntN(n+1)
	size := minSize + rng.IntN(sizeSpan)
	name := fmt.Sprintf("%s/seed%d/demo=%v/n=%d/cap=%d/size=%d", kind, seed, demo, n, maxAppearances, size)
	t.Run(name, func(t *testing.T) {
		e := &capEvent{rng: rng, demo: demo, seed: seed + 100}
		for range size {
			e.profiles = append(e.profiles, e.newProfile())
		}
		pool := matching.NewPool(slices.Clone(e.profiles))
		lists, _, err := pool.FairShare(ctx, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkCapped(t, pool, lists, n, n)
		checkFilled(t, pool, lists, n, maxAppearances)
		// The same event through CapState, as the engine keeps it.
		state, repaired, _, err := pool.Assign(ctx, nil, n, maxAppearances)
		if err != nil || repaired {
			t.Fatalf("first Assign: repaired %v, %v", repaired, err)
		}

		for step := range steps {
			upserts, removals := e.randomChanges()
			next, moved, err := pool.Apply(ctx, upserts, removals)
			if err != nil {
				t.Fatal(err)
			}
			if !next.SameTermWeights(pool) {
				// New bio-term weights change every pair's score:
				// the engine starts again from scratch (Apply began
				// a new lineage, so Assign does not repair).
				scratch, _, err := next.FairShare(ctx, n, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkCapped(t, next, scratch, n, n)
				filled := checkFilled(t, next, scratch, n, maxAppearances)
				var wasRepaired bool
				state, wasRepaired, _, err = next.Assign(ctx, state.Moved(moved, next.Len()), n, maxAppearances)
				if err != nil || wasRepaired {
					t.Fatalf("step %d: new term weights, Assign repaired %v, %v", step, wasRepaired, err)
				}
				for v := range next.Len() {
					if !sameList(state.Lists()[v], filled[v]) {
						t.Fatalf("step %d: assigned list of %d is %v, from scratch %v", step, v, state.Lists()[v], scratch[v])
					}
				}
				pool, lists = next, scratch
				continue
			}
			repaired, changes := moveLists(pool, next, lists, moved, upserts)
			before := cloneLists(repaired)
			// Every other step starts rankings from reserves, as the
			// engine would after its update.
			var reserves []matching.Reserve
			if step%2 == 1 {
				reserves = fullReserves(t, next, n)
			}
			rewritten, _, err := next.RepairFairShare(ctx, repaired, changes, n, reserves)
			if err != nil {
				t.Fatal(err)
			}
			checkCapped(t, next, repaired, n, n)
			filled := checkFilled(t, next, repaired, n, maxAppearances)
			scratch, _, err := next.FairShare(ctx, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			for v := range next.Len() {
				if !sameList(repaired[v], scratch[v]) {
					t.Fatalf("step %d: repaired list of %d is %v, from scratch %v", step, v, repaired[v], scratch[v])
				}
				if !sameList(repaired[v], before[v]) && !slices.Contains(rewritten, v) {
					t.Fatalf("step %d: list of %d changed but is not reported", step, v)
				}
				for _, e := range repaired[v] {
					if slices.Contains(changes.Changed, e.Other) && !slices.Contains(rewritten, v) {
						t.Fatalf("step %d: list of %d shows changed member %d but is not reported", step, v, e.Other)
					}
				}
			}
			var wasRepaired bool
			state, wasRepaired, _, err = next.Assign(ctx, state.Moved(moved, next.Len()), n, maxAppearances)
			if err != nil || !wasRepaired {
				t.Fatalf("step %d: Assign repaired %v, %v", step, wasRepaired, err)
			}
			for v, list := range state.Share() {
				if !sameList(list, scratch[v]) {
					t.Fatalf("step %d: Assign's fair share list of %d is %v, from scratch %v", step, v, list, scratch[v])
				}
			}
			whole, _, err := next.CappedLists(ctx, n, maxAppearances, nil)
			if err != nil {
				t.Fatal(err)
			}
			for v := range next.Len() {
				if !sameList(state.Lists()[v], filled[v]) || !sameList(whole[v], filled[v]) {
					t.Fatalf("step %d: assigned list of %d is %v, from scratch %v, filled %v", step, v, state.Lists()[v], whole[v], filled[v])
				}
			}
			pool, lists = next, repaired
		}
	})
}

// randomChanges draws one step: some newcomers, edits and departures.
func (e *capEvent) randomChanges() (upserts []attendee.Profile, removals []string) {
	rng := e.rng
	touched := map[string]bool{}
	for range rng.IntN(4) {
		p := e.newProfile()
		upserts = append(upserts, p)
		e.profiles = append(e.profiles, p)
		touched[p.UserID] = true
	}
	for range rng.IntN(3) {
		k := rng.IntN(len(e.profiles))
		if touched[e.profiles[k].UserID] {
			continue
		}
		touched[e.profiles[k].UserID] = true
		e.profiles[k] = e.edited(e.profiles[k])
		upserts = append(upserts, e.profiles[k])
	}
	for range rng.IntN(3) {
		k := rng.IntN(len(e.profiles))
		if touched[e.profiles[k].UserID] || len(e.profiles) < 10 {
			continue
		}
		touched[e.profiles[k].UserID] = true
		removals = append(removals, e.profiles[k].UserID)
		e.profiles = slices.Delete(e.profiles, k, k+1)
	}
	return upserts, removals
}

// moveLists moves lists of from onto to (as the engine's cache does: an
// entry naming someone who left has Other -1) and says what changed: the
// upserted members, and the members listed by someone who left.
func moveLists(from, to *matching.Pool, lists [][]matching.Entry, moved []int, upserts []attendee.Profile) ([][]matching.Entry, matching.CapChanges) {
	out := make([][]matching.Entry, to.Len())
	var changes matching.CapChanges
	for old, list := range lists {
		if moved[old] < 0 {
			for _, e := range list {
				if moved[e.Other] >= 0 {
					changes.Freed = append(changes.Freed, moved[e.Other])
				}
			}
			continue
		}
		remapped := make([]matching.Entry, len(list))
		for k, e := range list {
			remapped[k] = matching.Entry{Other: moved[e.Other], Score: e.Score}
		}
		out[moved[old]] = remapped
	}
	for _, p := range upserts {
		i, _ := to.Index(p.UserID)
		changes.Changed = append(changes.Changed, i)
	}
	return out, changes
}

func sameList(a, b []matching.Entry) bool {
	return slices.Equal(a, b) || (len(a) == 0 && len(b) == 0)
}

// fullReserves scores every member against everyone, for the reserves.
func fullReserves(t *testing.T, pool *matching.Pool, n int) []matching.Reserve {
	t.Helper()
	lists := make([][]matching.Entry, pool.Len())
	reserves := make([]matching.Reserve, pool.Len())
	all := make([]int, pool.Len())
	for v := range all {
		all[v] = v
	}
	if _, _, err := pool.UpdateReserved(context.Background(), lists, reserves, all, n, matching.ReserveDepth); err != nil {
		t.Fatal(err)
	}
	return reserves
}

// TestCappedListsFromReserves: the reserves a full update leaves are a
// head start for the ranking, never a different answer.
func TestCappedListsFromReserves(t *testing.T) {
	ctx := context.Background()
	for seed := range int64(4) {
		pool := matching.NewPool(demoProfiles(seed+1, 300))
		const n, maxAppearances = 3, 4
		reserves := fullReserves(t, pool, n)
		seeded, stats, err := pool.CappedLists(ctx, n, maxAppearances, reserves)
		if err != nil {
			t.Fatal(err)
		}
		scanned, _, err := pool.CappedLists(ctx, n, maxAppearances, nil)
		if err != nil {
			t.Fatal(err)
		}
		share, _, err := pool.FairShare(ctx, n, reserves)
		if err != nil {
			t.Fatal(err)
		}
		checkCapped(t, pool, share, n, n)
		checkFilled(t, pool, share, n, maxAppearances)
		for v := range seeded {
			if !sameList(seeded[v], scanned[v]) {
				t.Fatalf("seed %d: list of %d is %v from reserves, %v from a scan", seed, v, seeded[v], scanned[v])
			}
		}
		if stats.Scans >= pool.Len() {
			t.Fatalf("seed %d: %d scans for %d members: the reserves were not used", seed, stats.Scans, pool.Len())
		}
	}
}

// TestFillShortTopsUpListsTheFairShareLeavesShort: under rules that let 40
// investors see only 6 startups, a fair share of 2 appearances fills 6 of
// the investors' 80 places; the fill lets startups take up to
// maxAppearances, and the investors left short are short only because
// every startup is at the cap. An event where nobody is short is left as
// it is.
func TestFillShortTopsUpListsTheFairShareLeavesShort(t *testing.T) {
	ctx := context.Background()
	var profiles []attendee.Profile
	for k := range 46 {
		kind := "investor"
		if k < 6 {
			kind = "startup"
		}
		profiles = append(profiles, attendee.Profile{UserID: userID(k), AttendeeType: kind,
			Interests: []string{fmt.Sprint("topic", k%5), fmt.Sprint("field", k%3)}})
	}
	pool, err := matching.NewPoolWithRules(ctx, profiles, []attendee.Rule{{ViewerType: "investor", CandidateType: "startup"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2
	share, _, err := pool.FairShare(ctx, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCapped(t, pool, share, n, n)
	for _, maxAppearances := range []int{2, 5, 40} {
		filled := checkFilled(t, pool, share, n, maxAppearances)
		places := 0
		for _, list := range filled {
			places += len(list)
		}
		if want := min(6*maxAppearances, 40*n); places != want {
			t.Fatalf("cap %d: %d places filled, want %d", maxAppearances, places, want)
		}
	}

	open := matching.NewPool(demoProfiles(2, 120))
	share, _, err = open.FairShare(ctx, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	filled, err := open.FillShort(ctx, share, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	for v := range share {
		if len(share[v]) != 3 || !sameList(filled[v], share[v]) {
			t.Fatalf("open event: list of %d is %v, fair share %v", v, filled[v], share[v])
		}
	}
}

// TestCappedListsRejectsACapBelowN: lists of n cannot all be filled when
// fewer than n places exist per member.
func TestCappedListsRejectsACapBelowN(t *testing.T) {
	pool := matching.NewPool(demoProfiles(1, 10))
	if _, _, err := pool.CappedLists(context.Background(), 3, 2, nil); err == nil {
		t.Fatal("a cap of 2 for lists of 3 was accepted")
	}
}

// TestCappedListsStops: a done context stops the assignment with its error.
func TestCappedListsStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pool := matching.NewPool(demoProfiles(1, 500))
	if _, _, err := pool.CappedLists(ctx, 3, 6, nil); err == nil || ctx.Err() == nil {
		t.Fatalf("got %v, want the context's error", err)
	}
}
