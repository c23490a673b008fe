package matching

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
)

// TestApplyRanksUserIDsAsAFreshPool: after arrivals and departures the
// tie-break ranks are every member's place in the order of user IDs,
// newcomers merged where their IDs sort (first, last, between, next to
// one another), as a pool built from scratch ranks them.
func TestApplyRanksUserIDsAsAFreshPool(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	profiles := demodata.Generate(7, 200)
	// Distinct IDs spread over the range, in no particular index order.
	for k := range profiles {
		profiles[k].UserID = fmt.Sprintf("m%06d", 50_000+k*4_000+rng.IntN(4_000))
	}
	rng.Shuffle(len(profiles), func(a, b int) { profiles[a], profiles[b] = profiles[b], profiles[a] })
	pool := NewPool(profiles)
	extra := demodata.Generate(8, 400)
	next := 0
	for round := range 30 {
		ids := []string{"a", "z", fmt.Sprintf("m%06d", rng.IntN(1_000_000))} // before all, after all, anywhere
		for range rng.IntN(4) {
			ids = append(ids, fmt.Sprintf("m%06d", rng.IntN(1_000_000)))
		}
		var arrivals []attendee.Profile
		for _, id := range ids {
			id = fmt.Sprintf("%s-%d", id, round)
			if _, taken := pool.Index(id); taken || slices.ContainsFunc(arrivals, func(p attendee.Profile) bool { return p.UserID == id }) {
				continue
			}
			p := extra[next%len(extra)]
			next++
			p.UserID = id
			arrivals = append(arrivals, p)
		}
		var departures []string
		if round%3 == 1 {
			for range 1 + rng.IntN(3) {
				departures = append(departures, pool.profiles[rng.IntN(pool.Len())].UserID)
			}
		}
		grown, _, err := pool.Apply(context.Background(), arrivals, departures)
		if err != nil {
			t.Fatal(err)
		}
		sorted := make([]string, grown.Len())
		for i := range sorted {
			sorted[i] = grown.profiles[i].UserID
		}
		slices.Sort(sorted)
		for i := range grown.Len() {
			if want, _ := slices.BinarySearch(sorted, grown.profiles[i].UserID); int(grown.userIDRank[i]) != want {
				t.Fatalf("round %d: %s ranks %d, want %d", round, grown.profiles[i].UserID, grown.userIDRank[i], want)
			}
		}
		pool = grown
	}
}
