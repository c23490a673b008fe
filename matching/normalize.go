package matching

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eventmatch/matchmaker/profiletext"
)

// NormalizeTag returns the comparison key of a free-text tag: lowercase,
// trimmed, with inner whitespace runs collapsed to one space, so that
// "  Machine   Learning" and "machine learning" are the same tag.
func NormalizeTag(tag string) string {
	return strings.ToLower(tidySpaces(tag))
}

// tidySpaces keeps the author's capitalization but fixes the spacing; it is
// the readable form of a tag or industry shown back to users.
func tidySpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// tagKeys returns the distinct non-empty normalized keys of tags, in order
// of first appearance, read through profiletext.CapTags: at most
// profiletext.MaxTagsPerField keys of at most profiletext.MaxTagRunes runes,
// in time linear in the input. CapTags already drops blanks and duplicates
// by this very key (lowercase, spacing tidied), so no set is needed here.
func tagKeys(tags []string) []string {
	return keysOfCapped(profiletext.CapTags(tags))
}

// keysOfCapped is tagKeys of tags that already went through CapTags, whose
// spacing is tidy, so that lowercasing is all NormalizeTag has left to do.
func keysOfCapped(tags []string) []string {
	keys := make([]string, len(tags))
	for k, tag := range tags {
		keys[k] = strings.ToLower(tag)
	}
	return keys
}

// minBioTermLen drops very short tokens ("ai" is lost too, but interests
// already cover tags; in prose two-letter tokens are mostly noise).
const minBioTermLen = 3

// bioTerms returns the distinct informative terms of a bio in order of first
// appearance: lowercased, split on anything that is not a letter or digit,
// without stopwords, short tokens or pure numbers. The result depends only on
// the text itself, never on other attendees, so scores stay stable when
// someone joins the event.
//
// Only the first profiletext.MaxBioRunes runes are read, so the cost is
// linear in that prefix and flat beyond it.
func bioTerms(bio string) []string {
	// A sentence addressed to a model is not part of who someone is, and
	// must not buy a better rank.
	bio = profiletext.Sanitize(profiletext.CapBio(bio))
	tokens := strings.FieldsFunc(strings.ToLower(bio), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	terms := tokens[:0]
	seen := make(map[string]struct{}, min(len(tokens), 64))
	for _, token := range tokens {
		if utf8.RuneCountInString(token) < minBioTermLen || isNumber(token) || stopwords[token] {
			continue
		}
		if _, dup := seen[token]; dup {
			continue
		}
		seen[token] = struct{}{}
		terms = append(terms, token)
	}
	return terms
}

func isNumber(token string) bool {
	for _, r := range token {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// stopwords are English function words plus the boilerplate of self-written
// bios ("passionate", "currently", "experience"), which would otherwise make
// every pair of bios look alike. Without a population IDF this fixed list is
// what keeps the bio signal informative.
var stopwords = makeSet(
	// function words
	"a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "around", "as", "at",
	"be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
	"can", "could", "did", "does", "doing", "don", "down", "during", "each", "either", "else", "etc", "ever", "every",
	"few", "for", "from", "further", "get", "gets", "got", "had", "has", "have", "having", "her", "here", "hers", "herself",
	"him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "lot", "lots",
	"many", "may", "me", "might", "more", "most", "much", "must", "my", "myself", "neither", "nor", "not", "now",
	"of", "off", "on", "once", "one", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
	"per", "quite", "really", "same", "several", "she", "should", "since", "so", "some", "still", "such",
	"than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "thing", "things",
	"this", "those", "through", "thus", "to", "too", "two", "under", "until", "up", "upon", "us", "use", "used", "using",
	"very", "via", "was", "way", "ways", "we", "well", "were", "what", "when", "where", "whether", "which", "while",
	"who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours",
	"yourself", "yourselves", "ive", "im", "let", "lets", "like", "make", "makes", "making", "new", "always",
	"go", "goes", "going", "gone", "went", "know", "knows", "best", "good", "great", "big", "small", "next", "keen",
	// bio boilerplate
	"based", "building", "build", "builds", "chat", "connect", "connecting", "currently", "day", "days", "enjoy",
	"enjoys", "excited", "experience", "experienced", "focus", "focused", "focusing", "free", "happy", "help",
	"helping", "helps", "hobbies", "interested", "interest", "interests", "later", "learn", "life",
	"looking", "love", "loves", "meet", "meeting", "passion", "passionate", "people", "previously",
	"spend", "spending", "talk", "team", "teams", "time", "today", "want", "work", "worked", "working", "works",
	"year", "years", "outside", "formerly", "former", "prior", "across", "along", "ask", "feel", "reach",
)

func makeSet(words ...string) map[string]bool {
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}

// Bio texts are compared through a fixed-width hashed signature: one bit per
// term (FNV-1a modulo the width). A 512-bit signature keeps collisions rare
// for bios of a few dozen terms while the cosine is 8 AND+popcount steps.
const (
	bioSignatureBits  = 512
	bioSignatureWords = bioSignatureBits / 64
)

// setBioSignature sets one bit per term in signature (len bioSignatureWords)
// and returns how many bits are set, the |terms| used by the cosine.
func setBioSignature(signature []uint64, terms []string) int32 {
	var set int32
	for _, term := range terms {
		bit := fnv1a(term) % bioSignatureBits
		word, mask := bit/64, uint64(1)<<(bit%64)
		if signature[word]&mask == 0 {
			signature[word] |= mask
			set++
		}
	}
	return set
}

// fnv1a is 64-bit FNV-1a, inlined to avoid hash/fnv's allocations.
func fnv1a(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
