package activities

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// When a newcomer moves the event's bio term weights (here "datathon"
// stops being boilerplate as the number of bios doubles to 32), a cached view
// hands every list to the next batch for a rescore; when they do not, the
// lists stand.
func TestCachedViewRescoresEveryListWhenTermWeightsChange(t *testing.T) {
	var members []attendee.Profile
	for k := range 31 {
		bio := fmt.Sprint("topic", k%7, " hobby", k%5)
		if k < 21 {
			bio += " datathon"
		}
		members = append(members, attendee.Profile{UserID: fmt.Sprintf("00000000-0000-4000-8000-%012d", k), Bio: bio})
	}
	whole := store.Snapshot{MembersVersion: 1, Version: 1, MembersLoaded: true, MatchesLoaded: true, Members: members}
	view, err := (*eventView)(nil).advance(context.Background(), whole)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planBatch(context.Background(), view, userIDs(members), 3, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	view.lists = plan.lists

	for _, tc := range []struct {
		bio     string
		rescore bool
	}{
		{"topic1 datathon", false}, // 22 of 32 bios: datathon stays boilerplate
		{"topic1 hobby2", true},    // 21 of 32 (≤ 32·2/3): it counts again
	} {
		newcomer := attendee.Profile{UserID: "00000000-0000-4000-8000-000000000100", Bio: tc.bio}
		next, err := view.advance(context.Background(), store.Snapshot{MembersVersion: 2, Version: 1, Members: []attendee.Profile{newcomer}})
		if err != nil {
			t.Fatal(err)
		}
		for v := range next.lists[:len(members)] {
			marked := len(next.lists[v]) == 1 && next.lists[v][0].Other == -1
			if marked != tc.rescore {
				t.Fatalf("newcomer %q: list of %d is %v, want marked for rescore: %v", tc.bio, v, next.lists[v], tc.rescore)
			}
			if !tc.rescore && !slices.Equal(next.lists[v], view.lists[v]) {
				t.Fatalf("newcomer %q: list of %d changed to %v", tc.bio, v, next.lists[v])
			}
		}
		if next.pool.SameTermWeights(view.pool) == tc.rescore {
			t.Fatalf("newcomer %q: SameTermWeights %v", tc.bio, !tc.rescore)
		}
	}
}

func userIDs(members []attendee.Profile) []string {
	ids := make([]string, len(members))
	for k, m := range members {
		ids[k] = m.UserID
	}
	return ids
}

// A commit hands the worker's view the lists it wrote only when it wrote
// this worker's last staging of the event onto the very lists that staging
// was scored on, with nothing deferred; any other commit leaves the view
// as it was, for the next batch to read what changed.
func TestCommitTakesWrittenListsOnlyWhenExact(t *testing.T) {
	before := &eventView{membersVersion: 4, listsVersion: 7}
	written := &eventView{membersVersion: 4, listsVersion: 7, lists: [][]matching.Entry{{{Other: 1, Score: 0.5}}, nil}}
	exact := store.CommitResult{StageID: "s2", ScoredVersion: 7, Version: 8}
	for _, tc := range []struct {
		name   string
		commit store.CommitResult
		taken  bool
	}{
		{"exact", exact, true},
		{"another staging", store.CommitResult{StageID: "s1", ScoredVersion: 7, Version: 8}, false},
		{"committed before (a retried commit)", store.CommitResult{}, false},
		{"another change between", store.CommitResult{StageID: "s2", ScoredVersion: 7, Version: 9}, false},
		{"lists deferred", store.CommitResult{StageID: "s2", ScoredVersion: 7, Version: 8, ListsDeferred: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c eventCache
			c.put("event", before)
			c.staged("event", "s1", &eventView{membersVersion: 4, listsVersion: 7})
			c.staged("event", "s2", written)
			c.committed("event", tc.commit)
			got := c.get("event")
			if taken := got != before; taken != tc.taken {
				t.Fatalf("view taken: %v, want %v", taken, tc.taken)
			}
			if tc.taken && (got.listsVersion != 8 || got.membersVersion != 4 || !slices.Equal(got.lists[0], written.lists[0])) {
				t.Errorf("view after the commit: %+v, want the written lists at version 8", got)
			}
			// The same commit reported twice changes nothing more.
			c.committed("event", tc.commit)
			if again := c.get("event"); again != got {
				t.Errorf("the same commit reported again changed the view")
			}
		})
	}
}
