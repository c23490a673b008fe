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

// TestShardedUpdateEqualsUpdate splits updates into shards, each scored on a
// pool of the same profiles in another order (as on another worker): every
// other shard in UserID order, as a worker that read the whole event holds
// it, the rest shuffled. It checks that merging them gives exactly
// UpdateContext's lists and changes: for first matches (every list empty),
// newcomers, and edits that leave stored lists stale.
func TestShardedUpdateEqualsUpdate(t *testing.T) {
	t.Parallel()
	const n = 4
	rng := rand.New(rand.NewPCG(21, 4))
	profiles := randomProfiles(rng, 160)
	for round := range 6 {
		// Stored lists: the true top-N of an earlier state of the event,
		// before some members joined and some edited their profiles.
		known := profiles[:100+10*round]
		before := matching.NewPool(slices.Clone(known))
		stored := map[string][]storedEntry{}
		if round > 0 {
			for i := range before.Len() {
				for _, e := range before.TopN(i, n) {
					stored[before.Profile(i).UserID] = append(stored[before.Profile(i).UserID],
						storedEntry{before.Profile(e.Other).UserID, e.Score})
				}
			}
		}
		current := slices.Clone(profiles[:110+10*round])
		var claimedIDs []string
		for k := len(known); k < len(current); k++ {
			claimedIDs = append(claimedIDs, current[k].UserID)
		}
		for range 3 {
			k := rng.IntN(len(known))
			current[k] = editProfile(rng, current[k], current)
			claimedIDs = append(claimedIDs, current[k].UserID)
		}

		pool := matching.NewPool(current)
		want := loadListsLenient(pool, stored)
		claimed := indexesOf(pool, claimedIDs)
		wantChanged, err := pool.UpdateContext(context.Background(), want, claimed, n)
		if err != nil {
			t.Fatal(err)
		}

		for _, shards := range []int{1, 2, 3, 7} {
			var offers []*matching.Offers
			for shard := range shards {
				order := slices.Clone(current)
				if shard%2 == 0 {
					slices.SortFunc(order, func(a, b attendee.Profile) int { return strings.Compare(a.UserID, b.UserID) })
				} else {
					rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
				}
				other := matching.NewPool(order)
				o, err := other.ShardOffers(context.Background(), loadListsLenient(other, stored), indexesOf(other, claimedIDs), n, shard, shards)
				if err != nil {
					t.Fatal(err)
				}
				// Through the encoding the database carries.
				data, err := o.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var decoded matching.Offers
				if err := decoded.UnmarshalBinary(data); err != nil {
					t.Fatal(err)
				}
				offers = append(offers, &decoded)
			}
			got := loadListsLenient(pool, stored)
			gotChanged, err := pool.UpdateWithOffers(context.Background(), got, claimed, n, offers)
			if err != nil {
				t.Fatalf("round %d, %d shards: %v", round, shards, err)
			}
			label := fmt.Sprintf("round %d, %d shards", round, shards)
			if !slices.Equal(gotChanged, wantChanged) {
				t.Fatalf("%s: changed %v, want %v", label, gotChanged, wantChanged)
			}
			for v := range want {
				if !slices.Equal(got[v], want[v]) {
					t.Fatalf("%s: list of %s is %v, want %v", label, pool.Profile(v).UserID, got[v], want[v])
				}
			}
		}
	}
}

// TestShardsScoreAFirstMatchOnce: shards of a first match (every member
// claimed, every list empty) on pools in UserID order, as workers that read
// the whole event hold it, score each pair once between them, as one
// worker scoring the batch whole does; shuffled pools score the pairs of
// two fresh members from both sides. Not parallel: it reads the
// process-wide count of pairs scored.
func TestShardsScoreAFirstMatchOnce(t *testing.T) {
	const members, n, shards = 300, 3, 3
	profiles := randomProfiles(rand.New(rand.NewPCG(8, 1)), members)
	slices.SortFunc(profiles, func(a, b attendee.Profile) int { return strings.Compare(a.UserID, b.UserID) })
	shuffled := slices.Clone(profiles)
	rand.New(rand.NewPCG(8, 2)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	allPairs := int64(members * (members - 1) / 2)
	for _, tc := range []struct {
		name     string
		profiles []attendee.Profile
		pairs    func(int64) bool
	}{
		{"in UserID order", profiles, func(scored int64) bool { return scored == allPairs }},
		{"shuffled", shuffled, func(scored int64) bool { return scored > allPairs*3/2 }},
	} {
		pool := matching.NewPool(tc.profiles)
		claimed := make([]int, members)
		for i := range claimed {
			claimed[i] = i
		}
		before := matching.PairsScored()
		for shard := range shards {
			if _, err := pool.ShardOffers(context.Background(), make([][]matching.Entry, members), claimed, n, shard, shards); err != nil {
				t.Fatal(err)
			}
		}
		if scored := matching.PairsScored() - before; !tc.pairs(scored) {
			t.Errorf("%s: %d shards scored %d pairs of %d", tc.name, shards, scored, allPairs)
		}
	}
}

// A shard scored on other profiles, or on other members, must not merge
// silently.
func TestUpdateWithOffersRefusesForeignScores(t *testing.T) {
	t.Parallel()
	profiles := randomProfiles(rand.New(rand.NewPCG(2, 2)), 40)
	pool := matching.NewPool(profiles)
	edited := slices.Clone(profiles)
	edited[0].Interests = []string{"something nobody else has"}
	edited[0].Bio = "entirely different words"
	other := matching.NewPool(edited)
	claimed := []int{0}
	offers, err := other.ShardOffers(context.Background(), make([][]matching.Entry, other.Len()), claimed, 3, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.UpdateWithOffers(context.Background(), make([][]matching.Entry, pool.Len()), claimed, 3, []*matching.Offers{offers}); err == nil {
		t.Fatal("offers scored on an edited profile were merged")
	}
	fewer := matching.NewPool(profiles[1:])
	offers, err = fewer.ShardOffers(context.Background(), make([][]matching.Entry, fewer.Len()), []int{0}, 3, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.UpdateWithOffers(context.Background(), make([][]matching.Entry, pool.Len()), claimed, 3, []*matching.Offers{offers}); err == nil {
		t.Fatal("offers scored without a member were merged")
	}
}

func indexesOf(pool *matching.Pool, ids []string) []int {
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if i, ok := pool.Index(id); ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// loadListsLenient maps stored lists onto pool; an entry naming someone
// not in the pool becomes -1, which fails validation as in the worker.
func loadListsLenient(pool *matching.Pool, stored map[string][]storedEntry) [][]matching.Entry {
	lists := make([][]matching.Entry, pool.Len())
	for v := range lists {
		for _, e := range stored[pool.Profile(v).UserID] {
			other, ok := pool.Index(e.otherID)
			if !ok {
				other = -1
			}
			lists[v] = append(lists[v], matching.Entry{Other: other, Score: e.score})
		}
	}
	return lists
}
