package matching

import "math/bits"

// inlineTagWords is how many words of each tag row a scoreRecord holds:
// tag IDs are given by descending frequency (idsByFrequency), so the 128
// most common tags of each field, which most rows consist of, are inline.
const inlineTagWords = 2

// scoreRecord is what Score reads of one member, packed into 128 bytes,
// two cache lines: scoring a member against the whole event walks the
// records in order, so each candidate costs two consecutive lines that the
// hardware prefetches, where separate arrays per signal cost a line each
// and a lookup of where each tag row starts. (The records array of an
// event large enough to matter is a large allocation, which Go aligns to a
// page, so every record starts on a line.)
//
// Only the first inlineTagWords words of each tag row are here; the whole
// rows stay in the pool's tagBitsets. Counts are of the whole rows.
type scoreRecord struct {
	bio                            [bioSignatureWords]uint64
	interests                      [inlineTagWords]uint64
	lookingFor                     [inlineTagWords]uint64
	offering                       [inlineTagWords]uint64
	bioInvNorm                     float64 // reciprocal of the bio's norm, 0 without counted terms
	industry                       int32   // interned, 0 for none
	interestCount, lookingForCount uint8
	offeringCount                  uint8
	// wide is set when one of the member's tag rows goes past the inline
	// words. A pair of which at most one member is wide shares no tag past
	// them, so its inline words give the exact score.
	wide bool
}

// setTagRecord copies profile i's industry and the inline part of its tag
// rows into its record, from the pool's tagBitsets.
func (p *Pool) setTagRecord(i int) {
	r := &p.records[i]
	r.industry = p.industry[i]
	r.wide = false
	for _, field := range []struct {
		rows   *tagBitsets
		inline *[inlineTagWords]uint64
		count  *uint8
	}{
		{&p.interests, &r.interests, &r.interestCount},
		{&p.lookingFor, &r.lookingFor, &r.lookingForCount},
		{&p.offering, &r.offering, &r.offeringCount},
	} {
		row := field.rows.row(i)
		*field.inline = [inlineTagWords]uint64{}
		copy(field.inline[:], row)
		// Counts are capped by profiletext.MaxTagsPerField, far below 256.
		*field.count = uint8(field.rows.count[i])
		if len(row) > inlineTagWords {
			r.wide = true
		}
	}
}

// scoreRecords is Score for a pair of which at most one member is wide:
// the same counts through the same formulas as scoreRows (jaccardOf,
// coverageOf, bioCosineOf, weighScore), so the two agree bit for bit
// (TestScoreRecordsAgreeWithTheWholeRows).
func scoreRecords(a, b *scoreRecord) float32 {
	interests := jaccardOf(sharedInline(&a.interests, &b.interests), int(a.interestCount), int(b.interestCount))
	complementary := (coverageOf(sharedInline(&a.lookingFor, &b.offering), int(a.lookingForCount), int(b.offeringCount)) +
		coverageOf(sharedInline(&b.lookingFor, &a.offering), int(b.lookingForCount), int(a.offeringCount))) / 2
	industry := 0.0
	if a.industry != 0 && a.industry == b.industry {
		industry = 1
	}
	return weighScore(interests, complementary, bioCosineOf(a, b), industry)
}

// sharedInline counts the tags two inline rows share.
func sharedInline(a, b *[inlineTagWords]uint64) int {
	return bits.OnesCount64(a[0]&b[0]) + bits.OnesCount64(a[1]&b[1])
}

// weighScore adds the weighted signals. Each weighted term is explicitly
// converted before summing because Go may otherwise fuse multiply-adds on
// some platforms, and stored scores must match recomputed ones exactly
// wherever they were computed.
func weighScore(interests, complementary, bio, industry float64) float32 {
	total := float64(weightInterests*interests) +
		float64(weightComplementary*complementary) +
		float64(weightBio*bio) +
		float64(weightIndustry*industry)
	return float32(min(total, 1))
}
