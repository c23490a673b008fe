package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/store"
)

// TestCappedEventThroughChanges runs the real stack with MAX_APPEARANCES=4
// at TOP_N 3, where the cap binds (uncapped, a few members would be in
// dozens of lists): an event of 240 members is enabled, then a newcomer
// joins, a member edits their profile and a listed member leaves, each
// through the web app's SQL. After each, every rule holds, nobody is in
// more than 4 lists, and the stored lists are the capped assignment of
// the event computed from scratch (it is unique, so no other is right).
// The first batch claims the whole event, though BATCH_SIZE is 50.
func TestCappedEventThroughChanges(t *testing.T) {
	t.Parallel()
	const maxAppearances = 4
	e := newEnv(t, map[string]string{"MAX_APPEARANCES": "4"})
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(17, 241)
	eventID := loadEvent(t, pool, "capped", members[:240])
	e.startWorker()

	out, errOut, code := e.starter("enable", "capped", "--wait", "--timeout", "3m")
	if code != 0 {
		t.Fatalf("starter enable --wait exited %d: %s %s", code, out, errOut)
	}
	checkCappedAssignment(t, pool, eventID, maxAppearances)
	// BATCH_SIZE is 50 here: with the cap on, one batch claims everyone.
	batches := queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND cardinality(claimed_users) > 0`, eventID)
	largest := queryInt(t, pool, `SELECT coalesce(max(cardinality(claimed_users)), 0) FROM matchmaking_batches WHERE event_id = $1`, eventID)
	if batches != 1 || largest != 240 {
		t.Errorf("the event was matched in %d batches, the largest claiming %d members; want one claiming all 240", batches, largest)
	}

	ctx := context.Background()
	queueEmpty := func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID) == 0
	}
	newcomer := members[240]
	if _, err := store.New(pool).InsertMembers(ctx, eventID, []attendee.Profile{newcomer}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the newcomer's matches", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, eventID, newcomer.UserID) == topN &&
			queueEmpty()
	})
	checkCappedAssignment(t, pool, eventID, maxAppearances)

	donor := members[7]
	if _, err := pool.Exec(ctx, `
		UPDATE all_events_members SET interests = $3, looking_for = $4, offering = $5, bio = $6
		WHERE event_id = $1 AND user_id = $2`,
		eventID, members[3].UserID, donor.Interests, donor.LookingFor, donor.Offering, donor.Bio); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the edit to be matched", queueEmpty)
	checkCappedAssignment(t, pool, eventID, maxAppearances)

	// The most-listed member leaves: the lists naming them are re-matched,
	// and the places they held are free for others.
	var leaver string
	if err := pool.QueryRow(ctx, `
		SELECT matched_user_id::text FROM matches WHERE event_id = $1
		GROUP BY matched_user_id ORDER BY count(*) DESC, matched_user_id LIMIT 1`, eventID).Scan(&leaver); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, eventID, leaver); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the departure to be matched", queueEmpty)
	checkCappedAssignment(t, pool, eventID, maxAppearances)
}

// checkCappedAssignment checks every rule, the cap, and every stored list
// against the capped assignment computed from scratch.
func checkCappedAssignment(t *testing.T, pool *pgxpool.Pool, eventID string, maxAppearances int) {
	t.Helper()
	checkInvariants(t, pool, eventID, topN)
	if most := queryInt(t, pool, `
		SELECT coalesce(max(n), 0) FROM (
			SELECT count(*) AS n FROM matches WHERE event_id = $1 GROUP BY matched_user_id) c`, eventID); most > maxAppearances {
		t.Errorf("a member is in %d lists, cap %d", most, maxAppearances)
	}
	p := eventPool(t, pool, eventID)
	want, _, err := p.CappedLists(context.Background(), topN, maxAppearances, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := storedLists(t, pool, eventID)
	for i := range p.Len() {
		id := p.Profile(i).UserID
		got := stored[id]
		same := len(got) == len(want[i])
		for k := 0; same && k < len(got); k++ {
			same = got[k].MatchedUserID == p.Profile(want[i][k].Other).UserID && got[k].Score == want[i][k].Score
		}
		if !same {
			wantIDs := make([]string, len(want[i]))
			for k, w := range want[i] {
				wantIDs[k] = p.Profile(w.Other).UserID
			}
			t.Errorf("%s: stored %v, capped assignment %v", id, got, wantIDs)
		}
	}
}
