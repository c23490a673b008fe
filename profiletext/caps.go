package profiletext

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps on how much of a profile scoring, the profile read and prompting
// look at. Profile fields are free text written by attendees (or pasted by
// them: a CV, a paper, a log dump), so every consumer reads at most these
// amounts and the cost of a profile is bounded no matter what is stored.
// Profiles within the caps are read in full, so capping never changes their
// scores; the caps are sized so that only text no real attendee writes on
// purpose is cut.
//
// Prompting caps more tightly on top of these (10 tags per field of at most
// 40 characters, 600 characters of bio; see package insight), and reads
// nothing beyond what these caps let through.
const (
	// MaxTagsPerField is how many tags of one field (interests, looking
	// for, offering) are kept, counted after empty tags and duplicates
	// (same tag up to case and spacing) are dropped; later tags are
	// ignored. Registration forms offer five to fifteen; 50 leaves room for
	// enthusiasts while a pasted list of 5,000 costs no more than 50.
	MaxTagsPerField = 50

	// MaxTagRunes is the length, in runes after spacing is tidied, at which
	// a tag is cut. Tags are keywords or short phrases ("machine learning",
	// "seed-stage fundraising"); 100 runes fits any real one, in any
	// script, with room to spare.
	MaxTagRunes = 100

	// MaxBioRunes is the prefix of a bio, in runes, that scoring reads.
	// 5,000 runes is some 800 words, about twice the longest "about"
	// section that professional networks accept (LinkedIn: 2,600
	// characters), so every bio written as a bio is read whole, while the
	// bag-of-words signal gains nothing from more text.
	MaxBioRunes = 5000
)

// CapTags returns tags as scoring and prompting read them: spacing tidied
// (trimmed, inner whitespace runs collapsed to one space), empty and
// whitespace-only tags dropped, each tag cut to MaxTagRunes runes on a rune
// boundary, duplicates (equal up to case and spacing) dropped keeping the
// first spelling, and at most MaxTagsPerField tags kept, in input order.
//
// The cost is linear in the input and stops growing once MaxTagsPerField
// tags are kept. When tags is already in that form it is returned as is,
// without allocating, so callers must not modify the result if they keep
// the input, and vice versa.
func CapTags(tags []string) []string {
	var (
		out     []string // nil while out would equal tags[:len(out)]
		keysBuf [MaxTagsPerField]string
		// keys are the lowercase keys of the kept tags. Searching them
		// linearly costs at most n·MaxTagsPerField comparisons for n tags,
		// and the common short lists need no map.
		keys = keysBuf[:0]
		kept int
	)
	for i, tag := range tags {
		if kept == MaxTagsPerField {
			if out == nil {
				out = tags[:kept:kept]
			}
			break
		}
		tidy := tidyPrefix(tag, MaxTagRunes)
		key := strings.ToLower(tidy)
		if tidy == "" || slices.Contains(keys, key) {
			if out == nil {
				out = make([]string, i, MaxTagsPerField)
				copy(out, tags[:i])
			}
			continue
		}
		if out == nil && tidy != tag {
			out = make([]string, i, MaxTagsPerField)
			copy(out, tags[:i])
		}
		if out != nil {
			out = append(out, tidy)
		}
		keys = append(keys, key)
		kept++
	}
	if out == nil {
		return tags
	}
	return out
}

// tidyPrefix returns strings.Join(strings.Fields(s), " ") cut to at most
// limit runes (without a trailing space), reading s only until the cut.
func tidyPrefix(s string, limit int) string {
	// Fast path: already tidy and short enough, which is almost every tag.
	if tidyAndShort(s, limit) {
		return s
	}
	var b strings.Builder
	runes := 0
	space := false // a space is owed before the next word
	for i := 0; i < len(s) && runes < limit; {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			i += size
			continue
		}
		if space {
			if runes+2 > limit {
				break
			}
			b.WriteByte(' ')
			runes++
			space = false
		}
		b.WriteString(s[i : i+size]) // the input's bytes, even if not valid UTF-8
		runes++
		i += size
	}
	return b.String()
}

// tidyAndShort reports whether s has at most limit runes, no leading or
// trailing whitespace, and no whitespace other than single ' ' between
// words; it reads at most limit runes of s.
func tidyAndShort(s string, limit int) bool {
	runes := 0
	prevSpace := true // so that leading whitespace fails
	for i := 0; i < len(s); {
		if runes == limit {
			return false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			if r != ' ' || prevSpace {
				return false
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		runes++
		i += size
	}
	return !prevSpace || s == ""
}

// CapBio returns the first MaxBioRunes runes of bio, cut on a rune boundary
// (invalid UTF-8 bytes count as one rune each). It reads only the prefix it
// returns, so a 1 MB bio costs what its first MaxBioRunes runes cost.
func CapBio(bio string) string {
	return prefixRunes(bio, MaxBioRunes)
}

// prefixRunes returns the first limit runes of s in O(limit).
func prefixRunes(s string, limit int) string {
	if len(s) <= limit { // a rune is at least one byte
		return s
	}
	i := 0
	for runes := 0; runes < limit && i < len(s); runes++ {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
