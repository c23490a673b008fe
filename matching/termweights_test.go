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

// datathonProfiles are n members with bios of a few words from a small
// vocabulary; the first withDatathon also mention the event.
func datathonProfiles(rng *rand.Rand, first, n, withDatathon int) []attendee.Profile {
	words := []string{"genomics", "climate", "rust", "kotlin", "payments", "robotics", "poetry", "chess", "sailing", "vision"}
	profiles := make([]attendee.Profile, n)
	for k := range profiles {
		var bio []string
		for range 2 + rng.IntN(3) {
			bio = append(bio, words[rng.IntN(len(words))])
		}
		if k < withDatathon {
			bio = append(bio, "datathon")
		}
		profiles[k] = attendee.Profile{UserID: userID(first + k), Bio: strings.Join(bio, " ")}
	}
	return profiles
}

// A term most bios use adds nothing to a score and is never given as a
// reason; the same term in fewer bios does both.
func TestBoilerplateTermsCountForNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		withDatathon int
		counts       bool
	}{{30, false}, {8, true}} {
		profiles := datathonProfiles(rng, 0, 40, tc.withDatathon)
		// Two members who share nothing but the event's name.
		profiles[0].Bio, profiles[1].Bio = "datathon genomics", "datathon poetry"
		pool := matching.NewPool(profiles)
		if got := pool.Score(0, 1) > 0; got != tc.counts {
			t.Fatalf("datathon in %d of 40 bios: score %v, want counted=%v", tc.withDatathon, pool.Score(0, 1), tc.counts)
		}
		reasons := pool.Reasons(0, 1)
		if got := slices.Contains(reasons.SharedBioTerms, "datathon"); got != tc.counts {
			t.Fatalf("datathon in %d of 40 bios: reasons %v, want cited=%v", tc.withDatathon, reasons.SharedBioTerms, tc.counts)
		}
		insight := matching.FallbackInsight("Ada", reasons)
		if strings.Contains(insight, "datathon") != tc.counts {
			t.Fatalf("datathon in %d of 40 bios: insight %q", tc.withDatathon, insight)
		}
	}
}

// When a term changes class every score may move, including scores of
// pairs no stored list names, so a list whose own entries kept their
// scores can be beaten by someone left out: the caller marks every list
// for a rescore (as activities' cached views do), and then every list is
// the top-N again. Without the mark some list is not, which is why
// SameTermWeights exists.
func TestTermWeightChangeNeedsEveryListRescored(t *testing.T) {
	const n = 3
	ctx := context.Background()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 9))
		// 31 bios, 20 with the event's name: 20 > 16·2/3, boilerplate. One
		// member without it joins: 32 bios, and 20 ≤ 32·2/3, so it counts.
		profiles := datathonProfiles(rng, 0, 31, 20)
		pool := matching.NewPool(profiles)
		lists := make([][]matching.Entry, pool.Len())
		all := make([]int, pool.Len())
		for i := range all {
			all[i] = i
		}
		pool.Update(lists, all, n)
		newcomers := datathonProfiles(rng, 100, 1, 0)
		next, _, err := pool.Apply(ctx, newcomers, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.SameTermWeights(pool) {
			t.Fatal("32 bios, 20 with datathon: still boilerplate")
		}
		fresh := matching.NewPool(append(slices.Clone(profiles), newcomers...))
		if !fresh.SameTermWeights(next) {
			t.Fatal("Apply and NewPool weigh terms differently")
		}
		grown := append(slices.Clone(lists), nil)
		unmarked := slices.Clone(grown)
		marked := matching.MarkForRescore(grown)
		newcomer := []int{next.Len() - 1}
		next.Update(unmarked, newcomer, n)
		next.Update(marked, newcomer, n)
		stale := 0
		for v := range next.Len() {
			want := bruteTopN(next, v, n)
			if !slices.Equal(marked[v], want) {
				t.Fatalf("seed %d: marked list of %d = %v, want %v", seed, v, marked[v], want)
			}
			if !slices.Equal(unmarked[v], want) {
				stale++
			}
		}
		if stale > 0 {
			t.Logf("seed %d: %d lists would have stayed stale without the mark", seed, stale)
			return
		}
	}
	t.Fatal("no seed showed a list that a term weight change leaves stale but valid")
}

// Listing every tag does not buy a better score: the same member offering
// everything besides what a seeker looks for scores well below offering
// just that, and claiming every interest or need lowers a score too.
func TestLengthCannotBuyAScore(t *testing.T) {
	var everything []string
	for k := range 30 {
		everything = append(everything, fmt.Sprint("tag ", k))
	}
	seeker := attendee.Profile{UserID: userID(0), LookingFor: []string{"tag 3"}, Offering: []string{"tag 4"}, Interests: []string{"tag 1", "tag 2"}}
	focused := attendee.Profile{UserID: userID(1), Offering: []string{"tag 3"}, LookingFor: []string{"tag 4"}, Interests: []string{"tag 1", "tag 2", "tag 5"}}
	offersAll, seeksAll, claimsAll := focused, focused, focused
	offersAll.UserID, offersAll.Offering = userID(2), everything
	seeksAll.UserID, seeksAll.LookingFor = userID(3), everything
	claimsAll.UserID, claimsAll.Interests = userID(4), everything
	pool := matching.NewPool([]attendee.Profile{seeker, focused, offersAll, seeksAll, claimsAll})
	honest := pool.Score(0, 1)
	for k, what := range []string{"offering", "looking_for", "interests"} {
		if stuffed := pool.Score(0, 2+k); stuffed > honest*0.8 {
			t.Errorf("every tag in %s scores %v, the focused profile %v", what, stuffed, honest)
		}
	}
}
