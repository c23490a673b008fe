package demodata

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/eventmatch/matchmaker/attendee"
)

// PlantedShare is the share of GeneratePlanted's members who belong to a
// planted group.
const PlantedShare = 0.05

// Niche themes are built from these halves, so there are enough distinct
// ones for the planted groups of a large event (len(nicheFields) ×
// len(nicheSubjects)) and none of them is in the interest vocabulary.
var (
	nicheFields = []string{
		"marine", "alpine", "desert", "arctic", "urban", "rural", "coastal", "volcanic",
		"orbital", "subterranean", "wetland", "tidal", "forest", "island", "riverine", "savanna",
		"glacial", "coral", "lunar", "prairie",
	}
	nicheSubjects = []string{
		"acoustics", "beekeeping", "cartography", "drones", "epidemiology", "ferments", "geodesy",
		"hydroponics", "irrigation", "lidar", "mycology", "navigation", "ornithology", "photogrammetry",
		"seismology", "telemetry", "textiles", "viticulture", "weatherproofing", "zoology",
	}
)

// GeneratePlanted returns n attendees like Generate(seed, n), except that
// about PlantedShare of them are replaced by planted groups: 3 to 5
// attendees who truly belong together. A group shares one niche theme (an
// interest tag no one else has and two bio terms, among their ordinary
// interests and bio) and its members' needs form a ring: each one offers
// what the next looks for. groups[g] are the indexes of group g's members.
// The result is deterministic in (seed, n); it is not prefix-stable.
func GeneratePlanted(seed int64, n int) (members []attendee.Profile, groups [][]int) {
	members = Generate(seed, n)
	planted := int(float64(len(members)) * PlantedShare)
	if planted < 3 {
		return members, nil
	}
	rng := rand.New(rand.NewPCG(splitmix64(uint64(seed)^0x706c616e746564), splitmix64(uint64(n))))
	// Planted members are spread over the event, not its first indexes.
	order := rng.Perm(len(members))
	themes := rng.Perm(len(nicheFields) * len(nicheSubjects))
	for used := 0; planted-used >= 3; {
		size := min(3+rng.IntN(3), planted-used)
		if planted-used-size > 0 && planted-used-size < 3 {
			size = planted - used // no group of fewer than three is left over
		}
		theme := themes[len(groups)%len(themes)]
		field, subject := nicheFields[theme/len(nicheSubjects)], nicheSubjects[theme%len(nicheSubjects)]
		group := slices.Clone(order[used : used+size])
		used += size
		plantGroup(rng, members, group, field, subject)
		groups = append(groups, group)
	}
	return members, groups
}

// plantGroup rewrites the group's members around the theme: each keeps
// most of their own profile, gains the niche interest and a sentence about
// it in their bio, and looks for what the next member offers.
func plantGroup(rng *rand.Rand, members []attendee.Profile, group []int, field, subject string) {
	theme := field + " " + subject
	needs := drawNeeds(rng, len(group), nil)
	for k, i := range group {
		m := &members[i]
		m.Interests = append(slices.Clone(m.Interests[:min(len(m.Interests), 4)]), theme)
		// Member k looks for needs[k] and offers needs[k-1], which the
		// member before looks for; the ring closes at the ends.
		m.LookingFor = []string{needs[k]}
		m.Offering = []string{needs[(k+len(group)-1)%len(group)]}
		m.Bio = fmt.Sprintf("%s Spending my weekends on %s %s projects.", m.Bio, field, subject)
	}
}
