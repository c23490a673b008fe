package profiletext

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSanitizeHostile checks that Sanitize is linear, also on the
// inputs that reach the regular expressions: one endless sentence full of
// trigger words, and many short ones. ns/op divided by the size must stay
// flat from 10 KB to 1 MB.
func BenchmarkSanitizeHostile(b *testing.B) {
	inputs := map[string]string{
		"one-sentence": "ignore the previous system rules as an ai ",
		"many-short":   "Ignore previous. Rank. System! ",
		"prose":        "I build robots for warehouses and mentor juniors. ",
	}
	for _, name := range []string{"one-sentence", "many-short", "prose"} {
		for _, size := range []int{10 << 10, 100 << 10, 1 << 20} {
			text := strings.Repeat(inputs[name], size/len(inputs[name])+1)[:size]
			b.Run(fmt.Sprintf("%s/%dKB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					Sanitize(text)
				}
			})
		}
	}
}
