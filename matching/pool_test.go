package matching_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// demoProfiles returns n realistic profiles.
func demoProfiles(seed int64, n int) []attendee.Profile {
	return demodata.Generate(seed, n)
}

// userID makes a deterministic, sortable UUID-shaped ID.
func userID(k int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", k)
}

// randomTags draws up to max tags from a small vocabulary with random case
// and spacing, so overlaps are frequent and spelling varies.
func randomTags(rng *rand.Rand, vocabulary []string, maxTags int) []string {
	var tags []string
	for range rng.IntN(maxTags + 1) {
		tag := vocabulary[rng.IntN(len(vocabulary))]
		switch rng.IntN(4) {
		case 0:
			tag = strings.ToUpper(tag)
		case 1:
			tag = "  " + strings.ReplaceAll(tag, " ", "   ") + " "
		}
		tags = append(tags, tag)
	}
	return tags
}

// randomProfiles covers edge cases demodata never produces: empty fields,
// duplicate tags, blank companies that differ only in spacing.
func randomProfiles(rng *rand.Rand, n int) []attendee.Profile {
	interests := []string{"ai", "machine learning", "climate tech", "fintech", "design", "open source", "robotics", "biotech"}
	needs := []string{"fundraising", "hiring", "mentoring", "customers", "co-founder", "design feedback"}
	companies := []string{"", "", "Acme", " acme ", "Globex", "Initech", "  "}
	industries := []string{"", "Software", "software ", "Fintech", "Health"}
	words := []string{"climate", "risk", "models", "robots", "the", "and", "startups", "design", "payments", "data", "ai"}
	profiles := make([]attendee.Profile, n)
	for i := range profiles {
		var bio []string
		for range rng.IntN(12) {
			bio = append(bio, words[rng.IntN(len(words))])
		}
		profiles[i] = attendee.Profile{
			UserID:      userID(i),
			DisplayName: fmt.Sprintf("Person %d", i),
			Company:     companies[rng.IntN(len(companies))],
			Industry:    industries[rng.IntN(len(industries))],
			Interests:   randomTags(rng, interests, 6),
			LookingFor:  randomTags(rng, needs, 3),
			Offering:    randomTags(rng, needs, 3),
			Bio:         strings.Join(bio, " "),
		}
	}
	return profiles
}

func TestScoreIsSymmetricAndInRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, profiles := range map[string][]attendee.Profile{
		"random": randomProfiles(rng, 300),
		"demo":   demoProfiles(5, 300),
	} {
		pool := matching.NewPool(profiles)
		for i := range pool.Len() {
			for j := range pool.Len() {
				s := pool.Score(i, j)
				if math.Float32bits(s) != math.Float32bits(pool.Score(j, i)) {
					t.Fatalf("%s: Score(%d,%d)=%v but Score(%d,%d)=%v", name, i, j, s, j, i, pool.Score(j, i))
				}
				if !(s >= 0 && s <= 1) {
					t.Fatalf("%s: Score(%d,%d)=%v outside [0,1]", name, i, j, s)
				}
			}
		}
	}
}

func TestScoreOfIdenticalRichProfilesIsOne(t *testing.T) {
	// Each offers what the other looks for, so every signal is at its maximum.
	a := attendee.Profile{UserID: userID(1), Industry: "Software", Interests: []string{"AI"},
		LookingFor: []string{"hiring"}, Offering: []string{"hiring"}, Bio: "robots and climate"}
	b := a
	b.UserID = userID(2)
	if s := matching.NewPool([]attendee.Profile{a, b}).Score(0, 1); s != 1 {
		t.Fatalf("score of perfect match = %v, want 1", s)
	}
}

func TestScoreIgnoresTagCaseAndSpacing(t *testing.T) {
	base := attendee.Profile{UserID: userID(0), Industry: "Fintech", Interests: []string{"Machine Learning", "AI"},
		LookingFor: []string{"fundraising"}, Offering: []string{"mentoring"}}
	tidy := attendee.Profile{UserID: userID(1), Industry: "fintech", Interests: []string{"machine learning", "ai"},
		LookingFor: []string{"mentoring"}, Offering: []string{"fundraising"}}
	messy := attendee.Profile{UserID: userID(2), Industry: "  FINTECH ", Interests: []string{"  Machine   Learning", "AI "},
		LookingFor: []string{"Mentoring"}, Offering: []string{" FUNDRAISING"}}
	pool := matching.NewPool([]attendee.Profile{base, tidy, messy})
	if pool.Score(0, 1) != pool.Score(0, 2) {
		t.Fatalf("tidy %v != messy %v", pool.Score(0, 1), pool.Score(0, 2))
	}
	if pool.Score(0, 1) < 0.79 {
		t.Fatalf("same interests, industry and complementary needs only scored %v", pool.Score(0, 1))
	}
}

// Others matter to a pair's score only through the event's term weights:
// with the same weights, scores do not depend on who else attends or on
// pool order.
func TestScoreDependsOnOthersOnlyThroughTermWeights(t *testing.T) {
	profiles := demoProfiles(11, 200)
	small := matching.NewPool(profiles[:19]) // too few bios for rarity to apply
	// Members whose bios are blank add no bio and so change no weight.
	shuffled := slices.Clone(profiles)
	for k := 19; k < len(shuffled); k++ {
		shuffled[k].Bio = ""
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	large := matching.NewPool(shuffled)
	if !large.SameTermWeights(small) {
		t.Fatal("members without a bio changed the term weights")
	}
	for i := range small.Len() {
		for j := range small.Len() {
			li, _ := large.Index(small.Profile(i).UserID)
			lj, _ := large.Index(small.Profile(j).UserID)
			if small.Score(i, j) != large.Score(li, lj) {
				t.Fatalf("score of %d,%d changed when others joined: %v vs %v", i, j, small.Score(i, j), large.Score(li, lj))
			}
		}
	}
}

func TestEligible(t *testing.T) {
	pool := matching.NewPool([]attendee.Profile{
		{UserID: userID(0), Company: "Acme Corp"},
		{UserID: userID(1), Company: "  ACME   corp "},
		{UserID: userID(2), Company: ""},
		{UserID: userID(3), Company: ""},
		{UserID: userID(4), Company: "Globex"},
	})
	for _, tc := range []struct {
		i, j int
		want bool
		why  string
	}{
		{0, 0, false, "self"},
		{2, 2, false, "self without company"},
		{0, 1, false, "same company, different case and spacing"},
		{1, 0, false, "same company, reversed"},
		{2, 3, true, "both without company"},
		{0, 2, true, "one without company"},
		{0, 4, true, "different companies"},
	} {
		if got := pool.Eligible(tc.i, tc.j); got != tc.want {
			t.Errorf("Eligible(%d,%d) = %v, want %v (%s)", tc.i, tc.j, got, tc.want, tc.why)
		}
	}
}

func TestIndexAndProfile(t *testing.T) {
	profiles := demoProfiles(2, 30)
	pool := matching.NewPool(profiles)
	for i, p := range profiles {
		if got, ok := pool.Index(p.UserID); !ok || got != i {
			t.Fatalf("Index(%q) = %d, %v; want %d", p.UserID, got, ok, i)
		}
		if pool.Profile(i).UserID != p.UserID {
			t.Fatalf("Profile(%d) is not profiles[%d]", i, i)
		}
	}
	if _, ok := pool.Index("missing"); ok {
		t.Fatal("found a missing UserID")
	}
}

func TestNewPoolRejectsDuplicateUserIDs(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for duplicate UserIDs")
		}
	}()
	matching.NewPool([]attendee.Profile{{UserID: userID(1)}, {UserID: userID(1)}})
}

func TestTiesBreakOnAPerViewerHash(t *testing.T) {
	// Candidates with identical profiles tie exactly. Whatever the pool
	// order, each viewer ranks them by its tie key, so different viewers
	// favour different ones and the smallest UserID wins no more often
	// than any other.
	twin := func(k int) attendee.Profile {
		return attendee.Profile{UserID: userID(k), Interests: []string{"AI", "robotics"}}
	}
	var profiles []attendee.Profile
	for k := range 8 {
		profiles = append(profiles, twin(k))
	}
	for v := range 12 {
		// Viewers are closer to the twins (2/3) than to each other (2/4).
		profiles = append(profiles, attendee.Profile{UserID: userID(100 + v), Interests: []string{"ai", "robotics", fmt.Sprint("hobby ", v)}})
	}
	shuffled := slices.Clone(profiles)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
	pool, other := matching.NewPool(profiles), matching.NewPool(shuffled)
	firsts := map[string]bool{}
	for v := 8; v < len(profiles); v++ {
		viewerID := profiles[v].UserID
		want := make([]string, 8)
		for k := range want {
			want[k] = userID(k)
		}
		slices.SortFunc(want, func(a, b string) int {
			ka, kb := matching.TieKey(viewerID, a), matching.TieKey(viewerID, b)
			if ka < kb {
				return -1
			}
			return 1
		})
		ov, _ := other.Index(viewerID)
		for _, p := range []struct {
			pool   *matching.Pool
			viewer int
		}{{pool, v}, {other, ov}} {
			var got []string
			for _, e := range p.pool.TopN(p.viewer, 3) {
				got = append(got, p.pool.Profile(e.Other).UserID)
			}
			if !slices.Equal(got, want[:3]) {
				t.Fatalf("viewer %s: tie order %q, want %q", viewerID, got, want[:3])
			}
		}
		firsts[want[0]] = true
	}
	if len(firsts) < 3 {
		t.Fatalf("12 viewers put only %d different members first among 8 twins", len(firsts))
	}
	top := pool.TopN(8, 3)
	a, b := top[0], top[1]
	if !pool.Better(8, a, b) || pool.Better(8, b, a) || pool.Better(8, a, a) {
		t.Fatal("Better is not a strict order on ties")
	}
	if !pool.Better(8, matching.Entry{Other: 0, Score: 0.8}, matching.Entry{Other: 4, Score: 0.79}) ||
		!pool.Better(8, matching.Entry{Other: 4, Score: 0.8}, matching.Entry{Other: 0, Score: 0.79}) {
		t.Fatal("higher score must win regardless of UserID")
	}
}

func TestTopNWithFewerCandidatesThanN(t *testing.T) {
	pool := matching.NewPool([]attendee.Profile{
		{UserID: userID(0), Company: "Acme"},
		{UserID: userID(1), Company: "acme"},
		{UserID: userID(2)},
		{UserID: userID(3), Company: "Globex"},
	})
	top := pool.TopN(0, 10)
	if len(top) != 2 {
		t.Fatalf("TopN returned %d entries, want the 2 eligible ones: %+v", len(top), top)
	}
	if got := pool.TopN(0, 0); len(got) != 0 {
		t.Fatalf("TopN(0, 0) = %+v", got)
	}
	if got := matching.NewPool([]attendee.Profile{{UserID: userID(0)}}).TopN(0, 5); len(got) != 0 {
		t.Fatalf("alone in the pool but TopN = %+v", got)
	}
}

func TestTopNMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for name, profiles := range map[string][]attendee.Profile{
		"random": randomProfiles(rng, 150), // many exact ties
		"demo":   demoProfiles(8, 400),
	} {
		pool := matching.NewPool(profiles)
		for _, n := range []int{1, 5, 20} {
			for i := range pool.Len() {
				if got, want := pool.TopN(i, n), bruteTopN(pool, i, n); !slices.Equal(got, want) {
					t.Fatalf("%s: TopN(%d,%d) = %+v, want %+v", name, i, n, got, want)
				}
			}
		}
	}
}

// bruteTopN is the reference: score everyone eligible, keep the n best by
// score, then the viewer's tie key, then UserID. It uses neither TopN nor
// Better.
func bruteTopN(pool *matching.Pool, i, n int) []matching.Entry {
	// Inserting each candidate into the n best so far gives what sorting
	// them all and keeping n would, for a fraction of the cost: the
	// property tests call this for every list of every checked round,
	// under -race in make test.
	viewer := pool.Profile(i).UserID
	before := func(a, b matching.Entry) bool {
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		ka, kb := matching.TieKey(viewer, pool.Profile(a.Other).UserID), matching.TieKey(viewer, pool.Profile(b.Other).UserID)
		if ka != kb {
			return ka < kb
		}
		return pool.Profile(a.Other).UserID < pool.Profile(b.Other).UserID
	}
	top := make([]matching.Entry, 0, n+1)
	for j := range pool.Len() {
		if !pool.Eligible(i, j) {
			continue
		}
		e := matching.Entry{Other: j, Score: pool.Score(i, j)}
		at := len(top)
		for at > 0 && before(e, top[at-1]) {
			at--
		}
		if at < n {
			top = slices.Insert(top, at, e)[:min(n, len(top)+1)]
		}
	}
	return top
}
