package profiletext

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCapTags(t *testing.T) {
	long := strings.Repeat("é", MaxTagRunes+7) // two bytes a rune: a byte cut would split one
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, nil},
		{"tidy kept as is", []string{"AI", "Machine learning"}, []string{"AI", "Machine learning"}},
		{"blanks dropped", []string{"", "  ", "\t\n", "AI", "\u00a0"}, []string{"AI"}},
		{"spacing tidied", []string{"  Machine \t Learning  "}, []string{"Machine Learning"}},
		{"duplicates up to case and spacing", []string{"AI", " ai ", "Machine Learning", "machine  learning", "AI"},
			[]string{"AI", "Machine Learning"}},
		{"cut on a rune boundary", []string{long}, []string{strings.Repeat("é", MaxTagRunes)}},
		{"no trailing space after the cut", []string{strings.Repeat("a", MaxTagRunes-1) + " b"},
			[]string{strings.Repeat("a", MaxTagRunes-1)}},
		{"cut then deduplicated", []string{long, long + "x"}, []string{strings.Repeat("é", MaxTagRunes)}},
		{"rtl and zero-width kept", []string{"تعلم الآلة", "A\u200bI", "AI"}, []string{"تعلم الآلة", "A\u200bI", "AI"}},
		{"control characters kept", []string{"a\x01b", "a\x01b"}, []string{"a\x01b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CapTags(c.in)
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Errorf("CapTags(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestCapTagsKeepsAtMostMaxDistinct(t *testing.T) {
	var tags []string
	for i := range 5000 {
		switch i % 5 {
		case 0:
			tags = append(tags, "")
		case 1:
			tags = append(tags, "Dup Tag")
		case 2:
			tags = append(tags, " dup  tag ")
		default:
			tags = append(tags, "tag "+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26)))
		}
	}
	got := CapTags(tags)
	if len(got) != MaxTagsPerField {
		t.Fatalf("kept %d tags, want %d", len(got), MaxTagsPerField)
	}
	seen := map[string]bool{}
	for _, tag := range got {
		key := strings.ToLower(tag)
		if tag == "" || seen[key] || utf8.RuneCountInString(tag) > MaxTagRunes {
			t.Fatalf("bad or duplicate tag %q in %q", tag, got)
		}
		seen[key] = true
	}
	if got[0] != "Dup Tag" {
		t.Errorf("first spelling not kept: %q", got[0])
	}
	// Capping is idempotent and then returns its input unchanged.
	if again := CapTags(got); &again[0] != &got[0] || len(again) != len(got) {
		t.Errorf("CapTags of capped tags made a new slice")
	}
}

// Lowercase tags: for others only strings.ToLower allocates.
func TestCapTagsDoesNotAllocateForTidyTags(t *testing.T) {
	tags := []string{"ai", "machine learning", "climate tech", "fundraising"}
	if n := testing.AllocsPerRun(100, func() { CapTags(tags) }); n != 0 {
		t.Errorf("%v allocations for tags already within the caps", n)
	}
	// Truncating to MaxTagsPerField must not let appends reach the input.
	many := make([]string, MaxTagsPerField+1)
	for i := range many {
		many[i] = strings.Repeat("t", i+1)
	}
	got := CapTags(many)
	if cap(got) != MaxTagsPerField {
		t.Errorf("cut slice has capacity %d, want %d", cap(got), MaxTagsPerField)
	}
}

// TestTidyPrefixMatchesFields checks the single-pass tidy-and-cut against
// its definition on random strings of spaces of every kind, multi-byte and
// invalid UTF-8.
func TestTidyPrefixMatchesFields(t *testing.T) {
	alphabet := []string{"a", "B", " ", "  ", "\t", "\n", "\u00a0", "\u0085", "\u3000", "é", "語", "\u200b", "\xff", "\xe2\x82", "\x01", "ب"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		limit := 1 + rng.IntN(25)
		if got, want := tidyPrefix(s, limit), tidyPrefixReference(s, limit); got != want {
			t.Fatalf("tidyPrefix(%q, %d) = %q, want %q", s, limit, got, want)
		}
	}
}

func tidyPrefixReference(s string, limit int) string {
	tidy := strings.Join(strings.Fields(s), " ")
	runes := 0
	for i := range tidy {
		if runes == limit {
			return strings.TrimRight(tidy[:i], " ")
		}
		runes++
	}
	return tidy
}

func TestCapBio(t *testing.T) {
	short := "I build robots."
	if got := CapBio(short); got != short {
		t.Errorf("CapBio changed a short bio: %q", got)
	}
	exact := strings.Repeat("語", MaxBioRunes) // 3 bytes a rune, so longer than the cap in bytes
	if got := CapBio(exact); got != exact {
		t.Errorf("CapBio cut a bio of exactly MaxBioRunes runes to %d runes", utf8.RuneCountInString(got))
	}
	for _, unit := range []string{"a", "é", "語", "😀", "\u200f", "\xff", "ب\u200b"} {
		bio := strings.Repeat(unit, 2*MaxBioRunes)
		got := CapBio(bio)
		if !strings.HasPrefix(bio, got) {
			t.Fatalf("CapBio(%q…) is not a prefix", unit)
		}
		if n := utf8.RuneCountInString(got); n != MaxBioRunes {
			t.Errorf("CapBio(%q…) has %d runes, want %d", unit, n, MaxBioRunes)
		}
		if utf8.ValidString(bio) && !utf8.ValidString(got) {
			t.Errorf("CapBio(%q…) split a rune", unit)
		}
	}
}

func TestCapBioReadsOnlyThePrefix(t *testing.T) {
	huge := strings.Repeat("語", 1<<20) // 3 MB
	if n := testing.AllocsPerRun(10, func() { CapBio(huge) }); n != 0 {
		t.Errorf("CapBio allocated %v times", n)
	}
}

// BenchmarkCapBio shows the cost of CapBio does not depend on the bio's
// length beyond the cap.
func BenchmarkCapBio(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		bio := strings.Repeat("Robotics é ", size/12)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			for b.Loop() {
				CapBio(bio)
			}
		})
	}
}
