package matching

// TieKey is the tie-break key of other in viewer's list, by UserID, for
// reference implementations in the external tests.
func TieKey(viewerID, otherID string) uint64 {
	return tieKey(fnv1a(viewerID), fnv1a(otherID))
}
