package matching_test

import (
	"context"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// An assignment carried across several Applys, one of which removes a
// member another brings back, repairs to the assignment computed from
// scratch; onto a sibling pool, which lacks its changes, it is not carried.
func TestCapStateCarriedAcrossApplys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := demodata.Generate(9, 320)
	base := matching.NewPool(gen[:300])
	state, _, _, err := base.Assign(ctx, nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}

	edited := gen[7]
	edited.Interests = append(slices.Clone(edited.Interests), "quantum", "sailing")
	first, _, err := base.Apply(ctx, slices.Concat(gen[300:305], []attendee.Profile{edited}),
		[]string{gen[3].UserID, gen[40].UserID, gen[41].UserID})
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := first.Apply(ctx, slices.Concat([]attendee.Profile{gen[40]}, gen[305:310]), []string{gen[0].UserID})
	if err != nil {
		t.Fatal(err)
	}
	for _, derived := range []*matching.Pool{first, second} {
		if !derived.DerivesFrom(base) {
			t.Fatal("a pool Apply derived does not derive from its base")
		}
	}
	if base.DerivesFrom(second) {
		t.Fatal("a base derives from a pool derived from it")
	}

	carried := state.CarriedTo(base, second)
	if carried == nil {
		t.Fatal("the assignment was not carried onto a derived pool")
	}
	repaired, wasRepaired, _, err := second.Assign(ctx, carried, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	scratch, _, _, err := second.Assign(ctx, nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !wasRepaired || !slices.EqualFunc(repaired.Lists(), scratch.Lists(), slices.Equal) {
		t.Fatalf("the carried assignment (repaired: %v) differs from the one from scratch", wasRepaired)
	}

	// Everyone is still there, but one left and came back: indexes moved
	// though nobody is missing.
	left, _, err := base.Apply(ctx, nil, []string{gen[50].UserID})
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := left.Apply(ctx, gen[50:51], nil)
	if err != nil {
		t.Fatal(err)
	}
	repaired, _, _, err = back.Assign(ctx, state.CarriedTo(base, back), 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if scratch, _, _, err = back.Assign(ctx, nil, 3, 6); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(repaired.Lists(), scratch.Lists(), slices.Equal) {
		t.Fatal("carried past a member who left and came back, the assignment differs from the one from scratch")
	}

	firstState, _, _, err := first.Assign(ctx, nil, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	sibling, _, err := base.Apply(ctx, slices.Concat(gen[310:315], []attendee.Profile{edited}), []string{gen[3].UserID, gen[40].UserID, gen[41].UserID})
	if err != nil {
		t.Fatal(err)
	}
	if sibling.DerivesFrom(first) || first.DerivesFrom(sibling) {
		t.Fatal("sibling pools derive from each other")
	}
	if sibling.Len() != first.Len() || firstState.CarriedTo(first, sibling) != nil {
		t.Fatal("an assignment was carried onto a sibling of its pool")
	}
}
