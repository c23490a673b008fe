package matching

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/profiletext"
)

// The kernels address both structs by these offsets (lanes_amd64.h).
func TestScoreLanesLayout(t *testing.T) {
	t.Parallel()
	var l scoreLanes
	var v laneViewer
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"scoreLanes", unsafe.Sizeof(l), 1024},
		{"scoreLanes.bioInvNorm", unsafe.Offsetof(l.bioInvNorm), 896},
		{"scoreLanes.industry", unsafe.Offsetof(l.industry), 960},
		{"scoreLanes.interestCount", unsafe.Offsetof(l.interestCount), 992},
		{"scoreLanes.lookingForCount", unsafe.Offsetof(l.lookingForCount), 1000},
		{"scoreLanes.offeringCount", unsafe.Offsetof(l.offeringCount), 1008},
		{"laneViewer.bioInvNorm", unsafe.Offsetof(v.bioInvNorm), 112},
		{"laneViewer.industry", unsafe.Offsetof(v.industry), 120},
		{"laneViewer.interestCount", unsafe.Offsetof(v.interestCount), 128},
		{"laneViewer.lookingForCount", unsafe.Offsetof(v.lookingForCount), 136},
		{"laneViewer.offeringCount", unsafe.Offsetof(v.offeringCount), 144},
		{"laneViewer.weights", unsafe.Offsetof(v.weights), 152},
		{"laneViewer.one", unsafe.Offsetof(v.one), 184},
		{"laneViewer.half", unsafe.Offsetof(v.half), 192},
		{"laneViewer.reciprocals", unsafe.Offsetof(v.reciprocals), 200},
	} {
		if c.got != c.want {
			t.Errorf("%s is at %d, lanes_amd64.h says %d", c.name, c.got, c.want)
		}
	}
}

// checkScoreRunsAgree fails unless every vector kernel this CPU runs
// gives Score, bit for bit, for every pair of p, over runs that start and
// end inside blocks as well as on their edges.
func checkScoreRunsAgree(t *testing.T, p *Pool) {
	t.Helper()
	for _, kernel := range laneKernels {
		checkKernelAgrees(t, kernel, p)
	}
}

func checkKernelAgrees(t *testing.T, kernel laneKernel, p *Pool) {
	t.Helper()
	out := make([]float32, p.Len())
	for i := range p.Len() {
		from := (i * 7) % 13 // 0 to 12: on a block's edge and off it
		for _, run := range [][2]int{{0, p.Len()}, {from, p.Len() - from}, {from, 2*laneWidth + i%laneWidth}} {
			got := out[:min(run[1], p.Len()-run[0])]
			p.scoreRun(kernel, i, run[0], got)
			for k, s := range got {
				if want := p.Score(i, run[0]+k); math.Float32bits(s) != math.Float32bits(want) {
					t.Fatalf("%s: ScoreRun(%d, from %d)[%d] = %v (%#x), Score(%d, %d) = %v (%#x)",
						kernel, i, run[0], k, s, math.Float32bits(s), i, run[0]+k, want, math.Float32bits(want))
				}
			}
		}
	}
}

// laneTestProfiles are demo profiles with rare tags (wide records), some
// with nothing at all, some with every tag field full, some twins that
// meet each other's every need (scores of 1, the cap) and some
// without an industry.
func laneTestProfiles(seed uint64, n int) []attendee.Profile {
	rng := rand.New(rand.NewPCG(seed, 3))
	profiles := demodata.Generate(int64(seed), n)
	withRareTags(rng, profiles)
	for k := range profiles {
		switch k % 17 {
		case 3:
			id := profiles[k].UserID
			profiles[k] = attendee.Profile{UserID: id}
		case 5:
			// Offering what it looks for, so that its twin meets all of
			// its needs and the reverse.
			profiles[k].Offering = profiles[k].LookingFor
		case 6:
			twin := profiles[k-1]
			twin.UserID, twin.Company = profiles[k].UserID, ""
			profiles[k] = twin
		case 9:
			profiles[k].Industry = ""
		case 11, 12:
			// Every field full (profiletext.MaxTagsPerField), so that
			// the reciprocals' indexes reach the table's end: a field
			// of common tags (inline) and one mostly of rare ones.
			full := func(prefix string, spread int) []string {
				var tags []string
				for len(tags) < profiletext.MaxTagsPerField {
					tags = append(tags, fmt.Sprintf("%s %d", prefix, rng.IntN(spread)))
					slices.Sort(tags)
					tags = slices.Compact(tags)
				}
				return tags
			}
			profiles[k].Interests = full("interest", 60+k%17*20)
			profiles[k].LookingFor = full("need", 60)
			profiles[k].Offering = full("need", 60+k%17*20)
		}
	}
	return profiles
}

func TestScoreRunAgreesWithScore(t *testing.T) {
	t.Parallel()
	if len(laneKernels) == 0 {
		t.Skip("no vector kernel here: ScoreRun is a loop over Score")
	}
	profiles := laneTestProfiles(5, 403)
	pool := NewPool(profiles)
	checkScoreRunsAgree(t, pool)
	ones := 0
	for i := range pool.Len() {
		for j := range pool.Len() {
			if pool.Score(i, j) == 1 {
				ones++
			}
		}
	}
	if ones == 0 {
		t.Fatal("no pair scores 1: the cap at 1 is not exercised")
	}
	if !slices.ContainsFunc(pool.records, func(r scoreRecord) bool {
		return int(r.lookingForCount) == profiletext.MaxTagsPerField && int(r.offeringCount) == profiletext.MaxTagsPerField
	}) {
		t.Fatal("no member has full tag fields: the reciprocals' last entries are not exercised")
	}

	// The lanes follow Apply: patched for arrivals and edits, rebuilt
	// after departures.
	more := laneTestProfiles(6, 40)
	var arrivals, edits []attendee.Profile
	for k := range 20 {
		arrivals = append(arrivals, more[k])
		edited := profiles[k+100]
		edited.Interests, edited.LookingFor, edited.Offering = more[k+20].Interests, more[k+20].LookingFor, more[k+20].Offering
		edits = append(edits, edited)
	}
	grown, _, err := pool.Apply(context.Background(), append(arrivals, edits...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if grown.lineage != pool.lineage {
		t.Fatal("the arrivals changed the term weights: the patched lanes are not exercised")
	}
	checkScoreRunsAgree(t, grown)
	shrunk, _, err := grown.Apply(context.Background(), nil, []string{profiles[0].UserID, profiles[200].UserID, more[3].UserID})
	if err != nil {
		t.Fatal(err)
	}
	checkScoreRunsAgree(t, shrunk)
	// The pool Apply started from is unchanged.
	checkScoreRunsAgree(t, pool)
}

// TestScoreRunAcrossKernelCalls: a run longer than one kernel call
// (laneCallBlocks) is scored whole, and a run past the pool panics rather
// than reading past the lanes.
func TestScoreRunAcrossKernelCalls(t *testing.T) {
	t.Parallel()
	if len(laneKernels) == 0 {
		t.Skip("no vector kernel here: ScoreRun is a loop over Score")
	}
	size := 2*laneCallBlocks*laneWidth + 37
	pool := NewPool(laneTestProfiles(9, size))
	out := make([]float32, size)
	for _, kernel := range laneKernels {
		for _, i := range []int{0, 17, size - 1} {
			for _, from := range []int{0, 3, laneCallBlocks*laneWidth - 5} {
				run := out[:size-from]
				pool.scoreRun(kernel, i, from, run)
				for k, s := range run {
					if want := pool.Score(i, from+k); math.Float32bits(s) != math.Float32bits(want) {
						t.Fatalf("%s: ScoreRun(%d, from %d)[%d] = %v, Score = %v", kernel, i, from, k, s, want)
					}
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ScoreRun past the pool's end did not panic")
		}
	}()
	pool.ScoreRun(0, 8, out)
}
