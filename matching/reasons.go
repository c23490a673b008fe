package matching

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eventmatch/matchmaker/profiletext"
)

// Reasons explains a match from the viewer's point of view. Tags are shown
// in the viewer's own spelling (spacing tidied), so the text reads naturally
// to them and does not depend on who else is in the pool; lists are sorted
// by their normalized form.
type Reasons struct {
	SharedInterests []string `json:"shared_interests,omitempty"`
	TheyOffer       []string `json:"they_offer,omitempty"` // viewer's looking_for ∩ other's offering
	YouOffer        []string `json:"you_offer,omitempty"`  // other's looking_for ∩ viewer's offering
	SameIndustry    string   `json:"same_industry,omitempty"`
	SharedBioTerms  []string `json:"shared_bio_terms,omitempty"`
	Score           float32  `json:"score"`
}

// Reasons lists what viewer and other have in common. SharedBioTerms come
// from the exact term sets, while the score uses hashed signatures, so in
// rare hash collisions the score credits a term that is not listed. They
// leave out the event's boilerplate (a term most bios use, which the score
// does not count either), so a fallback insight never says two people
// both mention what nearly everyone mentions.
func (p *Pool) Reasons(viewer, other int) Reasons {
	me, them := p.tags[viewer], p.tags[other]
	r := Reasons{
		SharedInterests: sharedTags(me.interests, them.interests),
		TheyOffer:       sharedTags(me.lookingFor, them.offering),
		YouOffer:        sharedTags(me.offering, them.lookingFor),
		SharedBioTerms:  p.notBoilerplate(sharedBioTerms(p.bioTerms[viewer], p.bioTerms[other])),
		Score:           p.Score(viewer, other),
	}
	if p.industry[viewer] != 0 && p.industry[viewer] == p.industry[other] {
		r.SameIndustry = tidySpaces(p.profiles[viewer].Industry)
	}
	return r
}

// sharedTags returns the tags in mine that also occur in theirs, in mine's
// spelling, sorted by normalized key; nil when there are none. Both are a
// pool's capped tags (profiletext.CapTags): tidy, so that a tag's key
// (NormalizeTag) is its lowercase form, and at most
// profiletext.MaxTagsPerField, so the scans are short and the keys fit on
// the stack. Building a batch's rows calls this three times a row, and
// normalizing both lists again each time (CapTags, Fields and Join) was
// most of a row's cost.
func sharedTags(mine, theirs []string) []string {
	if len(mine) == 0 || len(theirs) == 0 {
		return nil
	}
	var keysBuf [profiletext.MaxTagsPerField]string
	theirKeys := keysBuf[:0]
	for _, t := range theirs {
		theirKeys = append(theirKeys, strings.ToLower(t))
	}
	type tag struct{ key, shown string }
	var sharedBuf [profiletext.MaxTagsPerField]tag
	shared := sharedBuf[:0]
	for _, t := range mine {
		key := strings.ToLower(t)
		if key == "" || !slices.Contains(theirKeys, key) || slices.ContainsFunc(shared, func(s tag) bool { return s.key == key }) {
			continue
		}
		shared = append(shared, tag{key, t})
	}
	if len(shared) == 0 {
		return nil
	}
	slices.SortFunc(shared, func(a, b tag) int { return strings.Compare(a.key, b.key) })
	shown := make([]string, len(shared))
	for k, t := range shared {
		shown[k] = t.shown
	}
	return shown
}

// sharedBioTerms returns the terms of mine also in theirs, sorted. Both are
// distinct terms of bios capped at profiletext.MaxBioRunes, so up to about
// a thousand each: beyond a few dozen pairs a set of theirs keeps this
// linear, below it a scan is cheaper than the map.
func sharedBioTerms(mine, theirs []string) []string {
	var shared []string
	if len(mine)*len(theirs) <= 1024 {
		for _, term := range mine {
			if slices.Contains(theirs, term) {
				shared = append(shared, term)
			}
		}
	} else {
		set := make(map[string]struct{}, len(theirs))
		for _, term := range theirs {
			set[term] = struct{}{}
		}
		for _, term := range mine {
			if _, ok := set[term]; ok {
				shared = append(shared, term)
			}
		}
	}
	slices.Sort(shared)
	return shared
}

// notBoilerplate drops the event's boilerplate terms from terms, in place.
func (p *Pool) notBoilerplate(terms []string) []string {
	kept := slices.DeleteFunc(terms, func(term string) bool { return p.terms.class(term) == boilerplateTerm })
	if len(kept) == 0 {
		return nil
	}
	return kept
}

// Limits of the fallback text: short enough for a card or a push message.
const (
	maxInsightChars    = 280
	maxItemsPerInsight = 3
)

// FallbackInsight is a plain 1–2 sentence explanation addressed to the viewer
// about otherName, built only from r; it is used when no generated insight is
// available. Lists show at most three items, and the text is always at most
// 280 characters: items are dropped, then the second sentence, then the
// text is cut, until it fits.
func FallbackInsight(otherName string, r Reasons) string {
	name := tidySpaces(otherName)
	if name == "" {
		name = "this person"
	}
	for items := maxItemsPerInsight; items >= 1; items-- {
		text := strings.Join(insightSentences(name, r, items), " ")
		if utf8.RuneCountInString(text) <= maxInsightChars {
			return text
		}
	}
	first := insightSentences(name, r, 1)[0]
	if utf8.RuneCountInString(first) <= maxInsightChars {
		return first
	}
	return truncateRunes(first, maxInsightChars-1) + "…"
}

// insightSentences returns one sentence about common ground (interests and
// industry, else bio terms) and one about what each side can offer, or a
// generic sentence when r holds nothing.
func insightSentences(name string, r Reasons, items int) []string {
	var sentences []string
	interests := joinItems(r.SharedInterests, items)
	switch {
	case interests != "" && r.SameIndustry != "":
		sentences = append(sentences, fmt.Sprintf("You and %s both work in %s and care about %s.", name, r.SameIndustry, interests))
	case interests != "":
		sentences = append(sentences, fmt.Sprintf("You and %s both care about %s.", name, interests))
	case r.SameIndustry != "":
		sentences = append(sentences, fmt.Sprintf("You and %s both work in %s.", name, r.SameIndustry))
	case len(r.SharedBioTerms) > 0:
		sentences = append(sentences, fmt.Sprintf("You and %s both mention %s in your bios.", name, joinItems(r.SharedBioTerms, items)))
	}

	theyOffer, youOffer := joinItems(r.TheyOffer, items), joinItems(r.YouOffer, items)
	switch {
	case theyOffer != "" && youOffer != "":
		sentences = append(sentences, capitalize(fmt.Sprintf("%s offers %s, which you are looking for, and you can offer %s in return.", name, theyOffer, youOffer)))
	case theyOffer != "":
		sentences = append(sentences, capitalize(fmt.Sprintf("%s offers %s, which you are looking for.", name, theyOffer)))
	case youOffer != "":
		sentences = append(sentences, capitalize(fmt.Sprintf("%s is looking for %s, which you can offer.", name, youOffer)))
	}

	if len(sentences) == 0 {
		sentences = append(sentences, capitalize(name+" is another attendee worth meeting here."))
	}
	return sentences
}

// joinItems writes up to limit items as "a", "a and b" or "a, b and c".
func joinItems(items []string, limit int) string {
	items = items[:min(len(items), limit)]
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	default:
		return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	first, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(first)) + s[size:]
}

func truncateRunes(s string, limit int) string {
	count := 0
	for at := range s {
		if count == limit {
			return s[:at]
		}
		count++
	}
	return s
}
