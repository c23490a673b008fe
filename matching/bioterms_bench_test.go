package matching

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// hugeBio is a deterministic bio of about size bytes of prose whose words
// are mostly distinct, the worst case for de-duplicating terms: ordinary
// sentences mixed with invented words, the way a pasted paper or a log dump
// reads to the tokenizer.
func hugeBio(size int) string {
	rng := rand.New(rand.NewPCG(uint64(size), 3))
	common := []string{"robotics", "climate", "founder", "investor", "logistics", "the", "and", "with", "research"}
	var b strings.Builder
	b.Grow(size + 32)
	words := 0
	for b.Len() < size {
		if rng.IntN(3) == 0 {
			b.WriteString(common[rng.IntN(len(common))])
		} else {
			for range 4 + rng.IntN(6) {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		words++
		if words%12 == 0 {
			b.WriteString(". ")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// BenchmarkBioTermsHuge shows that a bio's cost stops growing at the cap:
// everything past the first MaxBioRunes runes is never read.
func BenchmarkBioTermsHuge(b *testing.B) {
	for _, size := range []int{10 << 10, 100 << 10, 1 << 20, 1200 << 10} {
		bio := hugeBio(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bioTerms(bio)
			}
		})
	}
}
