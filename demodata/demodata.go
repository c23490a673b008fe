// Package demodata generates deterministic synthetic event attendees for
// demos, tests and benchmarks of the matcher.
//
// Attendee i is generated from its own random stream seeded by (seed, i), so
// output is reproducible and prefix-stable: Generate(seed, n)[:k] equals
// Generate(seed, k), which lets a test add "newcomers" n..n+50 to an
// existing pool.
package demodata

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/eventmatch/matchmaker/attendee"
)

// Generate returns n attendees for seed; see the package comment for the
// determinism and prefix-stability guarantees. Their user IDs are
// lowercase version-4 UUIDs, deterministic from (seed, i).
func Generate(seed int64, n int) []attendee.Profile {
	members := make([]attendee.Profile, max(n, 0))
	for i := range members {
		members[i] = generateMember(seed, i)
	}
	return members
}

// Probabilities shaping the population.
const (
	noCompanyShare     = 0.08 // attendees without a company
	bigCompanyShare    = 0.25 // attendees at one of the few big companies
	crossIndustryTitle = 0.15 // titles such as "Founder" that appear in any industry
	affinityInterest   = 0.40 // interest drawn from the industry's favourites
	oddInterestSpell   = 0.07 // interest typed with odd case or spacing
	oddNeedSpell       = 0.03 // looking_for/offering typed oddly
)

// Draw tables, built once: Zipf-like weights favour the head of each list.
var (
	industryDraw   = newWeighted(industryWeights())
	interestDraw   = newWeighted(zipfWeights(len(interestTags), 3))
	needDraw       = newWeighted(zipfWeights(len(needTags), 3))
	bigCompanyDraw = newWeighted(zipfWeights(len(bigCompanies), 1))
)

// interestSentences are bio templates mentioning two interests.
var interestSentences = []string{
	"Currently focused on %s and %s.",
	"Passionate about %s and %s.",
	"Most of my time goes into %s and %s these days.",
	"Curious how %s will change %s.",
}

func generateMember(seed int64, i int) attendee.Profile {
	// Both halves of the PCG seed are scrambled so neighbouring (seed, i)
	// pairs do not start from neighbouring states.
	rng := rand.New(rand.NewPCG(splitmix64(uint64(seed)), splitmix64(uint64(i))))

	m := attendee.Profile{UserID: uuidV4(rng)}
	m.DisplayName = pick(rng, firstNames) + " " + pick(rng, lastNames)
	m.Company = drawCompany(rng)
	ind := industries[industryDraw.draw(rng)]
	m.Industry = ind.name
	if rng.Float64() < crossIndustryTitle {
		m.JobTitle = pick(rng, titlesAnywhere)
	} else {
		m.JobTitle = pick(rng, ind.titles)
	}

	interests := drawInterests(rng, ind, 3+rng.IntN(5))
	lookingFor := drawNeeds(rng, 1+rng.IntN(4), nil)
	offering := drawNeeds(rng, 1+rng.IntN(4), lookingFor)
	m.Bio = composeBio(rng, m, interests, lookingFor, offering)
	m.Interests = misspell(rng, interests, oddInterestSpell)
	m.LookingFor = misspell(rng, lookingFor, oddNeedSpell)
	m.Offering = misspell(rng, offering, oddNeedSpell)
	return m
}

func drawCompany(rng *rand.Rand) string {
	r := rng.Float64()
	switch {
	case r < noCompanyShare:
		return ""
	case r < noCompanyShare+bigCompanyShare:
		return bigCompanies[bigCompanyDraw.draw(rng)]
	default:
		return pick(rng, companyPrefixes) + " " + pick(rng, companySuffixes)
	}
}

func drawInterests(rng *rand.Rand, ind industry, count int) []string {
	tags := make([]string, 0, count)
	for len(tags) < count {
		var tag string
		if rng.Float64() < affinityInterest {
			tag = pick(rng, ind.affinity)
		} else {
			tag = interestTags[interestDraw.draw(rng)]
		}
		if !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	return tags
}

// drawNeeds draws count distinct needs, none of them in exclude, so nobody
// offers exactly what they are looking for.
func drawNeeds(rng *rand.Rand, count int, exclude []string) []string {
	tags := make([]string, 0, count)
	for len(tags) < count {
		tag := needTags[needDraw.draw(rng)]
		if !slices.Contains(tags, tag) && !slices.Contains(exclude, tag) {
			tags = append(tags, tag)
		}
	}
	return tags
}

// misspell returns tags with a few typed carelessly, as real users do:
// "  Machine Learning", "MACHINE LEARNING", "machine   learning ", "ai".
func misspell(rng *rand.Rand, tags []string, probability float64) []string {
	out := make([]string, len(tags))
	for k, tag := range tags {
		out[k] = tag
		if rng.Float64() >= probability {
			continue
		}
		switch rng.IntN(4) {
		case 0:
			out[k] = "  " + titleCase(tag)
		case 1:
			// People shout acronyms, not phrases.
			if len(tag) <= 4 {
				out[k] = strings.ToUpper(tag)
			} else {
				out[k] = titleCase(tag)
			}
		case 2:
			out[k] = strings.ReplaceAll(tag, " ", "   ") + " "
		default:
			out[k] = strings.ToLower(tag)
		}
	}
	return out
}

// composeBio writes 1–3 sentences: the job, often some interests, sometimes
// a need, an offer or a hobby.
func composeBio(rng *rand.Rand, m attendee.Profile, interests, lookingFor, offering []string) string {
	industryName := strings.ToLower(m.Industry)
	var sentences []string
	switch rng.IntN(3) {
	case 0:
		if m.Company != "" {
			sentences = append(sentences, fmt.Sprintf("%s at %s.", m.JobTitle, m.Company))
		} else {
			sentences = append(sentences, fmt.Sprintf("%s, working independently.", m.JobTitle))
		}
	case 1:
		sentences = append(sentences, fmt.Sprintf("I work as %s %s in %s.", article(m.JobTitle), m.JobTitle, industryName))
	default:
		sentences = append(sentences, fmt.Sprintf("%s with %d years of experience in %s.", m.JobTitle, 2+rng.IntN(19), industryName))
	}
	if rng.Float64() < 0.75 {
		order := rng.Perm(len(interests))
		sentences = append(sentences, fmt.Sprintf(pick(rng, interestSentences), interests[order[0]], interests[order[1]]))
	}
	if rng.Float64() < 0.45 {
		switch rng.IntN(4) {
		case 0:
			sentences = append(sentences, fmt.Sprintf("Happy to help with %s.", pick(rng, offering)))
		case 1:
			sentences = append(sentences, fmt.Sprintf("Looking for %s.", pick(rng, lookingFor)))
		case 2:
			sentences = append(sentences, fmt.Sprintf("Outside work: %s.", pick(rng, hobbies)))
		default:
			sentences = append(sentences, fmt.Sprintf("Ask me about %s.", pick(rng, interests)))
		}
	}
	return strings.Join(sentences, " ")
}

func article(word string) string {
	if strings.ContainsRune("AEIOUaeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for k, w := range words {
		words[k] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func pick(rng *rand.Rand, list []string) string {
	return list[rng.IntN(len(list))]
}

// uuidV4 formats 16 random bytes as a lowercase version-4 UUID.
func uuidV4(rng *rand.Rand) string {
	var b [16]byte
	for k := range b {
		b[k] = byte(rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// weighted draws indexes with probability proportional to their weights.
type weighted struct {
	cumulative []float64
}

func newWeighted(weights []float64) weighted {
	cumulative := make([]float64, len(weights))
	total := 0.0
	for k, w := range weights {
		total += w
		cumulative[k] = total
	}
	return weighted{cumulative: cumulative}
}

func (w weighted) draw(rng *rand.Rand) int {
	target := rng.Float64() * w.cumulative[len(w.cumulative)-1]
	k, _ := slices.BinarySearch(w.cumulative, target)
	return min(k, len(w.cumulative)-1)
}

// zipfWeights gives rank r the Zipf–Mandelbrot weight 1/(r+shift): a larger
// shift flattens the head. Only divisions and additions are used, which
// round identically on every platform, so draws never differ between
// machines.
func zipfWeights(n int, shift int) []float64 {
	weights := make([]float64, n)
	for r := range weights {
		weights[r] = 1 / float64(r+shift)
	}
	return weights
}

func industryWeights() []float64 {
	weights := make([]float64, len(industries))
	for k, ind := range industries {
		weights[k] = float64(ind.weight)
	}
	return weights
}
