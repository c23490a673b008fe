package matching

// TieKey is the tie-break key of other in viewer's list, by UserID, for
// reference implementations in the external tests.
func TieKey(viewerID, otherID string) uint64 {
	return tieKey(fnv1a(viewerID), fnv1a(otherID))
}

// ShallowRankings makes the capped assignment rank first candidates depth
// deep and rankAll add extra past the reserves, until restore is called,
// so that small events run the scans below a ranking's bound. Only for
// tests that do not run in parallel.
func ShallowRankings(depth, extra int) (restore func()) {
	oldDepth, oldExtra := capRankingDepth, rankAllExtraDepth
	capRankingDepth, rankAllExtraDepth = depth, extra
	return func() { capRankingDepth, rankAllExtraDepth = oldDepth, oldExtra }
}

// CheckIndexedOffers makes the capped assignment check every use of its
// index against a scan of the event (it panics on a pair the index
// missed), until restore is called. Only for tests that do not run in
// parallel.
func CheckIndexedOffers() (restore func()) {
	checkIndexedOffers = true
	return func() { checkIndexedOffers = false }
}
