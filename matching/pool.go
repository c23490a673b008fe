// Package matching scores pairs of event attendees and maintains every
// attendee's top-N list of people to meet. It is pure computation: callers
// load profiles and stored lists, and persist what Update reports as changed.
//
// Everything here is deterministic. A pair's score depends only on the two
// profiles (never on who else attends), is symmetric bit-for-bit, and equal
// scores are ordered by UserID, so two workers computing the same list always
// agree, and a stored list can be validated by recomputing its scores.
package matching

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/eventmatch/matchmaker/profiletext"
)

// Profile is what matching knows about one attendee.
type Profile struct {
	UserID      string // canonical lowercase UUID text; used for deterministic tie-breaks
	DisplayName string
	Company     string // "" = none
	JobTitle    string
	Industry    string
	Interests   []string
	LookingFor  []string
	Offering    []string
	Bio         string
}

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
const (
	weightInterests     = 0.35 // Jaccard of interest tags
	weightComplementary = 0.35 // mean share of each side's looking_for met by the other's offering
	weightBio           = 0.20 // cosine of bio term sets
	weightIndustry      = 0.10 // same non-empty industry
)

// Pool holds the profiles of one event, preprocessed for fast scoring: tags
// are interned to small integers and stored as per-profile bitsets in flat
// slices, and company/industry are interned too, so the hot loops compare
// integers and popcount words instead of touching strings or maps.
type Pool struct {
	profiles []Profile
	index    map[string]int

	// userIDRank[i] is the position of profiles[i].UserID in sorted order,
	// so tie-breaks compare ints rather than strings.
	userIDRank []int32
	// company[i] and industry[i] are interned normalized names; 0 means none.
	company  []int32
	industry []int32

	interests tagBitsets
	// lookingFor and offering share one tag ID space so they can be ANDed.
	lookingFor tagBitsets
	offering   tagBitsets

	bioSignature []uint64   // bioSignatureWords words per profile
	bioTermCount []int32    // bits set in each profile's signature
	bioTerms     [][]string // each profile's bio terms, kept for Reasons
	tags         []cappedTags
}

// cappedTags are a profile's tags as scoring reads them (through
// profiletext.CapTags), kept for Reasons; they share the profile's slices
// when those are within the caps already.
type cappedTags struct {
	interests, lookingFor, offering []string
}

// tagBitsets stores one bitset of tag IDs per profile in a single flat slice.
// Rows are trimmed after their last non-zero word; IDs are assigned by
// descending tag frequency, so typical rows are one or two words long even
// when a few rare tags push the ID space wide.
type tagBitsets struct {
	words []uint64
	start []int   // row i is words[start[i]:start[i+1]]
	count []int32 // tags in row i
}

func (t *tagBitsets) row(i int) []uint64 {
	return t.words[t.start[i]:t.start[i+1]]
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
func NewPool(profiles []Profile) *Pool {
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
func NewPoolContext(ctx context.Context, profiles []Profile) (*Pool, error) {
	p := &Pool{
		profiles:     profiles,
		index:        make(map[string]int, len(profiles)),
		userIDRank:   make([]int32, len(profiles)),
		company:      make([]int32, len(profiles)),
		industry:     make([]int32, len(profiles)),
		bioSignature: make([]uint64, len(profiles)*bioSignatureWords),
		bioTermCount: make([]int32, len(profiles)),
		bioTerms:     make([][]string, len(profiles)),
	}
	for i, profile := range profiles {
		if _, dup := p.index[profile.UserID]; dup {
			panic(fmt.Sprintf("matching: duplicate UserID %q", profile.UserID))
		}
		p.index[profile.UserID] = i
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
	p.tags = make([]cappedTags, len(profiles))
	interests := make([][]string, len(profiles))
	lookingFor := make([][]string, len(profiles))
	offering := make([][]string, len(profiles))
	err := parallel(ctx, len(profiles), func(i int) {
		profile := &profiles[i]
		tags := cappedTags{
			interests:  profiletext.CapTags(profile.Interests),
			lookingFor: profiletext.CapTags(profile.LookingFor),
			offering:   profiletext.CapTags(profile.Offering),
		}
		p.tags[i] = tags
		interests[i] = keysOfCapped(tags.interests)
		lookingFor[i] = keysOfCapped(tags.lookingFor)
		offering[i] = keysOfCapped(tags.offering)
		signature := p.bioSignature[i*bioSignatureWords : (i+1)*bioSignatureWords]
		p.bioTerms[i] = bioTerms(profile.Bio)
		p.bioTermCount[i] = setBioSignature(signature, p.bioTerms[i])
	})
	if err != nil {
		return nil, fmt.Errorf("matching: building the pool stopped: %w", err)
	}

	companies := map[string]int32{}
	industries := map[string]int32{}
	for i, profile := range profiles {
		p.company[i] = internName(companies, profile.Company)
		p.industry[i] = internName(industries, profile.Industry)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("matching: building the pool stopped: %w", err)
	}
	p.interests = buildTagBitsets(interests)[0]
	needs := buildTagBitsets(lookingFor, offering)
	p.lookingFor, p.offering = needs[0], needs[1]
	return p, nil
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

// buildTagBitsets interns the keys of all given fields in one ID space and
// returns one bitset table per field. fields[f][i] are profile i's keys.
func buildTagBitsets(fields ...[][]string) []tagBitsets {
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

	tables := make([]tagBitsets, len(fields))
	for f, field := range fields {
		table := tagBitsets{start: make([]int, len(field)+1), count: make([]int32, len(field))}
		for i, keys := range field {
			width := 0
			for _, key := range keys {
				width = max(width, ids[key]/64+1)
			}
			rowStart := len(table.words)
			table.words = append(table.words, make([]uint64, width)...)
			for _, key := range keys {
				id := ids[key]
				table.words[rowStart+id/64] |= 1 << (id % 64)
			}
			table.start[i+1] = len(table.words)
			table.count[i] = int32(len(keys))
		}
		tables[f] = table
	}
	return tables
}

// Len is the number of profiles in the pool.
func (p *Pool) Len() int { return len(p.profiles) }

// Profile returns the profile at index i.
func (p *Pool) Profile(i int) Profile { return p.profiles[i] }

// Index returns the pool index of userID (exact match on the canonical form).
func (p *Pool) Index(userID string) (int, bool) {
	i, ok := p.index[userID]
	return i, ok
}

// Eligible reports whether j may appear in i's list: not i itself and not a
// colleague. Company names compare case- and space-insensitively, and only
// when both attendees name one.
func (p *Pool) Eligible(i, j int) bool {
	return i != j && (p.company[i] == 0 || p.company[i] != p.company[j])
}

// Score rates how worthwhile it is for i and j to meet, in [0,1].
//
// It is symmetric bit-for-bit: every input is an integer count that does
// not depend on argument order, and the only asymmetric parts (each side's
// complementarity) are combined by a commutative float addition. Each
// weighted term is explicitly converted before summing because Go may
// otherwise fuse multiply-adds on some platforms, and stored scores must
// match recomputed ones exactly wherever they were computed.
func (p *Pool) Score(i, j int) float32 {
	interests := jaccard(&p.interests, i, j)
	complementary := (coverage(&p.lookingFor, &p.offering, i, j) + coverage(&p.lookingFor, &p.offering, j, i)) / 2
	bio := p.bioCosine(i, j)
	industry := 0.0
	if p.industry[i] != 0 && p.industry[i] == p.industry[j] {
		industry = 1
	}
	total := float64(weightInterests*interests) +
		float64(weightComplementary*complementary) +
		float64(weightBio*bio) +
		float64(weightIndustry*industry)
	return float32(min(total, 1))
}

// jaccard is |A∩B| / |A∪B| of two profiles' tags, 0 when both are empty.
func jaccard(t *tagBitsets, i, j int) float64 {
	shared := sharedBits(t.row(i), t.row(j))
	union := int(t.count[i]) + int(t.count[j]) - shared
	if union == 0 {
		return 0
	}
	return float64(shared) / float64(union)
}

// coverage is the share of seeker's looking_for that provider offers.
func coverage(lookingFor, offering *tagBitsets, seeker, provider int) float64 {
	wanted := lookingFor.count[seeker]
	if wanted == 0 {
		return 0
	}
	return float64(sharedBits(lookingFor.row(seeker), offering.row(provider))) / float64(wanted)
}

// bioCosine is the cosine similarity of two bios' term sets:
// |A∩B| / sqrt(|A|·|B|), with set sizes taken from the hashed signatures.
func (p *Pool) bioCosine(i, j int) float64 {
	sizes := int64(p.bioTermCount[i]) * int64(p.bioTermCount[j])
	if sizes == 0 {
		return 0
	}
	a := p.bioSignature[i*bioSignatureWords : (i+1)*bioSignatureWords]
	b := p.bioSignature[j*bioSignatureWords : (j+1)*bioSignatureWords]
	return float64(sharedBits(a, b)) / math.Sqrt(float64(sizes))
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
