package matching_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

// TestApplyMatchesAFreshPool applies rounds of random arrivals, edits and
// departures (with tags and companies no earlier profile had) and checks
// after every round that the derived pool answers exactly as a pool built
// from scratch over the same profiles: every score, every top-N list, every
// reason, and that moved maps each surviving member to its new index.
func TestApplyMatchesAFreshPool(t *testing.T) {
	t.Parallel()
	const n = 4
	rng := rand.New(rand.NewPCG(3, 5))
	profiles := randomProfiles(rng, 120)
	pool := matching.NewPool(slices.Clone(profiles))
	used := map[string]bool{}
	for _, p := range profiles {
		used[p.UserID] = true
	}
	// Newcomers' IDs fall anywhere in the order, so tie-break ranks must
	// be merged, not appended.
	newID := func() string {
		for {
			id := userID(rng.IntN(1_000_000))
			if !used[id] {
				used[id] = true
				return id
			}
		}
	}

	for round := range 40 {
		current := map[string]attendee.Profile{}
		for _, p := range profiles {
			current[p.UserID] = p
		}
		var upserts []attendee.Profile
		var removals []string
		for range rng.IntN(6) { // arrivals, some with never-seen tags and names
			p := randomProfiles(rng, 1)[0]
			p.UserID = newID()
			if rng.IntN(2) == 0 {
				p.Interests = append(p.Interests, fmt.Sprintf("brand new tag %d", round))
				p.Offering = append(p.Offering, fmt.Sprintf("new offer %d", round))
				p.Company = fmt.Sprintf("Startup %d", round)
			}
			upserts = append(upserts, p)
		}
		touched := map[string]bool{}
		for range rng.IntN(5) { // edits and departures of existing members
			victim := profiles[rng.IntN(len(profiles))]
			if touched[victim.UserID] {
				continue
			}
			touched[victim.UserID] = true
			if rng.IntN(2) == 0 {
				removals = append(removals, victim.UserID)
			} else {
				upserts = append(upserts, editProfile(rng, victim, profiles))
			}
		}
		removals = append(removals, userID(2_000_000+round)) // unknown: ignored

		next, moved, err := pool.Apply(context.Background(), upserts, removals)
		if err != nil {
			t.Fatalf("round %d: Apply: %v", round, err)
		}
		for i, to := range moved {
			id := pool.Profile(i).UserID
			gone := slices.Contains(removals, id)
			switch {
			case gone && to != -1:
				t.Fatalf("round %d: removed %s moved to %d", round, id, to)
			case !gone && (to < 0 || next.Profile(to).UserID != id):
				t.Fatalf("round %d: %s moved to %d", round, id, to)
			}
		}

		for _, id := range removals {
			delete(current, id)
		}
		for _, p := range upserts {
			current[p.UserID] = p
		}
		profiles = profiles[:0]
		for _, p := range current {
			profiles = append(profiles, p)
		}
		slices.SortFunc(profiles, func(a, b attendee.Profile) int { return cmpString(a.UserID, b.UserID) })
		rng.Shuffle(len(profiles), func(a, b int) { profiles[a], profiles[b] = profiles[b], profiles[a] })
		fresh := matching.NewPool(slices.Clone(profiles))
		assertSamePool(t, fmt.Sprintf("round %d", round), fresh, next, n)
		pool = next
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// assertSamePool compares two pools of the same profiles, in any order.
func assertSamePool(t *testing.T, label string, want, got *matching.Pool, n int) {
	t.Helper()
	if want.Len() != got.Len() {
		t.Fatalf("%s: %d profiles, want %d", label, got.Len(), want.Len())
	}
	gotIndex := func(i int) int {
		j, ok := got.Index(want.Profile(i).UserID)
		if !ok {
			t.Fatalf("%s: %s missing", label, want.Profile(i).UserID)
		}
		return j
	}
	for i := range want.Len() {
		gi := gotIndex(i)
		for j := range want.Len() {
			gj := gotIndex(j)
			if want.Score(i, j) != got.Score(gi, gj) || want.Eligible(i, j) != got.Eligible(gi, gj) {
				t.Fatalf("%s: pair %s/%s scores %v (eligible %v), want %v (%v)", label,
					want.Profile(i).UserID, want.Profile(j).UserID,
					got.Score(gi, gj), got.Eligible(gi, gj), want.Score(i, j), want.Eligible(i, j))
			}
		}
		wantList, gotList := want.TopN(i, n), got.TopN(gi, n)
		if len(wantList) != len(gotList) {
			t.Fatalf("%s: list of %s has %d entries, want %d", label, want.Profile(i).UserID, len(gotList), len(wantList))
		}
		for k := range wantList {
			w, g := wantList[k], gotList[k]
			if want.Profile(w.Other).UserID != got.Profile(g.Other).UserID || w.Score != g.Score {
				t.Fatalf("%s: list of %s differs at rank %d", label, want.Profile(i).UserID, k+1)
			}
			if fmt.Sprint(want.Reasons(i, w.Other)) != fmt.Sprint(got.Reasons(gi, g.Other)) {
				t.Fatalf("%s: reasons for %s/%s differ", label, want.Profile(i).UserID, want.Profile(w.Other).UserID)
			}
		}
	}
}

// TestApplyLeavesTheOldPoolIntact derives pools from one base concurrently
// (run with -race) and checks the base still answers as before.
func TestApplyLeavesTheOldPoolIntact(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 9))
	profiles := randomProfiles(rng, 80)
	base := matching.NewPool(slices.Clone(profiles))
	reference := matching.NewPool(slices.Clone(profiles))

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := randomProfiles(rand.New(rand.NewPCG(uint64(w), 1)), 1)[0]
			p.UserID = userID(500 + w)
			p.Interests = []string{fmt.Sprintf("only worker %d has this", w)}
			edited := profiles[w]
			edited.Interests = []string{fmt.Sprintf("edited by %d", w)}
			if _, _, err := base.Apply(context.Background(), []attendee.Profile{p, edited}, []string{profiles[10+w].UserID}); err != nil {
				t.Errorf("Apply: %v", err)
			}
		}()
	}
	wg.Wait()
	assertSamePool(t, "base after Apply", reference, base, 3)
}

func TestApplyRejectsAmbiguousChanges(t *testing.T) {
	t.Parallel()
	profiles := randomProfiles(rand.New(rand.NewPCG(1, 1)), 5)
	pool := matching.NewPool(profiles)
	for name, call := range map[string]func(){
		"twice": func() { _, _, _ = pool.Apply(context.Background(), []attendee.Profile{profiles[0], profiles[0]}, nil) },
		"upsert and removal": func() {
			_, _, _ = pool.Apply(context.Background(), []attendee.Profile{profiles[0]}, []string{profiles[0].UserID})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Apply did not panic", name)
				}
			}()
			call()
		}()
	}
}
