package matching_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

// TestReservesKeepEveryListTopN runs an event the way a worker sees it
// under churn: members join, edit and leave; the pool follows through
// Apply; some changes wait a round before they are claimed (still queued);
// some commits are refused, so the stored lists stay as they were while the
// reserves computed for them are kept; lists that name departed or edited
// members are repaired from reserves rather than claimed. Whenever nothing
// is pending and the round's commit landed, every list must be the
// brute-force top-N, and reserves must have spared most of the rescoring a
// plain update would do.
func TestReservesKeepEveryListTopN(t *testing.T) {
	t.Parallel()
	// Few spares run out often, which exercises the bound and the
	// fallback to rescoring; ReserveDepth is what workers use.
	for _, depth := range []int{0, 1, 2, matching.ReserveDepth} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			t.Parallel()
			checkReserves(t, depth, uint64(depth)+3)
		})
	}
}

func checkReserves(t *testing.T, depth int, seed uint64) {
	const n = 3
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 5))
	newcomers := demoProfiles(41, 900)
	current := slices.Clone(newcomers[:250])
	newcomers = newcomers[250:]

	pool := matching.NewPool(current)
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
	rescoredTotal, plainTotal, checked := 0, 0, 0 // rescored beyond the claimed lists
	weightChanges := 0
	for round := range 200 {
		// The round's changes.
		var upserts []attendee.Profile
		var removals []string
		touched := map[string]bool{}
		for range 1 + rng.IntN(6) {
			switch k := rng.IntN(pool.Len()); rng.IntN(4) {
			case 0:
				if len(newcomers) > 0 && !touched[newcomers[0].UserID] {
					upserts = append(upserts, newcomers[0])
					touched[newcomers[0].UserID] = true
					newcomers = newcomers[1:]
				}
			case 1:
				if id := pool.Profile(k).UserID; !touched[id] && pool.Len() > 50 {
					removals = append(removals, id)
					touched[id] = true
				}
			default:
				if id := pool.Profile(k).UserID; !touched[id] {
					others := make([]attendee.Profile, pool.Len())
					for i := range others {
						others[i] = pool.Profile(i)
					}
					upserts = append(upserts, editProfile(rng, pool.Profile(k), others))
					touched[id] = true
				}
			}
		}
		next, moved, err := pool.Apply(ctx, upserts, removals)
		if err != nil {
			t.Fatal(err)
		}
		lists, reserves = remapLists(next, lists, reserves, moved)
		if !next.SameTermWeights(pool) {
			// A term changed class: every list is scored again (the
			// reserves ended with the new pool's lineage).
			lists = matching.MarkForRescore(lists)
			weightChanges++
		}
		for _, id := range removals {
			delete(pending, id)
		}
		for _, p := range upserts {
			pending[p.UserID] = true
		}
		plainTotal += countInvalid(next, lists, n)
		pool = next

		// Claim what is queued, except that a change may wait a round.
		var claimed []int
		var claimedIDs []string
		for id := range pending {
			if rng.IntN(4) == 0 && round < 190 {
				continue
			}
			i, _ := pool.Index(id)
			claimed = append(claimed, i)
			claimedIDs = append(claimedIDs, id)
		}
		slices.Sort(claimed)
		updated := slices.Clone(lists)
		_, rescored, err := pool.UpdateReserved(ctx, updated, reserves, claimed, n, depth)
		if err != nil {
			t.Fatal(err)
		}
		rescoredTotal += rescored - len(claimed)
		if rng.IntN(6) == 0 {
			continue // refused: the lists stay, the claims go back to the queue
		}
		lists = updated
		for _, id := range claimedIDs {
			delete(pending, id)
		}
		if len(pending) > 0 {
			continue
		}
		checked++
		for v := range pool.Len() {
			if want := bruteTopN(pool, v, n); !slices.Equal(lists[v], want) {
				t.Fatalf("round %d: list of %s = %v, want %v", round, pool.Profile(v).UserID, lists[v], want)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d rounds were checked against the brute-force top-N", checked)
	}
	t.Logf("lists rescored besides claimed ones: %d with reserves; lists a plain update finds invalid: %d; term weight changes: %d",
		rescoredTotal, plainTotal, weightChanges)
	if depth == matching.ReserveDepth && rescoredTotal*2 > plainTotal {
		t.Errorf("reserves spared little: %d lists rescored, %d invalid lists", rescoredTotal, plainTotal)
	}
}

// remapLists moves lists and reserves onto the pool Apply returned, as a
// worker's cached view does.
func remapLists(pool *matching.Pool, lists [][]matching.Entry, reserves []matching.Reserve, moved []int) ([][]matching.Entry, []matching.Reserve) {
	outLists := make([][]matching.Entry, pool.Len())
	outReserves := make([]matching.Reserve, pool.Len())
	for old, to := range moved {
		if to < 0 {
			continue
		}
		outReserves[to] = reserves[old].Remap(moved)
		for _, e := range lists[old] {
			other := -1
			if e.Other >= 0 {
				other = moved[e.Other]
			}
			outLists[to] = append(outLists[to], matching.Entry{Other: other, Score: e.Score})
		}
	}
	return outLists, outReserves
}

// countInvalid counts the lists a plain update rescores besides claimed
// ones: those naming someone gone or carrying a score the pool no longer
// gives.
func countInvalid(pool *matching.Pool, lists [][]matching.Entry, n int) int {
	count := 0
	for v, list := range lists {
		for _, e := range list {
			if e.Other < 0 || !pool.Eligible(v, e.Other) || pool.Score(v, e.Other) != e.Score {
				count++
				break
			}
		}
	}
	return count
}

// TestReserveEndsWhenItsOwnerChanges: an edit moves every score of the
// member who made it, so their list is rescored at once, before their own
// claim comes round, rather than repaired from spares ranked on the old
// profile.
func TestReserveEndsWhenItsOwnerChanges(t *testing.T) {
	t.Parallel()
	const n = 3
	ctx := context.Background()
	pool := matching.NewPool(demoProfiles(8, 120))
	lists := make([][]matching.Entry, pool.Len())
	reserves := make([]matching.Reserve, pool.Len())
	all := make([]int, pool.Len())
	for i := range all {
		all[i] = i
	}
	if _, _, err := pool.UpdateReserved(ctx, lists, reserves, all, n, matching.ReserveDepth); err != nil {
		t.Fatal(err)
	}
	const owner = 17
	edited := pool.Profile(owner)
	edited.Interests, edited.LookingFor, edited.Offering = pool.Profile(40).Interests, pool.Profile(40).LookingFor, pool.Profile(40).Offering
	next, moved, err := pool.Apply(ctx, []attendee.Profile{edited}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lists, reserves = remapLists(next, lists, reserves, moved)
	if _, _, err := next.UpdateReserved(ctx, lists, reserves, nil, n, matching.ReserveDepth); err != nil {
		t.Fatal(err)
	}
	if want := bruteTopN(next, owner, n); !slices.Equal(lists[owner], want) {
		t.Fatalf("list of the edited member = %v, want %v", lists[owner], want)
	}
}
