package matching_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

// eligibleOracle says from the raw profiles alone whether b may appear in
// a's list, as the README states the rules: not oneself, not a colleague,
// neither excluded the other, a shared language when both list some, and
// under rules only a type a rule allows for a's type (a member without a
// type, or of a type no rule names, sees and is seen by nobody).
func eligibleOracle(a, b attendee.Profile, rules []attendee.Rule) bool {
	norm := matching.NormalizeTag
	if a.UserID == b.UserID {
		return false
	}
	if c := norm(a.Company); c != "" && c == norm(b.Company) {
		return false
	}
	if slices.Contains(a.Excluded, b.UserID) || slices.Contains(b.Excluded, a.UserID) {
		return false
	}
	langs := func(p attendee.Profile) map[string]bool {
		set := map[string]bool{}
		for _, l := range p.Languages {
			if k := norm(l); k != "" {
				set[k] = true
			}
		}
		return set
	}
	if la, lb := langs(a), langs(b); len(la) > 0 && len(lb) > 0 {
		shared := false
		for l := range la {
			shared = shared || lb[l]
		}
		if !shared {
			return false
		}
	}
	if len(rules) > 0 {
		ta, tb := norm(a.AttendeeType), norm(b.AttendeeType)
		if ta == "" || tb == "" {
			return false
		}
		for _, r := range rules {
			if norm(r.ViewerType) == ta && norm(r.CandidateType) == tb {
				return true
			}
		}
		return false
	}
	return true
}

var (
	attendeeTypes = []string{"", "exhibitor", "Exhibitor ", "buyer", "investor", " INVESTOR", "startup", "press"}
	ruleTypes     = []string{"exhibitor", "buyer", "investor", "startup", "Staff"}
	languageNames = []string{"en", " EN", "de", "fr", "es", "  "}
)

// withEligibility gives profiles random types and languages, and each
// random pair an exclusion recorded on both sides, as the store reads them.
func withEligibility(rng *rand.Rand, profiles []attendee.Profile, exclusions int) []attendee.Profile {
	for i := range profiles {
		p := &profiles[i]
		p.AttendeeType = attendeeTypes[rng.IntN(len(attendeeTypes))]
		p.Languages = nil
		for range rng.IntN(3) {
			p.Languages = append(p.Languages, languageNames[rng.IntN(len(languageNames))])
		}
	}
	for range exclusions {
		a, b := rng.IntN(len(profiles)), rng.IntN(len(profiles))
		if a != b {
			exclude(profiles, a, b)
		}
	}
	return profiles
}

// exclude records an exclusion of a pair on both profiles, as
// store.LoadSnapshot reads match_exclusions. The lists are copied, so
// profiles sharing them with a pool are not changed under it.
func exclude(profiles []attendee.Profile, a, b int) {
	profiles[a].Excluded = append(slices.Clone(profiles[a].Excluded), profiles[b].UserID)
	profiles[b].Excluded = append(slices.Clone(profiles[b].Excluded), profiles[a].UserID)
}

// unexclude removes every exclusion of a pair.
func unexclude(profiles []attendee.Profile, a, b int) {
	drop := func(p *attendee.Profile, id string) {
		p.Excluded = slices.DeleteFunc(slices.Clone(p.Excluded), func(x string) bool { return x == id })
	}
	drop(&profiles[a], profiles[b].UserID)
	drop(&profiles[b], profiles[a].UserID)
}

func randomRules(rng *rand.Rand) []attendee.Rule {
	var rules []attendee.Rule
	for _, v := range ruleTypes {
		for _, c := range ruleTypes {
			if rng.IntN(3) == 0 {
				rules = append(rules, attendee.Rule{ViewerType: strings.ToUpper(v[:1]) + v[1:], CandidateType: c})
			}
		}
	}
	return rules
}

func poolWithRules(t *testing.T, profiles []attendee.Profile, rules []attendee.Rule) *matching.Pool {
	t.Helper()
	pool, err := matching.NewPoolWithRules(context.Background(), profiles, rules)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func checkEligibleMatchesOracle(t *testing.T, label string, pool *matching.Pool, rules []attendee.Rule) {
	t.Helper()
	for i := range pool.Len() {
		for j := range pool.Len() {
			if got, want := pool.Eligible(i, j), eligibleOracle(pool.Profile(i), pool.Profile(j), rules); got != want {
				t.Fatalf("%s: Eligible(%s, %s) = %v, want %v\n%+v\n%+v", label, pool.Profile(i).UserID, pool.Profile(j).UserID,
					got, want, pool.Profile(i), pool.Profile(j))
			}
		}
	}
}

func TestEligibleRulesLanguagesExclusions(t *testing.T) {
	t.Parallel()
	profiles := []attendee.Profile{
		{UserID: userID(0), AttendeeType: "Exhibitor", Languages: []string{"English"}},
		{UserID: userID(1), AttendeeType: " buyer ", Languages: []string{"german", "ENGLISH"}},
		{UserID: userID(2), AttendeeType: "investor"},
		{UserID: userID(3), AttendeeType: "startup", Languages: []string{"French"}},
		{UserID: userID(4)}, // no type
		{UserID: userID(5), AttendeeType: "buyer", Languages: []string{"German"}, Excluded: []string{userID(1)}},
		{UserID: userID(6), AttendeeType: "press"}, // a type no rule names
	}
	rules := []attendee.Rule{
		{ViewerType: "exhibitor", CandidateType: "buyer"},
		{ViewerType: "BUYER", CandidateType: "exhibitor"},
		{ViewerType: "investor", CandidateType: "startup"}, // investors see startups, not the reverse
	}
	pool := poolWithRules(t, profiles, rules)
	for _, tc := range []struct {
		i, j int
		want bool
		why  string
	}{
		{0, 1, true, "exhibitor sees buyer, types and languages compare case- and space-insensitively"},
		{1, 0, true, "buyer sees exhibitor"},
		{0, 5, false, "exhibitor and buyer share no language"},
		{2, 3, true, "investor sees startup; the investor lists no language"},
		{3, 2, false, "no rule lets a startup see an investor"},
		{0, 0, false, "self"},
		{1, 1, false, "self"},
		{4, 0, false, "no type under rules sees nobody"},
		{0, 4, false, "no type under rules is seen by nobody"},
		{6, 0, false, "a type no rule names sees nobody"},
		{0, 6, false, "a type no rule names is seen by nobody"},
		{1, 5, false, "5 excluded 1"},
		{5, 1, false, "an exclusion works both ways, even recorded on one side"},
		{0, 2, false, "no rule for exhibitor to investor"},
	} {
		if got := pool.Eligible(tc.i, tc.j); got != tc.want {
			t.Errorf("Eligible(%d,%d) = %v, want %v (%s)", tc.i, tc.j, got, tc.want, tc.why)
		}
	}

	// Without rules, types do not matter; languages and exclusions still do.
	free := matching.NewPool(profiles)
	for _, tc := range []struct {
		i, j int
		want bool
	}{{4, 0, true}, {3, 2, true}, {6, 2, true}, {0, 5, false}, {1, 5, false}, {0, 3, false}, {2, 5, true}} {
		if got := free.Eligible(tc.i, tc.j); got != tc.want {
			t.Errorf("without rules: Eligible(%d,%d) = %v, want %v", tc.i, tc.j, got, tc.want)
		}
	}
	for i := range profiles {
		if list := pool.TopN(4, 3); len(list) != 0 {
			t.Errorf("untyped member's list under rules: %v", list)
		}
		for _, e := range pool.TopN(i, len(profiles)) {
			if !eligibleOracle(profiles[i], profiles[e.Other], rules) {
				t.Errorf("TopN of %d lists %d", i, e.Other)
			}
		}
	}
}

// TestEligibleEqualsOracle: random events with every kind of restriction.
func TestEligibleEqualsOracle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 1))
	for round := range 20 {
		profiles := withEligibility(rng, randomProfiles(rng, 60), 40)
		var rules []attendee.Rule
		if round%4 != 0 {
			rules = randomRules(rng)
		}
		checkEligibleMatchesOracle(t, fmt.Sprintf("round %d", round), poolWithRules(t, profiles, rules), rules)
	}
}

// TestApplyWithExclusionsEqualsNewPool: exclusions added and removed (both
// members' profiles upserted, as the change log makes the store read them),
// types and languages edited, members joining and leaving; after every
// round the derived pool answers as NewPoolWithRules over the same profiles
// does, and both as the oracle.
func TestApplyWithExclusionsEqualsNewPool(t *testing.T) {
	t.Parallel()
	const n = 3
	rng := rand.New(rand.NewPCG(5, 8))
	rules := randomRules(rng)
	profiles := withEligibility(rng, randomProfiles(rng, 80), 30)
	pool := poolWithRules(t, slices.Clone(profiles), rules)
	next := 1000
	for round := range 30 {
		upserted := map[int]bool{}
		var removals []string
		for range 1 + rng.IntN(4) {
			a, b := rng.IntN(len(profiles)), rng.IntN(len(profiles))
			if a == b {
				continue
			}
			switch rng.IntN(4) {
			case 0:
				unexclude(profiles, a, b)
			case 1:
				profiles[a].AttendeeType = attendeeTypes[rng.IntN(len(attendeeTypes))]
				profiles[a].Languages = []string{languageNames[rng.IntN(len(languageNames))], fmt.Sprintf("lang %d", round)}
			default:
				exclude(profiles, a, b)
			}
			upserted[a], upserted[b] = true, true
		}
		if rng.IntN(2) == 0 { // a newcomer, excluded by someone at once
			p := withEligibility(rng, randomProfiles(rng, 1), 0)[0]
			p.UserID = userID(next)
			next++
			profiles = append(profiles, p)
			exclude(profiles, len(profiles)-1, rng.IntN(len(profiles)-1))
			for k := range profiles {
				if slices.Contains(profiles[k].Excluded, p.UserID) {
					upserted[k] = true
				}
			}
			upserted[len(profiles)-1] = true
		}
		if rng.IntN(3) == 0 { // a departure; exclusions naming them stay, as in the database
			k := rng.IntN(len(profiles))
			if !upserted[k] {
				removals = append(removals, profiles[k].UserID)
				profiles = slices.Delete(profiles, k, k+1)
				moved := map[int]bool{}
				for u := range upserted {
					if u > k {
						moved[u-1] = true
					} else {
						moved[u] = true
					}
				}
				upserted = moved
			}
		}
		var upserts []attendee.Profile
		for k := range upserted {
			upserts = append(upserts, profiles[k])
		}
		derived, _, err := pool.Apply(context.Background(), upserts, removals)
		if err != nil {
			t.Fatal(err)
		}
		order := slices.Clone(profiles)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		fresh := poolWithRules(t, order, rules)
		label := fmt.Sprintf("round %d", round)
		assertSamePool(t, label, fresh, derived, n)
		checkEligibleMatchesOracle(t, label, derived, rules)
		pool = derived
	}
}

// TestUpdateNeverListsAnIneligiblePair runs an event through batches under
// directional rules while members join, exclude each other, take
// exclusions back and change type or languages, each change claiming the
// members it touches as the triggers enqueue them. After every batch each
// list is exactly the top N of the members the oracle allows, so no list
// ever holds an excluded, disallowed or language-less pair; and shards
// merged on another worker's pool give the same lists.
func TestUpdateNeverListsAnIneligiblePair(t *testing.T) {
	t.Parallel()
	const n = 3
	rng := rand.New(rand.NewPCG(23, 3))
	rules := []attendee.Rule{
		{ViewerType: "exhibitor", CandidateType: "buyer"},
		{ViewerType: "buyer", CandidateType: "exhibitor"},
		{ViewerType: "buyer", CandidateType: "buyer"},
		{ViewerType: "investor", CandidateType: "startup"},
		{ViewerType: "startup", CandidateType: "startup"},
	}
	newcomers := withEligibility(rng, demoProfiles(31, 200), 0)
	var profiles []attendee.Profile
	stored := map[string][]storedEntry{}
	for round := range 80 {
		claimed := map[string]bool{}
		if len(newcomers) > 0 && (len(profiles) < 20 || rng.IntN(2) == 0) {
			for range 1 + rng.IntN(6) {
				if len(newcomers) == 0 {
					break
				}
				profiles = append(profiles, newcomers[0])
				claimed[newcomers[0].UserID] = true
				newcomers = newcomers[1:]
			}
		}
		for range rng.IntN(4) {
			a, b := rng.IntN(len(profiles)), rng.IntN(len(profiles))
			if a == b {
				continue
			}
			// Most exclusions are of someone listed: a decline.
			if list := stored[profiles[a].UserID]; len(list) > 0 && rng.IntN(3) > 0 {
				b = slices.IndexFunc(profiles, func(p attendee.Profile) bool { return p.UserID == list[0].otherID })
			}
			switch rng.IntN(5) {
			case 0:
				unexclude(profiles, a, b)
			case 1:
				profiles[a].AttendeeType = attendeeTypes[rng.IntN(len(attendeeTypes))]
				profiles[a].Languages = []string{languageNames[rng.IntN(len(languageNames))]}
			default:
				exclude(profiles, a, b)
			}
			claimed[profiles[a].UserID], claimed[profiles[b].UserID] = true, true
		}
		var claimedIDs []string
		for id := range claimed {
			claimedIDs = append(claimedIDs, id)
		}
		slices.Sort(claimedIDs)

		order := slices.Clone(profiles)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		pool := poolWithRules(t, order, rules)
		lists := loadLists(t, pool, stored)
		sharded := cloneLists(lists)
		claimedAt := indexesOf(pool, claimedIDs)
		changed := pool.Update(lists, claimedAt, n)

		for v := range pool.Len() {
			var want []matching.Entry
			for _, e := range bruteTopN(pool, v, pool.Len()) {
				if eligibleOracle(pool.Profile(v), pool.Profile(e.Other), rules) && len(want) < n {
					want = append(want, e)
				}
			}
			if !slices.Equal(lists[v], want) {
				t.Fatalf("round %d: list of %s = %v, want %v", round, pool.Profile(v).UserID, lists[v], want)
			}
		}

		other := poolWithRules(t, slices.Clone(profiles), rules)
		offers, err := other.ShardOffers(context.Background(), loadLists(t, other, stored), indexesOf(other, claimedIDs), n, round%2, 2)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := pool.ShardOffers(context.Background(), cloneLists(sharded), claimedAt, n, 1-round%2, 2)
		if err != nil {
			t.Fatal(err)
		}
		shardChanged, err := pool.UpdateWithOffers(context.Background(), sharded, claimedAt, n, []*matching.Offers{offers, rest})
		if err != nil {
			t.Fatalf("round %d: merge: %v", round, err)
		}
		if !slices.Equal(shardChanged, changed) {
			t.Fatalf("round %d: shards changed %v, Update %v", round, shardChanged, changed)
		}
		for v := range lists {
			if !slices.Equal(sharded[v], lists[v]) {
				t.Fatalf("round %d: sharded list of %s = %v, Update's %v", round, pool.Profile(v).UserID, sharded[v], lists[v])
			}
		}
		stored = saveLists(pool, lists)
	}
}

// TestReservesNeverListAnIneligiblePair is the worker's path: one pool
// derived through Apply round after round, lists and reserves carried
// over, while members decline each other, take declines back, change type
// or languages, join and leave under directional rules. After every update
// no list holds a pair the oracle forbids; once every change is claimed,
// each list is exactly the allowed top N.
func TestReservesNeverListAnIneligiblePair(t *testing.T) {
	t.Parallel()
	const n, depth = 3, matching.ReserveDepth
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(29, 7))
	rules := []attendee.Rule{
		{ViewerType: "exhibitor", CandidateType: "buyer"},
		{ViewerType: "buyer", CandidateType: "exhibitor"},
		{ViewerType: "investor", CandidateType: "startup"},
		{ViewerType: "startup", CandidateType: "startup"},
		{ViewerType: "startup", CandidateType: "buyer"},
	}
	newcomers := withEligibility(rng, demoProfiles(43, 400), 0)
	pool := poolWithRules(t, slices.Clone(newcomers[:150]), rules)
	newcomers = newcomers[150:]
	lists := make([][]matching.Entry, pool.Len())
	reserves := make([]matching.Reserve, pool.Len())
	all := make([]int, pool.Len())
	for i := range all {
		all[i] = i
	}
	if _, _, err := pool.UpdateReserved(ctx, lists, reserves, all, n, depth); err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	checked := 0
	for round := range 150 {
		changed := map[string]attendee.Profile{}
		profile := func(i int) attendee.Profile {
			if p, ok := changed[pool.Profile(i).UserID]; ok {
				return p
			}
			return pool.Profile(i)
		}
		var removals []string
		for range 1 + rng.IntN(4) {
			a, b := rng.IntN(pool.Len()), rng.IntN(pool.Len())
			if list := lists[a]; len(list) > 0 && list[0].Other >= 0 && rng.IntN(2) == 0 {
				b = list[0].Other // a decline of one's first match
			}
			if a == b || slices.Contains(removals, pool.Profile(a).UserID) || slices.Contains(removals, pool.Profile(b).UserID) {
				continue
			}
			pair := []attendee.Profile{profile(a), profile(b)}
			switch rng.IntN(6) {
			case 0:
				unexclude(pair, 0, 1)
			case 1:
				pair[0].AttendeeType = attendeeTypes[rng.IntN(len(attendeeTypes))]
				pair[0].Languages = []string{languageNames[rng.IntN(len(languageNames))]}
			case 2:
				if _, ok := changed[pair[0].UserID]; !ok && pool.Len() > 100 {
					removals = append(removals, pair[0].UserID)
					continue
				}
			default:
				exclude(pair, 0, 1)
			}
			changed[pair[0].UserID], changed[pair[1].UserID] = pair[0], pair[1]
		}
		if len(newcomers) > 0 && rng.IntN(2) == 0 {
			changed[newcomers[0].UserID] = newcomers[0]
			newcomers = newcomers[1:]
		}
		var upserts []attendee.Profile
		for _, p := range changed {
			upserts = append(upserts, p)
		}
		slices.SortFunc(upserts, func(a, b attendee.Profile) int { return strings.Compare(a.UserID, b.UserID) })
		next, moved, err := pool.Apply(ctx, upserts, removals)
		if err != nil {
			t.Fatal(err)
		}
		lists, reserves = remapLists(next, lists, reserves, moved)
		pool = next
		for _, id := range removals {
			delete(pending, id)
		}
		for _, p := range upserts {
			pending[p.UserID] = true
		}

		var claimed []int
		var claimedIDs []string
		for id := range pending {
			if rng.IntN(4) == 0 && round < 140 {
				continue // claimed by a later batch
			}
			i, _ := pool.Index(id)
			claimed = append(claimed, i)
			claimedIDs = append(claimedIDs, id)
		}
		slices.Sort(claimed)
		if _, _, err := pool.UpdateReserved(ctx, lists, reserves, claimed, n, depth); err != nil {
			t.Fatal(err)
		}
		for _, id := range claimedIDs {
			delete(pending, id)
		}
		for v, list := range lists {
			for _, e := range list {
				if !eligibleOracle(pool.Profile(v), pool.Profile(e.Other), rules) {
					t.Fatalf("round %d: %s lists %s, whom they may not meet", round, pool.Profile(v).UserID, pool.Profile(e.Other).UserID)
				}
			}
		}
		if len(pending) > 0 {
			continue
		}
		checked++
		for v := range pool.Len() {
			var want []matching.Entry
			for _, e := range bruteTopN(pool, v, pool.Len()) {
				if eligibleOracle(pool.Profile(v), pool.Profile(e.Other), rules) && len(want) < n {
					want = append(want, e)
				}
			}
			if !slices.Equal(lists[v], want) {
				t.Fatalf("round %d: list of %s = %v, want %v", round, pool.Profile(v).UserID, lists[v], want)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d rounds were checked against the allowed top N", checked)
	}
}

// BenchmarkTopNWithEligibility is BenchmarkTopN on an event that uses every
// restriction: rules over five types, languages on most members and an
// exclusion for one member in ten.
func BenchmarkTopNWithEligibility(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	profiles := withEligibility(rng, demoProfiles(1, benchPoolSize), benchPoolSize/10)
	pool, err := matching.NewPoolWithRules(context.Background(), profiles, randomRules(rng))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	pairs, viewer := 0, 0
	for b.Loop() {
		pool.TopN(viewer, benchListLen)
		pairs += pool.Len() - 1
		viewer = (viewer + 1) % pool.Len()
	}
	reportPairsPerSecond(b, pairs)
}
