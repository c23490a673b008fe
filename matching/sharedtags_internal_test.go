package matching

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/profiletext"
)

// sharedTagsReference is sharedTags as it was before it relied on its
// input being capped: every tag normalized in full (NormalizeTag, and
// CapTags again on theirs).
func sharedTagsReference(mine, theirs []string) []string {
	theirKeys := tagKeys(theirs)
	type tag struct{ key, shown string }
	var shared []tag
	for _, t := range mine {
		key := NormalizeTag(t)
		if key == "" || !slices.Contains(theirKeys, key) || slices.ContainsFunc(shared, func(s tag) bool { return s.key == key }) {
			continue
		}
		shared = append(shared, tag{key, tidySpaces(t)})
	}
	slices.SortFunc(shared, func(a, b tag) int { return strings.Compare(a.key, b.key) })
	var shown []string
	for _, t := range shared {
		shown = append(shown, t.shown)
	}
	return shown
}

// TestSharedTagsOfCappedTags: on tags as a pool keeps them (through
// CapTags), sharedTags must give what full normalization gives, whatever
// the case, spacing, duplicates, letters whose lowercase is not a simple
// fold (Σ/ς, İ, the Kelvin sign) and lists past the cap.
func TestSharedTagsOfCappedTags(t *testing.T) {
	words := []string{"AI", "ai", " Ai ", "machine  learning", "Machine Learning", "ΣΟΦΙΑ", "σοφια", "σοφιας", "ΣΟΦΙΑΣ",
		"İstanbul", "istanbul", "\u212aelvin", "kelvin", "Fintech", "fintech\t", "", "   ", "Go", "GO", "Straße", "STRASSE"}
	rng := rand.New(rand.NewPCG(3, 9))
	list := func() []string {
		n := rng.IntN(8)
		if rng.IntN(20) == 0 {
			n = profiletext.MaxTagsPerField + 20
		}
		tags := make([]string, n)
		for k := range tags {
			tags[k] = words[rng.IntN(len(words))]
			if n > len(words) {
				tags[k] += strings.Repeat("x", k) // distinct, so the cap bites
			}
		}
		return tags
	}
	for range 5000 {
		mine, theirs := profiletext.CapTags(list()), profiletext.CapTags(list())
		got, want := sharedTags(mine, theirs), sharedTagsReference(mine, theirs)
		if !slices.Equal(got, want) {
			t.Fatalf("sharedTags(%q, %q) = %q, want %q", mine, theirs, got, want)
		}
	}
}
