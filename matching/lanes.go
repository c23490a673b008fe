package matching

import (
	"fmt"
	"math/bits"
)

// The loops that score one member against a run of others (the full
// update's pass, a scan, a newcomer) go through ScoreRun. On a CPU with
// AVX-512's population count it scores eight candidates per step
// (lanes_avx512_amd64.s), with AVX2 four (lanes_avx2_amd64.s), from a copy
// of the records laid out eight members to a block, word by word
// (scoreLanes); elsewhere it is a loop over Score. All give every score
// bit for bit (TestScoreRunAgreesWithScore): the counts are integers, and
// the vector arithmetic does the same IEEE operations in the same order as
// weighScore (no fused multiply-adds).

// laneWidth is how many members a scoreLanes block holds: one AVX-512
// register of 64-bit words, two AVX2 ones.
const laneWidth = 8

// laneWords are the words of a record the kernel ANDs, in its order: the
// bio signature, then the inline interests, looking_for and offering.
const laneWords = bioSignatureWords + 3*inlineTagWords

// scoreLanes is eight members' records, transposed: words[k][l] is word k
// (laneWords order) of member 8b+l. 1,024 bytes, as the kernel's offsets
// in lanes_amd64.h assume (TestScoreLanesLayout).
type scoreLanes struct {
	words           [laneWords][laneWidth]uint64
	bioInvNorm      [laneWidth]float64
	industry        [laneWidth]int32
	interestCount   [laneWidth]uint8
	lookingForCount [laneWidth]uint8
	offeringCount   [laneWidth]uint8
	// wide has bit l set when member 8b+l's record is wide: only then
	// can a pair's inline words fall short (see scoreRecord).
	wide uint8
	_    [7]byte
}

// laneViewer is the member scored against the lanes: its words broadcast
// by the kernel, ordered so that each lands on the candidates' word it is
// compared with (its offering on their looking_for and the reverse), its
// counts, the weights and the reciprocal table. Field offsets are in
// lanes_amd64.h.
type laneViewer struct {
	words                                         [laneWords]uint64
	bioInvNorm                                    float64
	industry                                      int64 // -1 for none, which no candidate has
	interestCount, lookingForCount, offeringCount int64
	weights                                       [4]float64 // interests, complementary, bio, industry
	one, half                                     float64
	reciprocals                                   *float64
}

// laneKernel is a way of scoring a run: a loop over Score, or one of the
// vector kernels over the lanes.
type laneKernel uint8

const (
	portableKernel laneKernel = iota
	avx2Kernel
	avx512Kernel
)

func (k laneKernel) String() string {
	switch k {
	case portableKernel:
		return "portable"
	case avx2Kernel:
		return "avx2"
	case avx512Kernel:
		return "avx512"
	}
	return fmt.Sprintf("laneKernel(%d)", uint8(k))
}

// scoringKernel is the kernel ScoreRun uses: the fastest of laneKernels
// (lanes_amd64.go), or the portable loop where none runs.
var scoringKernel = func() laneKernel {
	if len(laneKernels) > 0 {
		return laneKernels[0]
	}
	return portableKernel
}()

// Kernel names the kernel ScoreRun uses in this process: "avx512", "avx2"
// or "portable" (a loop over Score), for the worker's start-up log.
func Kernel() string { return scoringKernel.String() }

// setLane copies record i into its lane.
func (p *Pool) setLane(i int) {
	r, b, l := &p.records[i], &p.lanes[i/laneWidth], i%laneWidth
	for k, w := range r.bio {
		b.words[k][l] = w
	}
	for k := range inlineTagWords {
		b.words[bioSignatureWords+k][l] = r.interests[k]
		b.words[bioSignatureWords+inlineTagWords+k][l] = r.lookingFor[k]
		b.words[bioSignatureWords+2*inlineTagWords+k][l] = r.offering[k]
	}
	b.bioInvNorm[l] = r.bioInvNorm
	b.industry[l] = r.industry
	b.interestCount[l], b.lookingForCount[l], b.offeringCount[l] = r.interestCount, r.lookingForCount, r.offeringCount
	b.wide &^= 1 << l
	if r.wide {
		b.wide |= 1 << l
	}
}

// buildLanes lays out every record in lanes, when the kernel runs here.
func (p *Pool) buildLanes() {
	if scoringKernel == portableKernel {
		p.lanes = nil
		return
	}
	p.lanes = make([]scoreLanes, (len(p.records)+laneWidth-1)/laneWidth)
	for i := range p.records {
		p.setLane(i)
	}
}

// viewerOf is record i as the kernel's viewer.
func (p *Pool) viewerOf(i int) laneViewer {
	r := &p.records[i]
	v := laneViewer{
		bioInvNorm:      r.bioInvNorm,
		industry:        int64(r.industry),
		interestCount:   int64(r.interestCount),
		lookingForCount: int64(r.lookingForCount),
		offeringCount:   int64(r.offeringCount),
		weights:         [4]float64{weightInterests, weightComplementary, weightBio, weightIndustry},
		one:             1,
		half:            0.5,
		reciprocals:     &reciprocals[0],
	}
	if r.industry == 0 {
		v.industry = -1
	}
	copy(v.words[:], r.bio[:])
	for k := range inlineTagWords {
		v.words[bioSignatureWords+k] = r.interests[k]
		// The viewer's offering meets the candidates' looking_for, and
		// its looking_for their offering.
		v.words[bioSignatureWords+inlineTagWords+k] = r.offering[k]
		v.words[bioSignatureWords+2*inlineTagWords+k] = r.lookingFor[k]
	}
	return v
}

// laneCallBlocks bounds one call of the kernel: 4,096 members, some 10 µs.
const laneCallBlocks = 512

// ScoreRun sets out[k] to Score(i, from+k) for every k < len(out): the
// scores of i against a run of consecutive members, the fastest way this
// machine has (the vector kernel where it runs).
func (p *Pool) ScoreRun(i, from int, out []float32) {
	p.scoreRun(scoringKernel, i, from, out)
}

// scoreRun is ScoreRun with the given kernel: scoringKernel, or in tests
// any of laneKernels.
func (p *Pool) scoreRun(kernel laneKernel, i, from int, out []float32) {
	to := from + len(out)
	if from < 0 || to > p.Len() {
		// The kernel reads the lanes unchecked.
		panic(fmt.Sprintf("matching: ScoreRun of members %d to %d in a pool of %d", from, to, p.Len()))
	}
	if kernel == portableKernel || len(out) < 2*laneWidth {
		for j := from; j < to; j++ {
			out[j-from] = p.Score(i, j)
		}
		return
	}
	first := (from + laneWidth - 1) / laneWidth // first whole block
	last := to / laneWidth                      // past the last whole block
	for j := from; j < first*laneWidth; j++ {
		out[j-from] = p.Score(i, j)
	}
	viewer := p.viewerOf(i)
	// In calls of at most laneCallBlocks: the goroutine cannot be
	// preempted inside one.
	for b := first; b < last; b += laneCallBlocks {
		scoreLaneBlocks(kernel, &viewer, &p.lanes[b], min(laneCallBlocks, last-b), &out[b*laneWidth-from])
	}
	if p.records[i].wide {
		for b := first; b < last; b++ {
			for wide := p.lanes[b].wide; wide != 0; wide &= wide - 1 {
				j := b*laneWidth + bits.TrailingZeros8(wide)
				out[j-from] = p.scoreRows(i, j)
			}
		}
	}
	for j := last * laneWidth; j < to; j++ {
		out[j-from] = p.Score(i, j)
	}
}
