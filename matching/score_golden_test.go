package matching_test

import (
	"fmt"
	"hash/fnv"
	"math"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// scoresDigest pins every pair score of a fixed event, rare tags past the
// common ones included, to the value the releases before it computed:
// workers of two releases run side by side during a rollout, and a stored
// list is validated by recomputing its scores, so a score that moves by one
// bit makes lists look stale to one release and not to the other. A change
// of the score itself must change this digest on purpose (README, Changing
// the workflow safely). The digest was computed by the code before the
// packed records (59abe78), by the code after, and by the vector kernel.
const scoresDigest = 0x577a612fe5229447

func TestScoresMatchEarlierReleasesBitForBit(t *testing.T) {
	t.Parallel()
	profiles := demodata.Generate(21, 300)
	for k := range profiles {
		if k%3 != 0 {
			continue
		}
		for r := range 1 + k%4 {
			profiles[k].Interests = append(profiles[k].Interests, fmt.Sprintf("rare interest %d", (k*7+r*13)%400))
			profiles[k].LookingFor = append(profiles[k].LookingFor, fmt.Sprintf("rare need %d", (k*5+r*11)%300))
			profiles[k].Offering = append(profiles[k].Offering, fmt.Sprintf("rare need %d", (k*3+r*17)%300))
		}
	}
	pool := matching.NewPool(profiles)
	// Both ways the engine scores: a pair at a time, and the runs of the
	// passes (ScoreRun, the vector kernel where the CPU has one).
	for _, kernel := range []struct {
		name  string
		score func(i, j int) float32
	}{
		{"Score", pool.Score},
		{"ScoreRun", func() func(i, j int) float32 {
			run := make([]float32, pool.Len())
			viewer := -1
			return func(i, j int) float32 {
				if i != viewer {
					pool.ScoreRun(i, 0, run)
					viewer = i
				}
				return run[j]
			}
		}()},
	} {
		h := fnv.New64a()
		var word [4]byte
		for i := range pool.Len() {
			for j := i + 1; j < pool.Len(); j++ {
				bits := math.Float32bits(kernel.score(i, j))
				word[0], word[1], word[2], word[3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
				h.Write(word[:])
			}
		}
		if got := h.Sum64(); got != scoresDigest {
			t.Errorf("%s: the scores' digest is %#x, earlier releases computed %#x", kernel.name, got, uint64(scoresDigest))
		}
	}
}
