package matching

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
)

func TestScoreRecordIsTwoCacheLines(t *testing.T) {
	t.Parallel()
	if size := unsafe.Sizeof(scoreRecord{}); size != 128 {
		t.Fatalf("scoreRecord is %d bytes, want 128", size)
	}
}

// withRareTags gives some profiles tags of a vocabulary far larger than
// the records' inline words, drawn from a range small enough that members
// share some of them.
func withRareTags(rng *rand.Rand, profiles []attendee.Profile) {
	for k := range profiles {
		if rng.IntN(3) != 0 {
			continue
		}
		for range 1 + rng.IntN(4) {
			profiles[k].Interests = append(profiles[k].Interests, fmt.Sprintf("rare interest %d", rng.IntN(400)))
			profiles[k].LookingFor = append(profiles[k].LookingFor, fmt.Sprintf("rare need %d", rng.IntN(300)))
			profiles[k].Offering = append(profiles[k].Offering, fmt.Sprintf("rare need %d", rng.IntN(300)))
		}
	}
}

// checkScoresAgree fails unless Score equals scoreRows, bit for bit, for
// every pair of p, and unless the pairs include both-wide pairs that share
// tags past the inline words (else the test proves nothing about them).
func checkScoresAgree(t *testing.T, p *Pool) {
	t.Helper()
	wideShared := 0
	for i := range p.Len() {
		for j := range p.Len() {
			got, want := p.Score(i, j), p.scoreRows(i, j)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("Score(%d, %d) = %v, from the whole rows %v", i, j, got, want)
			}
			a, b := &p.records[i], &p.records[j]
			if a.wide && b.wide && scoreRecords(a, b) != want {
				wideShared++
			}
		}
	}
	if wideShared == 0 {
		t.Fatal("no pair shares a tag past the inline words")
	}
}

func TestScoreRecordsAgreeWithTheWholeRows(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	profiles := demodata.Generate(5, 400)
	withRareTags(rng, profiles)
	pool := NewPool(profiles)
	checkScoresAgree(t, pool)

	// Records follow Apply: edits that make rows wide or narrow,
	// departures and arrivals.
	more := demodata.Generate(6, 60)
	withRareTags(rng, more)
	var upserts []attendee.Profile
	var removals []string
	for k := range 60 {
		switch k % 3 {
		case 0:
			upserts = append(upserts, more[k])
		case 1:
			edited := profiles[k]
			edited.Interests, edited.LookingFor, edited.Offering = more[k].Interests, more[k].LookingFor, more[k].Offering
			upserts = append(upserts, edited)
		default:
			removals = append(removals, profiles[k].UserID)
		}
	}
	next, _, err := pool.Apply(context.Background(), upserts, removals)
	if err != nil {
		t.Fatal(err)
	}
	checkScoresAgree(t, next)
}
