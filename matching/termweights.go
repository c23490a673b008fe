package matching

import (
	"math"
	"math/bits"
)

// How much a bio term counts depends on how many of the event's bios use
// it: a term most bios share ("datathon" at a datathon, "student" at a
// student hackathon) says nothing about two people, however often they
// both use it, so it counts for nothing, in the score and in Reasons.
//
// This is one step, not a smooth IDF, and shares are taken against the
// number of bios rounded down to a power of two, so that a pair's score
// moves only when such a term's count crosses the step or the number of
// bios doubles, never with every member who joins as a smooth IDF would:
// every stored list is validated by recomputing its scores, and a change
// of weights sends every list back to a full scan (SameTermWeights). An
// IDF in three steps, tried first, still moved some weight about 200 times
// over 10,000 synthetic members joining one by one against the exact
// number of bios, and 75 times against the rounded one; this step moves
// none (go test -run TermWeightChanges -v ./matching/). Below
// minRarityBios bios a share says little, and every term counts.
const (
	// A term in more than 2/3 of the rounded number of bios (between 1/3
	// and 2/3 of the bios) is boilerplate.
	boilerplateNumerator, boilerplateDenominator = 2, 3
	minRarityBios                                = 20
)

type termClass uint8

const (
	countedTerm termClass = iota
	boilerplateTerm
)

// classOf is the class of a term used by count of bios bios.
func classOf(count, bios int32) termClass {
	if bios < minRarityBios {
		return countedTerm
	}
	rounded := int32(1) << (bits.Len32(uint32(bios)) - 1)
	if count*boilerplateDenominator > rounded*boilerplateNumerator {
		return boilerplateTerm
	}
	return countedTerm
}

// termStats counts, for every bio term of the event, the bios that use it.
// Both NewPool and Apply keep it exact, so the weights are a function of
// the event's profiles alone: a pool Apply derives scores every pair as
// NewPool over the same profiles does.
type termStats struct {
	count map[string]int32
	bios  int32 // profiles with at least one bio term
	// key fingerprints the boilerplate terms; two pools with equal keys
	// weigh every term alike.
	key uint64
}

func (s *termStats) add(terms []string, delta int32) {
	if len(terms) == 0 {
		return
	}
	s.bios += delta
	for _, term := range terms {
		c := s.count[term] + delta
		if c == 0 {
			delete(s.count, term)
		} else {
			s.count[term] = c
		}
	}
}

func (s *termStats) class(term string) termClass {
	return classOf(s.count[term], s.bios)
}

// setKey recomputes key; it is order-independent (a sum of per-term hashes).
func (s *termStats) setKey() {
	s.key = 0
	if s.bios < minRarityBios {
		return
	}
	for term, count := range s.count {
		if classOf(count, s.bios) == boilerplateTerm {
			s.key += mix64(fnv1a(term))
		}
	}
}

// setBioRow writes the signature of a profile's counted bio terms (all but
// the boilerplate) into row (len bioSignatureWords) and returns the
// reciprocal of its norm, sqrt of the terms counted, 0 when none is.
func (s *termStats) setBioRow(row []uint64, terms []string) float64 {
	clear(row)
	counted := make([]string, 0, len(terms))
	for _, term := range terms {
		if s.class(term) == countedTerm {
			counted = append(counted, term)
		}
	}
	norm := setBioSignature(row, counted)
	if norm == 0 {
		return 0
	}
	return 1 / math.Sqrt(float64(norm))
}

// SameTermWeights reports whether p weighs every bio term as q does, so
// that a pair of members whose profiles are the same in both pools has the
// same score in both. A caller holding lists computed on q must score them
// all again on p when it does not: a list whose own entries kept their
// scores may still have been beaten by someone left out.
func (p *Pool) SameTermWeights(q *Pool) bool {
	return p.terms.key == q.terms.key
}

// mix64 is SplitMix64's finalizer: a bijection that spreads every input
// bit over the output.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// tieKey orders the candidates of one viewer that have equal scores: a
// hash of both user IDs, so that who wins a tie differs from viewer to
// viewer instead of always favouring the smallest user IDs. It is
// symmetric (the pair's key, whoever views), so that a viewer's order and a
// candidate's order of its listers agree with one order over all pairs,
// which the capped assignment needs (see pairBefore in cap.go).
func tieKey(viewerHash, otherHash uint64) uint64 {
	lo, hi := min(viewerHash, otherHash), max(viewerHash, otherHash)
	return mix64(lo ^ mix64(hi+0x9e3779b97f4a7c15))
}

// MarkForRescore returns lists with every list made invalid, so that the
// next update scores each against the whole pool (and reports it changed):
// what a caller must do with lists computed on a pool whose term weights
// were not this one's (SameTermWeights). lists is not modified.
func MarkForRescore(lists [][]Entry) [][]Entry {
	out := make([][]Entry, len(lists))
	for v := range out {
		out[v] = []Entry{{Other: -1}}
	}
	return out
}
