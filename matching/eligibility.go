package matching

import (
	"context"
	"slices"
	"sync"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/profiletext"
)

// eligibility is what decides, besides the same-company rule, who may
// appear in whose list: the event's organiser rules on attendee types,
// shared languages, and the members' exclusions. It is laid out for
// Eligible, which the scoring loops call for every pair: types are small
// integers looked up in a flat matrix, languages are bitsets, and
// exclusions are sorted slices that most members do not have.
//
// Rules and exclusions restrict; languages restrict only when both sides
// list some. An event without rules, languages or exclusions pays one
// boolean per pair (restricts); one with them, a type lookup and a flag
// byte per member for the pairs where neither side lists languages or
// exclusions.
type eligibility struct {
	// restricts is false while the event has no rules and no member lists
	// languages or exclusions, so that Eligible skips the rest. Apply only
	// ever turns it on.
	restricts bool
	// flags[i] says whether member i lists languages (hasLanguages) and
	// has exclusions (hasExclusions).
	flags []uint8
	// rules is nil when the event has none. A pool and every pool Apply
	// derives from it share one; changed rules mean a new pool
	// (NewPoolWithRules).
	rules *typeRules
	// attendeeType[i] is member i's type as a row of rules.allowed: 0 for
	// a member without a type or of a type no rule names. Nil without
	// rules.
	attendeeType []int32
	// languages[i] is the bitset of member i's language IDs; nil when they
	// list none.
	languages [][]uint64
	// excluded[i] are the UserIDs member i is never matched with, sorted
	// and distinct; nil for most members.
	excluded [][]string
	// languageIDs are shared by a pool and every pool derived from it.
	languageIDs *languageIDs
}

const (
	hasLanguages uint8 = 1 << iota
	hasExclusions
)

// typeRules is an event's match_rules as a matrix over type IDs 1..k;
// ID 0 stands for every type no rule names, and for no type, and is
// allowed nothing.
type typeRules struct {
	ids     map[string]int32 // NormalizeTag(type) -> ID
	stride  int
	allowed []bool // [viewer*stride + candidate]
}

type languageIDs struct {
	mu  sync.Mutex
	ids map[string]int
}

// NewPoolWithRules is NewPoolContext for an event with organiser rules:
// when rules is not empty, a member is shown only members of the types a
// rule pairs with their own type (attendee.Rule). A member without a type,
// or of a type no rule names, is then shown nobody and shown to nobody: the
// rules are the event's whole list of who meets whom. Types compare as tags
// do, case- and space-insensitively. Pools Apply derives keep the rules;
// rules that change need a new pool.
func NewPoolWithRules(ctx context.Context, profiles []attendee.Profile, rules []attendee.Rule) (*Pool, error) {
	p, err := NewPoolContext(ctx, profiles)
	if err != nil {
		return nil, err
	}
	p.elig.setRules(rules, profiles)
	return p, nil
}

// newEligibility reads the languages and exclusions of every profile; the
// pool has no rules until setRules.
func newEligibility(profiles []attendee.Profile) eligibility {
	e := eligibility{
		flags:       make([]uint8, len(profiles)),
		languages:   make([][]uint64, len(profiles)),
		excluded:    make([][]string, len(profiles)),
		languageIDs: &languageIDs{ids: map[string]int{}},
	}
	for i := range profiles {
		e.set(i, &profiles[i])
	}
	return e
}

// setRules gives a pool that is still being built its rules.
func (e *eligibility) setRules(rules []attendee.Rule, profiles []attendee.Profile) {
	if len(rules) == 0 {
		e.rules, e.attendeeType = nil, nil
		return
	}
	r := &typeRules{ids: map[string]int32{}}
	id := func(t string) int32 {
		key := NormalizeTag(t)
		if key == "" {
			return 0
		}
		if _, ok := r.ids[key]; !ok {
			r.ids[key] = int32(len(r.ids) + 1)
		}
		return r.ids[key]
	}
	pairs := make([][2]int32, 0, len(rules))
	for _, rule := range rules {
		pairs = append(pairs, [2]int32{id(rule.ViewerType), id(rule.CandidateType)})
	}
	r.stride = len(r.ids) + 1
	r.allowed = make([]bool, r.stride*r.stride)
	for _, pair := range pairs {
		if pair[0] != 0 && pair[1] != 0 {
			r.allowed[int(pair[0])*r.stride+int(pair[1])] = true
		}
	}
	e.rules, e.restricts = r, true
	e.attendeeType = make([]int32, len(profiles))
	for i := range profiles {
		e.attendeeType[i] = r.typeOf(&profiles[i])
	}
}

func (r *typeRules) typeOf(profile *attendee.Profile) int32 {
	return r.ids[NormalizeTag(profile.AttendeeType)] // 0 when no rule names it
}

// set reads member i's languages, exclusions and type from profile.
func (e *eligibility) set(i int, profile *attendee.Profile) {
	e.languages[i] = e.languageIDs.bitset(keysOfCapped(profiletext.CapTags(profile.Languages)))
	e.excluded[i] = nil
	if len(profile.Excluded) > 0 {
		excluded := slices.Clone(profile.Excluded)
		slices.Sort(excluded)
		e.excluded[i] = slices.Compact(excluded)
	}
	if e.rules != nil {
		e.attendeeType[i] = e.rules.typeOf(profile)
	}
	e.flags[i] = 0
	if e.languages[i] != nil {
		e.flags[i] |= hasLanguages
	}
	if e.excluded[i] != nil {
		e.flags[i] |= hasExclusions
	}
	e.restricts = e.restricts || e.flags[i] != 0
}

// bitset interns keys and returns their bitset, nil for no keys.
func (l *languageIDs) bitset(keys []string) []uint64 {
	if len(keys) == 0 {
		return nil
	}
	l.mu.Lock()
	ids := internTags(l.ids, keys)
	l.mu.Unlock()
	width := 0
	for _, id := range ids {
		width = max(width, id/64+1)
	}
	set := make([]uint64, width)
	for _, id := range ids {
		set[id/64] |= 1 << (id % 64)
	}
	return set
}

// clone copies the per-member slices so that Apply can set, drop and
// append members; rows themselves are never modified, so they are shared.
func (e *eligibility) clone() eligibility {
	c := *e
	c.flags = slices.Clone(e.flags)
	c.languages = slices.Clone(e.languages)
	c.excluded = slices.Clone(e.excluded)
	c.attendeeType = slices.Clone(e.attendeeType)
	return c
}

// keep drops the members whose keep[i] is false, in place.
func (e *eligibility) keep(keep []bool) {
	e.flags = keepWhere(e.flags, keep)
	e.languages = keepWhere(e.languages, keep)
	e.excluded = keepWhere(e.excluded, keep)
	if e.rules != nil {
		e.attendeeType = keepWhere(e.attendeeType, keep)
	}
}

// grow adds an empty member at the end, for set to fill.
func (e *eligibility) grow() {
	e.flags = append(e.flags, 0)
	e.languages = append(e.languages, nil)
	e.excluded = append(e.excluded, nil)
	if e.rules != nil {
		e.attendeeType = append(e.attendeeType, 0)
	}
}

// directional reports whether Eligible(i, j) may differ from Eligible(j,
// i): only rules can make it so (an investor may see startups while
// startups do not see investors).
func (p *Pool) directional() bool { return p.elig.rules != nil }

// eventAllows is the event's part of Eligible: rules, languages and
// exclusions. Eligible calls it only when the event restricts at all.
func (p *Pool) eventAllows(i, j int) bool {
	e := &p.elig
	if r := e.rules; r != nil && !r.allowed[int(e.attendeeType[i])*r.stride+int(e.attendeeType[j])] {
		return false
	}
	fi, fj := e.flags[i], e.flags[j]
	if fi|fj == 0 {
		return true
	}
	if fi&fj&hasLanguages != 0 && !intersects(e.languages[i], e.languages[j]) {
		return false
	}
	if fi&hasExclusions != 0 {
		if _, found := slices.BinarySearch(e.excluded[i], p.profiles[j].UserID); found {
			return false
		}
	}
	if fj&hasExclusions != 0 {
		if _, found := slices.BinarySearch(e.excluded[j], p.profiles[i].UserID); found {
			return false
		}
	}
	return true
}

// intersects reports whether two bitsets share a bit; missing words are
// zero.
func intersects(a, b []uint64) bool {
	for k := range min(len(a), len(b)) {
		if a[k]&b[k] != 0 {
			return true
		}
	}
	return false
}
