package matching

// TieKey is the tie-break key of other in viewer's list, by UserID, for
// reference implementations in the external tests.
func TieKey(viewerID, otherID string) uint64 {
	return tieKey(fnv1a(viewerID), fnv1a(otherID))
}

// ShallowRankings makes the capped assignment rank first candidates depth
// deep, rankAll add extra past the reserves and scans deeper than 2·depth
// sort, until restore is called, so that small events run the scans below
// a ranking's bound and both ways of keeping a scan's best. Only for
// tests that do not run in parallel.
func ShallowRankings(depth, extra int) (restore func()) {
	oldDepth, oldExtra, oldLimit := capRankingDepth, rankAllExtraDepth, insertionKeepLimit
	capRankingDepth, rankAllExtraDepth, insertionKeepLimit = depth, extra, 2*depth
	return func() { capRankingDepth, rankAllExtraDepth, insertionKeepLimit = oldDepth, oldExtra, oldLimit }
}

// KeepRankIndexes makes a repair keep the index of who ranks whom however
// many viewers are loose in it, until restore is called, so that small
// events exercise kept indexes. Only for tests that do not run in
// parallel.
func KeepRankIndexes() (restore func()) {
	old := maxLooseShare
	maxLooseShare = 1
	return func() { maxLooseShare = old }
}

// CheckIndexedOffers makes the capped assignment check every use of its
// index against a scan of the event (it panics on a pair the index
// missed), until restore is called. Only for tests that do not run in
// parallel.
func CheckIndexedOffers() (restore func()) {
	checkIndexedOffers = true
	return func() { checkIndexedOffers = false }
}

// Share is the fair share s holds, before its short lists are filled.
func (s *CapState) Share() [][]Entry { return s.share }

// RankedEntries is how many ranking entries s keeps, all viewers together.
func (s *CapState) RankedEntries() int {
	total := 0
	for _, r := range s.rankings {
		total += len(r.entries)
	}
	return total
}
