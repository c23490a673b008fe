package matching

import (
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
)

// TestTermWeightChanges counts how often the term weights change as a
// synthetic event grows member by member: every change costs every list a
// full scan, so it must be rare. The figures are in termweights.go.
func TestTermWeightChanges(t *testing.T) {
	profiles := demodata.Generate(1, 10000)
	s := termStats{count: map[string]int32{}}
	changes, last := 0, uint64(0)
	for i := range profiles {
		s.add(bioTerms(profiles[i].Bio), 1)
		s.setKey()
		if s.key != last {
			changes++
			last = s.key
		}
	}
	t.Logf("term weights changed %d times over %d joins", changes, len(profiles))
	if changes > 5 {
		t.Fatalf("term weights changed %d times over %d joins", changes, len(profiles))
	}
}

// A term in most bios counts for nothing once the event has enough bios,
// and stops counting when enough bios use it.
func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		count, bios int32
		want        termClass
	}{
		{19, 19, countedTerm},        // too few bios to tell
		{20, 20, boilerplateTerm},    // everyone
		{14, 20, boilerplateTerm},    // 14 > 16·2/3
		{10, 20, countedTerm},        // 10 < 16·2/3
		{700, 1000, boilerplateTerm}, // 700 > 512·2/3
		{300, 1000, countedTerm},
	} {
		if got := classOf(tc.count, tc.bios); got != tc.want {
			t.Errorf("classOf(%d, %d) = %v, want %v", tc.count, tc.bios, got, tc.want)
		}
	}
}
