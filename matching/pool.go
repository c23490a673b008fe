// Package matching scores pairs of event attendees and maintains every
// attendee's top-N list of people to meet. It is pure computation: callers
// load profiles and stored lists, and persist what Update reports as changed.
//
// Everything here is deterministic. A pair's score depends on the two
// profiles and on the event's bio term weights (how many bios use each
// term, in three steps: see termweights.go), never on who else attends
// otherwise; it is symmetric bit-for-bit, and equal scores are ordered by a
// hash of the viewer's and the candidate's UserIDs, so two workers
// computing the same list always agree, and a stored list can be validated
// by recomputing its scores as long as the term weights are the same
// (Pool.SameTermWeights).
package matching

import (
	"context"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/profiletext"
)

// Entry is one candidate in a viewer's list.
type Entry struct {
	Other int // index into the Pool
	Score float32
}

// Weights of the score signals. They sum to 1 and every signal is in [0,1],
// so the score is in [0,1]. Interests and the two-way complementarity are
// what attendees state on purpose, so they dominate; bio similarity is a
// noisier bag-of-words signal, and industry is coarse (large industries
// share it widely), so it is a small nudge rather than a reason on its own.
//
// No signal grows with the length of one side's lists: interests divide by
// the union, complementarity by both sides' list lengths, bio similarity by
// both bios' weighted norms. Listing every tag therefore does not raise
// one's score with everyone; it spreads a fixed amount thinly.
const (
	weightInterests     = 0.35 // Jaccard of interest tags
	weightComplementary = 0.35 // mean over both directions of the Dice coefficient of looking_for and offering
	weightBio           = 0.20 // cosine of bio term sets, the event's boilerplate left out
	weightIndustry      = 0.10 // same non-empty industry
)

// Pool holds the profiles of one event, preprocessed for fast scoring: tags
// are interned to small integers and stored as per-profile bitsets in flat
// slices, and company/industry are interned too, so the hot loops compare
// integers and popcount words instead of touching strings or maps.
//
// A Pool is never modified once built, so batches may score against it
// concurrently; Apply derives a new pool from it.
type Pool struct {
	// profiles and tags are held by pointer: Apply copies these arrays
	// for every batch of changes, and an array of pointers is a small
	// fraction of the bytes, and of the pointers the garbage collector
	// checks on every copy, of an array of the profiles themselves.
	profiles []*attendee.Profile
	index    map[string]int

	// userIDRank[i] is the position of profiles[i].UserID in sorted order,
	// the order shards split members in and the last resort of ties.
	userIDRank []int32
	// idHash[i] hashes profiles[i].UserID for per-viewer tie-breaks.
	idHash []uint64
	// company[i] and industry[i] are interned normalized names; 0 means none.
	company  []int32
	industry []int32

	interests tagBitsets
	// lookingFor and offering share one tag ID space so they can be ANDed.
	lookingFor tagBitsets
	offering   tagBitsets

	// records[i] is what Score reads of profile i, packed (record.go):
	// the signature of its bio terms but the event's boilerplate (see
	// termweights.go), its norm, and the first words of its tag rows.
	records []scoreRecord
	// lanes are the records again, eight to a block for ScoreRun's
	// vector kernel (lanes.go); nil where that kernel does not run.
	lanes    []scoreLanes
	bioTerms [][]string // each profile's bio terms, for weights and Reasons
	terms    termStats
	tags     []*cappedTags

	// ids are shared by a pool and every pool derived from it with Apply.
	ids *internedIDs

	// elig holds the event's rules and each member's languages and
	// exclusions (eligibility.go).
	elig eligibility

	// lineage names a pool built by NewPool and every pool Apply derives
	// from it with the same term weights (a change of weights starts a new
	// one); clock counts the Applys since, and revision[i] is the clock at
	// which profile i was last set. Together they tell a Reserve which of
	// its entries changed since it was made.
	lineage  uint64
	clock    uint64
	revision []uint64
	// id names this pool, and ancestors the pools Apply derived it from,
	// nearest last, at most maxAncestors of them (DerivesFrom).
	id        uint64
	ancestors []uint64
}

// lineages hands out pool lineages, and poolIDs pool ids; 0 is never one.
var lineages, poolIDs atomic.Uint64

// maxAncestors is how many Applys back DerivesFrom can see. A worker
// applies an event's changes once per batch attempt, so this spans far more
// than the attempts of one long assignment.
const maxAncestors = 64

// DerivesFrom reports whether p is q or was derived from q by Apply in q's
// lineage, at most maxAncestors Applys back. Only then can what was
// computed on q be carried onto p, its changes since taken as changed:
// pools of one lineage need not be one chain (two Applys to the same pool
// are siblings, and neither has the other's changes).
func (p *Pool) DerivesFrom(q *Pool) bool {
	return p == q || (p.lineage == q.lineage && slices.Contains(p.ancestors, q.id))
}

// internedIDs are the ID spaces of a pool's names and tags. They only
// grow, so an ID means the same name or tag in every pool that shares them.
type internedIDs struct {
	mu           sync.Mutex
	companies    map[string]int32 // 0 is reserved for none
	industries   map[string]int32
	interestTags map[string]int
	needTags     map[string]int // looking_for and offering
}

// cappedTags are a profile's tags as scoring reads them (through
// profiletext.CapTags), kept for Reasons; they share the profile's slices
// when those are within the caps already.
type cappedTags struct {
	interests, lookingFor, offering []string
}

// profileText is the per-profile text work of building a pool: everything
// that does not depend on the other profiles.
type profileText struct {
	tags                                    cappedTags
	interestKeys, lookingForKeys, offerKeys []string
	bioTerms                                []string
}

func readProfileText(profile *attendee.Profile) profileText {
	tags := cappedTags{
		interests:  profiletext.CapTags(profile.Interests),
		lookingFor: profiletext.CapTags(profile.LookingFor),
		offering:   profiletext.CapTags(profile.Offering),
	}
	return profileText{
		tags:           tags,
		interestKeys:   keysOfCapped(tags.interests),
		lookingForKeys: keysOfCapped(tags.lookingFor),
		offerKeys:      keysOfCapped(tags.offering),
		bioTerms:       bioTerms(profile.Bio),
	}
}

// tagBitsets stores one bitset of tag IDs per profile in a single flat slice.
// Rows are trimmed after their last non-zero word; IDs are assigned by
// descending tag frequency when a pool is built, so typical rows are one or
// two words long even when a few rare tags push the ID space wide. Tags
// first seen by Apply take the next free IDs.
//
// Row i is words[start[i]:start[i]+width[i]]. Rows need not be in order or
// adjacent: Apply appends a replaced profile's row at the end and leaves
// the old words unused, so it never moves the other rows.
type tagBitsets struct {
	words []uint64
	start []int32
	width []int32
	count []int32 // tags in row i
}

func (t *tagBitsets) row(i int) []uint64 {
	s := int(t.start[i])
	return t.words[s : s+int(t.width[i])]
}

// rowWords returns where the bitset of the tag IDs is in words, appending
// it.
func (t *tagBitsets) appendWords(ids []int) (start, width int32) {
	w := 0
	for _, id := range ids {
		w = max(w, id/64+1)
	}
	s := len(t.words)
	t.words = append(t.words, make([]uint64, w)...)
	for _, id := range ids {
		t.words[s+id/64] |= 1 << (id % 64)
	}
	return int32(s), int32(w)
}

// appendRow adds the bitset of the tag IDs as the next row.
func (t *tagBitsets) appendRow(ids []int) {
	s, w := t.appendWords(ids)
	t.start = append(t.start, s)
	t.width = append(t.width, w)
	t.count = append(t.count, int32(len(ids)))
}

// setRow replaces row i with the bitset of the tag IDs.
func (t *tagBitsets) setRow(i int, ids []int) {
	t.start[i], t.width[i] = t.appendWords(ids)
	t.count[i] = int32(len(ids))
}

// clone copies t so that rows can be set and appended without touching t,
// packing the rows again when more than half of the words are no longer
// used by any row.
func (t *tagBitsets) clone() tagBitsets {
	used := 0
	for _, w := range t.width {
		used += int(w)
	}
	c := tagBitsets{start: slices.Clone(t.start), width: slices.Clone(t.width), count: slices.Clone(t.count)}
	if used*2 >= len(t.words) {
		c.words = slices.Clone(t.words)
		return c
	}
	c.words = make([]uint64, 0, used)
	for i := range c.start {
		s := len(c.words)
		c.words = append(c.words, t.row(i)...)
		c.start[i] = int32(s)
	}
	return c
}

// keep drops the rows whose keep[i] is false, in place.
func (t *tagBitsets) keep(keep []bool) {
	t.start = keepWhere(t.start, keep)
	t.width = keepWhere(t.width, keep)
	t.count = keepWhere(t.count, keep)
}

// keepWhere drops s[i] where keep[i] is false, in place, moving the runs
// in between with one copy each.
func keepWhere[T any](s []T, keep []bool) []T {
	out := 0
	for i := 0; i < len(s); {
		if !keep[i] {
			i++
			continue
		}
		j := i
		for j < len(s) && keep[j] {
			j++
		}
		out += copy(s[out:], s[i:j])
		i = j
	}
	clear(s[out:])
	return s[:out]
}

func newTagBitsets(rows, words int) tagBitsets {
	return tagBitsets{
		words: make([]uint64, 0, words),
		start: make([]int32, 0, rows),
		width: make([]int32, 0, rows),
		count: make([]int32, 0, rows),
	}
}

// NewPool preprocesses profiles; index i of the pool is profiles[i]. The
// slice is kept, not copied, so callers must not modify it afterwards.
// NewPool panics if two profiles share a UserID, since lookups and
// tie-breaks would then be ambiguous.
//
// Profiles are read through the caps of package profiletext: tags through
// profiletext.CapTags and bios through profiletext.CapBio, so the cost of a
// profile is bounded whatever the caller passes, and profiles within the
// caps score exactly as if uncapped. Reasons read the same capped tags, so
// they never cite a tag the score did not count; Profile returns the
// profile as passed.
func NewPool(profiles []attendee.Profile) *Pool {
	p, err := NewPoolContext(context.Background(), profiles)
	if err != nil {
		panic(err) // unreachable: Background is never done
	}
	return p
}

// NewPoolContext is NewPool that stops early, returning a nil pool and an
// error wrapping ctx.Err(), once ctx is done: building the pool of a large
// event takes long enough (some 0.2 s per 10,000 members on two cores) for a
// timed-out scoring attempt to need to stop it. It still panics on
// duplicate UserIDs.
func NewPoolContext(ctx context.Context, profiles []attendee.Profile) (*Pool, error) {
	p := &Pool{
		profiles:   make([]*attendee.Profile, len(profiles)),
		index:      make(map[string]int, len(profiles)),
		userIDRank: make([]int32, len(profiles)),
		idHash:     make([]uint64, len(profiles)),
		company:    make([]int32, len(profiles)),
		industry:   make([]int32, len(profiles)),
		records:    make([]scoreRecord, len(profiles)),
		bioTerms:   make([][]string, len(profiles)),
		terms:      termStats{count: map[string]int32{}},
		lineage:    lineages.Add(1),
		clock:      1,
		revision:   make([]uint64, len(profiles)),
		id:         poolIDs.Add(1),
		ids: &internedIDs{
			companies:  map[string]int32{},
			industries: map[string]int32{},
		},
	}
	for i, profile := range profiles {
		p.profiles[i] = &profiles[i]
		p.revision[i] = p.clock
		if _, dup := p.index[profile.UserID]; dup {
			panic(fmt.Sprintf("matching: duplicate UserID %q", profile.UserID))
		}
		p.index[profile.UserID] = i
		p.idHash[i] = fnv1a(profile.UserID)
	}

	byUserID := make([]int, len(profiles))
	for i := range byUserID {
		byUserID[i] = i
	}
	slices.SortFunc(byUserID, func(a, b int) int {
		return strings.Compare(profiles[a].UserID, profiles[b].UserID)
	})
	for rank, i := range byUserID {
		p.userIDRank[i] = int32(rank)
	}

	// The text work (capping, tag keys, bio terms) is per profile and
	// runs on every core; interning below is sequential and cheap.
	p.tags = make([]*cappedTags, len(profiles))
	tags := make([]cappedTags, len(profiles))
	interests := make([][]string, len(profiles))
	lookingFor := make([][]string, len(profiles))
	offering := make([][]string, len(profiles))
	err := parallel(ctx, len(profiles), func(i int) {
		text := readProfileText(&profiles[i])
		tags[i] = text.tags
		p.tags[i] = &tags[i]
		interests[i], lookingFor[i], offering[i] = text.interestKeys, text.lookingForKeys, text.offerKeys
		p.bioTerms[i] = text.bioTerms
	})
	if err != nil {
		return nil, fmt.Errorf("matching: building the pool stopped: %w", err)
	}
	for _, terms := range p.bioTerms {
		p.terms.add(terms, 1)
	}
	p.terms.setKey()
	if err := parallel(ctx, len(profiles), p.setBioRow); err != nil {
		return nil, fmt.Errorf("matching: building the pool stopped: %w", err)
	}

	for i, profile := range profiles {
		p.company[i] = internName(p.ids.companies, profile.Company)
		p.industry[i] = internName(p.ids.industries, profile.Industry)
	}
	p.elig = newEligibility(profiles)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("matching: building the pool stopped: %w", err)
	}
	p.ids.interestTags = idsByFrequency(interests)
	p.ids.needTags = idsByFrequency(lookingFor, offering)
	p.interests = buildTagBitsets(interests, p.ids.interestTags)
	p.lookingFor = buildTagBitsets(lookingFor, p.ids.needTags)
	p.offering = buildTagBitsets(offering, p.ids.needTags)
	for i := range p.records {
		p.setTagRecord(i)
	}
	p.buildLanes()
	return p, nil
}

// setBioRow writes profile i's weighted bio row from the pool's term
// weights.
func (p *Pool) setBioRow(i int) {
	r := &p.records[i]
	r.bioInvNorm = p.terms.setBioRow(r.bio[:], p.bioTerms[i])
}

// internName maps a company or industry to a small positive ID, with 0 for
// blank, comparing case- and space-insensitively like tags.
func internName(ids map[string]int32, name string) int32 {
	key := NormalizeTag(name)
	if key == "" {
		return 0
	}
	id, ok := ids[key]
	if !ok {
		id = int32(len(ids) + 1)
		ids[key] = id
	}
	return id
}

// internTags returns the IDs of keys, giving every key that has none yet
// the next free one.
func internTags(ids map[string]int, keys []string) []int {
	out := make([]int, len(keys))
	for k, key := range keys {
		id, ok := ids[key]
		if !ok {
			id = len(ids)
			ids[key] = id
		}
		out[k] = id
	}
	return out
}

// idsByFrequency numbers the keys of all given fields in one ID space, most
// frequent first. fields[f][i] are profile i's keys.
func idsByFrequency(fields ...[][]string) map[string]int {
	frequency := map[string]int{}
	for _, field := range fields {
		for _, keys := range field {
			for _, key := range keys {
				frequency[key]++
			}
		}
	}
	byFrequency := make([]string, 0, len(frequency))
	for key := range frequency {
		byFrequency = append(byFrequency, key)
	}
	slices.SortFunc(byFrequency, func(a, b string) int {
		if frequency[a] != frequency[b] {
			return frequency[b] - frequency[a]
		}
		return strings.Compare(a, b)
	})
	ids := make(map[string]int, len(byFrequency))
	for id, key := range byFrequency {
		ids[key] = id
	}
	return ids
}

// buildTagBitsets makes one row per profile of field, whose keys all have
// IDs in ids.
func buildTagBitsets(field [][]string, ids map[string]int) tagBitsets {
	table := newTagBitsets(len(field), len(field))
	row := make([]int, 0, profiletext.MaxTagsPerField)
	for _, keys := range field {
		row = row[:0]
		for _, key := range keys {
			row = append(row, ids[key])
		}
		table.appendRow(row)
	}
	return table
}

// Apply returns a pool of p's profiles with upserts added, or put in place
// of the profile with the same UserID, and the members named in removals
// taken out. It shares p's preprocessing: only the upserted profiles are
// tokenized, and the rest is copied, so a few changes to a large pool cost
// a copy of its arrays rather than a rebuild. p itself is unchanged and may
// still be in use.
//
// moved[i] is the index in the new pool of p's profile i, or -1 if it was
// removed; kept and replaced profiles keep their order, and added ones come
// last. Scores, Better, Eligible, TopN and Reasons of the new pool equal
// those of NewPool (NewPoolWithRules, with p's rules) over the same
// profiles in any order.
//
// Upserts are copied. Removals of user IDs not in p are ignored. Apply
// panics if upserts repeat a UserID or name one that removals name too,
// since the result would be ambiguous. It stops early with an error
// wrapping ctx.Err() once ctx is done.
func (p *Pool) Apply(ctx context.Context, upserts []attendee.Profile, removals []string) (*Pool, []int, error) {
	upserts = slices.Clone(upserts) // the pool keeps pointers to them
	removed := make([]bool, p.Len())
	removedCount := 0
	for _, id := range removals {
		if i, ok := p.index[id]; ok && !removed[i] {
			removed[i] = true
			removedCount++
		}
	}
	replacement := make(map[int]int, len(upserts)) // old index -> upserts index
	var added []int                                // upserts indexes
	seen := make(map[string]bool, len(upserts))
	for k, profile := range upserts {
		if seen[profile.UserID] {
			panic(fmt.Sprintf("matching: Apply got UserID %q twice", profile.UserID))
		}
		seen[profile.UserID] = true
		i, ok := p.index[profile.UserID]
		switch {
		case ok && removed[i]:
			panic(fmt.Sprintf("matching: Apply got UserID %q to both upsert and remove", profile.UserID))
		case ok:
			replacement[i] = k
		default:
			added = append(added, k)
		}
	}

	texts := make([]profileText, len(upserts))
	err := parallel(ctx, len(upserts), func(k int) { texts[k] = readProfileText(&upserts[k]) })
	if err != nil {
		return nil, nil, fmt.Errorf("matching: applying changes stopped: %w", err)
	}
	// The pool keeps the capped tags, not the rest of the texts.
	tags := make([]cappedTags, len(upserts))
	for k := range texts {
		tags[k] = texts[k].tags
	}

	// New tags and names get IDs before any row is written; the lock is
	// held only for this, since IDs never change once given.
	type upsertIDs struct {
		company, industry               int32
		interests, lookingFor, offering []int
	}
	idsOf := make([]upsertIDs, len(upserts))
	p.ids.mu.Lock()
	for k := range upserts {
		idsOf[k] = upsertIDs{
			company:    internName(p.ids.companies, upserts[k].Company),
			industry:   internName(p.ids.industries, upserts[k].Industry),
			interests:  internTags(p.ids.interestTags, texts[k].interestKeys),
			lookingFor: internTags(p.ids.needTags, texts[k].lookingForKeys),
			offering:   internTags(p.ids.needTags, texts[k].offerKeys),
		}
	}
	p.ids.mu.Unlock()

	// Everything is copied in bulk, replaced profiles are written in
	// place, removed ones are cut out run by run, and added ones appended:
	// a few memmoves of the pool's arrays, however large the event.
	q := &Pool{
		profiles:   slices.Clone(p.profiles),
		company:    slices.Clone(p.company),
		industry:   slices.Clone(p.industry),
		interests:  p.interests.clone(),
		lookingFor: p.lookingFor.clone(),
		offering:   p.offering.clone(),
		idHash:     slices.Clone(p.idHash),
		records:    slices.Clone(p.records),
		bioTerms:   slices.Clone(p.bioTerms),
		terms:      termStats{count: maps.Clone(p.terms.count), bios: p.terms.bios},
		tags:       slices.Clone(p.tags),
		ids:        p.ids,
		lineage:    p.lineage,
		clock:      p.clock + 1,
		revision:   slices.Clone(p.revision),
		id:         poolIDs.Add(1),
		ancestors:  append(slices.Clone(p.ancestors[max(0, len(p.ancestors)-(maxAncestors-1)):]), p.id),
		elig:       p.elig.clone(),
	}
	set := func(i, k int) {
		text, ids := &texts[k], &idsOf[k]
		q.profiles[i] = &upserts[k]
		q.company[i], q.industry[i] = ids.company, ids.industry
		q.interests.setRow(i, ids.interests)
		q.lookingFor.setRow(i, ids.lookingFor)
		q.offering.setRow(i, ids.offering)
		q.idHash[i] = fnv1a(upserts[k].UserID)
		// The row is written once every change is counted (below).
		q.terms.add(q.bioTerms[i], -1)
		q.terms.add(text.bioTerms, 1)
		q.bioTerms[i] = text.bioTerms
		q.tags[i] = &tags[k]
		q.revision[i] = q.clock
		q.elig.set(i, &upserts[k])
	}
	for i, k := range replacement {
		set(i, k)
	}

	moved := make([]int, p.Len())
	kept := 0
	for i := range moved {
		if removed[i] {
			moved[i] = -1
			continue
		}
		moved[i] = kept
		kept++
	}
	if removedCount > 0 {
		keep := make([]bool, p.Len())
		for i := range keep {
			keep[i] = !removed[i]
			if removed[i] {
				q.terms.add(p.bioTerms[i], -1)
			}
		}
		q.profiles = keepWhere(q.profiles, keep)
		q.company = keepWhere(q.company, keep)
		q.industry = keepWhere(q.industry, keep)
		q.interests.keep(keep)
		q.lookingFor.keep(keep)
		q.offering.keep(keep)
		q.idHash = keepWhere(q.idHash, keep)
		q.records = keepWhere(q.records, keep)
		q.bioTerms = keepWhere(q.bioTerms, keep)
		q.tags = keepWhere(q.tags, keep)
		q.revision = keepWhere(q.revision, keep)
		q.elig.keep(keep)
	}

	for _, k := range added {
		i := len(q.profiles)
		q.profiles = append(q.profiles, nil)
		q.company = append(q.company, 0)
		q.industry = append(q.industry, 0)
		q.interests.appendRow(nil)
		q.lookingFor.appendRow(nil)
		q.offering.appendRow(nil)
		q.idHash = append(q.idHash, 0)
		q.records = append(q.records, scoreRecord{})
		q.bioTerms = append(q.bioTerms, nil)
		q.tags = append(q.tags, nil)
		q.revision = append(q.revision, 0)
		q.elig.grow()
		set(i, k)
	}
	size := len(q.profiles)
	q.userIDRank = make([]int32, size)

	// With the changes counted the weights are final: rows of the set
	// profiles are written, or every row if a term changed class. Then
	// every score of the event may have moved, so reserves computed on p
	// no longer hold: the pool starts a new lineage.
	q.terms.setKey()
	for i := range size {
		if q.revision[i] == q.clock {
			q.setTagRecord(i)
		}
	}
	if q.SameTermWeights(p) {
		for i := range size {
			if q.revision[i] == q.clock {
				q.setBioRow(i)
			}
		}
	} else {
		q.lineage = lineages.Add(1)
		if err := parallel(ctx, size, q.setBioRow); err != nil {
			return nil, nil, fmt.Errorf("matching: applying changes stopped: %w", err)
		}
	}
	// The lanes follow the records: rewritten where they moved (removals)
	// or all changed (new weights), else copied and patched.
	if removedCount > 0 || q.lineage != p.lineage || p.lanes == nil {
		q.buildLanes()
	} else {
		q.lanes = make([]scoreLanes, (size+laneWidth-1)/laneWidth)
		copy(q.lanes, p.lanes)
		for i := range size {
			if q.revision[i] == q.clock {
				q.setLane(i)
			}
		}
	}

	// Without removals every kept profile keeps its index, so the map is
	// cloned and extended rather than rebuilt.
	if removedCount == 0 {
		q.index = maps.Clone(p.index)
		for i := p.Len(); i < size; i++ {
			q.index[q.profiles[i].UserID] = i
		}
	} else {
		q.index = make(map[string]int, size)
		for i := range q.profiles {
			q.index[q.profiles[i].UserID] = i
		}
	}
	q.rankUserIDs(p, moved, added)
	return q, moved, ctx.Err()
}

// inUserIDOrder reports whether every member's index is its UserID rank,
// as in a pool built from members read in UserID order (store.LoadSnapshot
// reads them so). Shards of such a pool skip pairs another shard offers
// (scoreOffers).
func (p *Pool) inUserIDOrder() bool {
	for i, rank := range p.userIDRank {
		if int(rank) != i {
			return false
		}
	}
	return true
}

// rankUserIDs sets q.userIDRank by merging p's order, less what was
// removed, with the added profiles (the last len(added) of q) sorted.
func (q *Pool) rankUserIDs(p *Pool, moved []int, added []int) {
	byRank := make([]int, p.Len())
	for i, rank := range p.userIDRank {
		byRank[rank] = i
	}
	newcomers := make([]int, len(added))
	for k := range added {
		newcomers[k] = q.Len() - len(added) + k
	}
	slices.SortFunc(newcomers, func(a, b int) int {
		return strings.Compare(q.profiles[a].UserID, q.profiles[b].UserID)
	})
	// Where each newcomer goes in p's order, found by binary search: the
	// merge below then compares no IDs (at 50,000 members, comparing
	// them one by one was a fifth of a newcomer's Apply).
	before := make([]int, len(newcomers)) // the first of byRank whose ID sorts after it
	for k, n := range newcomers {
		before[k] = sort.Search(len(byRank), func(r int) bool { return p.profiles[byRank[r]].UserID > q.profiles[n].UserID })
	}
	rank := int32(0)
	next := 0
	for r, old := range byRank {
		for next < len(newcomers) && before[next] <= r {
			q.userIDRank[newcomers[next]] = rank
			rank++
			next++
		}
		i := moved[old]
		if i < 0 {
			continue
		}
		q.userIDRank[i] = rank
		rank++
	}
	for ; next < len(newcomers); next++ {
		q.userIDRank[newcomers[next]] = rank
		rank++
	}
}

// Len is the number of profiles in the pool.
func (p *Pool) Len() int { return len(p.profiles) }

// Profile returns the profile at index i.
func (p *Pool) Profile(i int) attendee.Profile { return *p.profiles[i] }

// Index returns the pool index of userID (exact match on the canonical form).
func (p *Pool) Index(userID string) (int, bool) {
	i, ok := p.index[userID]
	return i, ok
}

// Eligible reports whether j may appear in i's list: not i itself, not a
// colleague, and allowed by the event (eligibility.go): neither excluded
// the other, they share a language if both list some, and the event's rules,
// if any, let i's type see j's. Company names compare case- and
// space-insensitively, and only when both attendees name one. Only rules
// make it directional.
func (p *Pool) Eligible(i, j int) bool {
	return i != j && (p.company[i] == 0 || p.company[i] != p.company[j]) && (!p.elig.restricts || p.eventAllows(i, j))
}

// pairsScored counts the pair scores this process computed to choose
// lists (PairsScored); each loop that scores adds its count once, so that
// counting costs the hot loops nothing.
var pairsScored atomic.Int64

// PairsScored is how many pair scores this process has computed to choose
// lists since it started: every kernel that scores pairs (the full update's
// one pass, scans for one member, checks of stored scores) adds what it
// computed. The worker exports it as matchmaking_pairs_scored_total, and
// make bench divides a full match's share of it by the event's pairs.
func PairsScored() int64 { return pairsScored.Load() }

// Score rates how worthwhile it is for i and j to meet, in [0,1].
//
// It is symmetric bit-for-bit: every input is an integer count that does
// not depend on argument order, and the only asymmetric parts (each side's
// complementarity) are combined by a commutative float addition.
//
// Most pairs are scored from the members' packed records alone
// (record.go); only a pair whose members both have tags past the records'
// inline words reads the whole tag rows, with the same arithmetic.
func (p *Pool) Score(i, j int) float32 {
	a, b := &p.records[i], &p.records[j]
	if a.wide && b.wide {
		return p.scoreRows(i, j)
	}
	return scoreRecords(a, b)
}

// scoreRows is Score from the whole tag rows.
func (p *Pool) scoreRows(i, j int) float32 {
	interests := jaccard(&p.interests, i, j)
	complementary := (coverage(&p.lookingFor, &p.offering, i, j) + coverage(&p.lookingFor, &p.offering, j, i)) / 2
	bio := p.bioCosine(i, j)
	industry := 0.0
	if p.industry[i] != 0 && p.industry[i] == p.industry[j] {
		industry = 1
	}
	return weighScore(interests, complementary, bio, industry)
}

// jaccard is |A∩B| / |A∪B| of two profiles' tags, 0 when both are empty,
// multiplying by a reciprocal from a table rather than dividing.
func jaccard(t *tagBitsets, i, j int) float64 {
	return jaccardOf(sharedBits(t.row(i), t.row(j)), int(t.count[i]), int(t.count[j]))
}

// jaccardOf is the Jaccard index of two tag sets of sizes a and b that
// share shared tags: the one formula of jaccard and of scoreRecords.
func jaccardOf(shared, a, b int) float64 {
	return float64(shared) * reciprocals[a+b-shared]
}

// coverage is how well provider's offering meets seeker's looking_for:
// 2·|looking_for ∩ offering| / (|looking_for| + |offering|), the Dice
// coefficient of the two tag sets (the harmonic mean of the share of the
// needs met and the share of the offering that meets one). Counting the
// offering too means that offering every tag meets each need only thinly:
// a provider of 30 tags covers a seeker's single need at 0.06, one who
// offers just that need at 1.
//
// It multiplies by a reciprocal from a table rather than dividing, and
// does not branch on whether anything is shared (most pairs share nothing,
// unpredictably): both keep it about as cheap as the plain share it
// replaced.
func coverage(lookingFor, offering *tagBitsets, seeker, provider int) float64 {
	return coverageOf(sharedBits(lookingFor.row(seeker), offering.row(provider)),
		int(lookingFor.count[seeker]), int(offering.count[provider]))
}

// coverageOf is coverage from the count of needs met and the two fields'
// sizes: the one formula of coverage and of scoreRecords.
func coverageOf(shared, lookingFor, offering int) float64 {
	return float64(2*shared) * reciprocals[lookingFor+offering]
}

// reciprocals[c] is 1/c for the sizes two tag fields can add up to (0 for
// 0, where nothing is shared either): tag fields are capped at
// profiletext.MaxTagsPerField.
var reciprocals = func() (table [2*profiletext.MaxTagsPerField + 1]float64) {
	for c := 1; c < len(table); c++ {
		table[c] = 1 / float64(c)
	}
	return table
}()

// bioCosine is the cosine similarity of two bios' term sets, leaving out
// the event's boilerplate (termweights.go): |A∩B| / sqrt(|A|·|B|), from the
// hashed signatures, so in rare hash collisions a term is credited that
// only one side has. The reciprocal norms' product is taken first, a
// commutative product, so the value is symmetric bit-for-bit.
func (p *Pool) bioCosine(i, j int) float64 {
	return bioCosineOf(&p.records[i], &p.records[j])
}

// bioCosineOf is bioCosine of two members' records.
func bioCosineOf(a, b *scoreRecord) float64 {
	norms := a.bioInvNorm * b.bioInvNorm
	if norms == 0 {
		return 0
	}
	shared := 0
	for k := range a.bio {
		shared += bits.OnesCount64(a.bio[k] & b.bio[k])
	}
	return float64(shared) * norms
}

// sharedBits counts the bits set in both a and b; missing words are zero.
func sharedBits(a, b []uint64) int {
	if len(b) < len(a) {
		a, b = b, a
	}
	b = b[:len(a)]
	shared := 0
	for k, word := range a {
		shared += bits.OnesCount64(word & b[k])
	}
	return shared
}
