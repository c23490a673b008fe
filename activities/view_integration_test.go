package activities

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// TestCachedViewEqualsAWholeRead runs an event through rounds of joins,
// profile edits, departures, quarantine and retries, matching it with one
// Activities (so one cached view) in small batches. After every batch the
// cached view must equal one read from scratch, and at the end every stored
// list must be its owner's true top-N. It also checks that the cache was
// used: only the first batch may read the whole event, and after each
// commit the view already holds the lists the batch wrote.
func TestCachedViewEqualsAWholeRead(t *testing.T) {
	cachedViewScenario(t, 0)
}

// TestCappedAssignmentThroughBatches is the same scenario with the cap
// on: every batch repairs the capped assignment the worker computed
// before, and at the end the stored lists must be the capped assignment of
// the event computed from scratch (it is unique).
func TestCappedAssignmentThroughBatches(t *testing.T) {
	cachedViewScenario(t, 4)
}

func cachedViewScenario(t *testing.T, maxAppearances int) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ctx := context.Background()
	everyone := demodata.Generate(23, 400)
	st, eventID := newEnabledEvent(t, "view", everyone[:150])
	pool := st.Pool()
	acts := &Activities{Store: st, TopN: 3, MaxAppearances: maxAppearances, Lease: time.Minute}
	joined := 150
	present := func() []string {
		var ids []string
		rows, err := pool.Query(ctx, `SELECT user_id::text FROM all_events_members WHERE event_id = $1 ORDER BY user_id`, eventID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}

	rng := rand.New(rand.NewPCG(5, 8))
	batches, wholeReads := 0, 0
	run := func(fn any, arg any, out any) {
		t.Helper()
		runActivity(t, acts, fn, arg, out)
	}
	drain := func() {
		t.Helper()
		for {
			batches++
			token := fmt.Sprintf("view/%d", batches)
			var claim ClaimResult
			run(acts.ClaimBatch, ClaimInput{EventID: eventID, Token: token, Limit: 1 + rng.IntN(25)}, &claim)
			if claim.Claimed == 0 {
				return
			}
			ref := BatchRef{EventID: eventID, Token: token}
			var score ScoreResult
			run(acts.ScoreBatch, ref, &score)
			if score.ReadWholeEvent {
				wholeReads++
			}
			assertViewIsWholeRead(t, acts, st, ref)
			run(acts.WriteInsights, ref, nil)
			var commit CommitResult
			run(acts.CommitBatch, ref, &commit)
			if commit.Stale {
				t.Fatalf("batch %s stale", token)
			}
			// Nothing changed between scoring and commit: the worker
			// took the lists it wrote into its view, which is the
			// event as committed, so the next batch reads none back.
			assertViewIsWholeRead(t, acts, st, ref)
		}
	}

	drain()
	for round := range 20 {
		ids := present()
		switch {
		case round%7 == 6: // quarantine someone, or let them all back
			if round%2 == 0 {
				if _, err := st.QuarantineMembers(ctx, eventID, []store.RefusedMember{{UserID: ids[rng.IntN(len(ids))], Reason: "test"}}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := st.RetryQuarantined(ctx, eventID); err != nil {
				t.Fatal(err)
			}
		default:
			n := 1 + rng.IntN(8)
			if _, err := st.InsertMembers(ctx, eventID, everyone[joined:joined+n]); err != nil {
				t.Fatal(err)
			}
			joined += n
			for range 1 + rng.IntN(4) {
				donor := everyone[rng.IntN(len(everyone))]
				if _, err := pool.Exec(ctx, `
					UPDATE all_events_members SET interests = $3, offering = $4, bio = $5
					WHERE event_id = $1 AND user_id = $2`,
					eventID, ids[rng.IntN(len(ids))], donor.Interests, donor.Offering, donor.Bio); err != nil {
					t.Fatal(err)
				}
			}
			for range rng.IntN(4) {
				if _, err := pool.Exec(ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`,
					eventID, ids[rng.IntN(len(ids))]); err != nil {
					t.Fatal(err)
				}
			}
		}
		drain()
	}
	if wholeReads != 1 {
		t.Errorf("%d of %d batches read the whole event, want only the first", wholeReads, batches)
	}
	if maxAppearances > 0 {
		assertCappedAssignment(t, st, eventID, 3, maxAppearances)
		return
	}
	assertTrueTopN(t, st, eventID, 3)
}

// assertViewIsWholeRead compares the worker's cached view of the batch's
// event with one built from a whole read.
func assertViewIsWholeRead(t *testing.T, acts *Activities, st *store.Store, ref BatchRef) {
	t.Helper()
	cached := acts.events.get(ref.EventID)
	snap, err := st.LoadSnapshot(context.Background(), ref.EventID, ref.Token, store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := (*eventView)(nil).advance(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if cached.membersVersion != whole.membersVersion || cached.listsVersion != whole.listsVersion {
		t.Fatalf("%s: cached at %d/%d, event at %d/%d", ref.Token,
			cached.membersVersion, cached.listsVersion, whole.membersVersion, whole.listsVersion)
	}
	describe := func(v *eventView) (members []string, lists map[string]string) {
		lists = map[string]string{}
		for i := range v.pool.Len() {
			p := v.pool.Profile(i)
			members = append(members, fmt.Sprintf("%s %v %v %q", p.UserID, p.Interests, p.Offering, p.Bio))
			var entries []string
			for _, e := range v.lists[i] {
				other := "gone"
				if e.Other >= 0 {
					other = v.pool.Profile(e.Other).UserID
				}
				entries = append(entries, fmt.Sprintf("%s:%v", other, e.Score))
			}
			if len(entries) > 0 {
				lists[p.UserID] = fmt.Sprint(entries)
			}
		}
		for owner := range v.orphans {
			lists[owner] = "orphan"
		}
		slices.Sort(members)
		return members, lists
	}
	cachedMembers, cachedLists := describe(cached)
	wholeMembers, wholeLists := describe(whole)
	if !slices.Equal(cachedMembers, wholeMembers) {
		t.Fatalf("%s: cached pool differs from the event's members:\n cached %v\n whole  %v", ref.Token, cachedMembers, wholeMembers)
	}
	if fmt.Sprint(cachedLists) != fmt.Sprint(wholeLists) {
		t.Fatalf("%s: cached lists differ from the stored ones:\n cached %v\n whole  %v", ref.Token, cachedLists, wholeLists)
	}
}

// assertTrueTopN checks every stored list against a pool built from scratch.
func assertTrueTopN(t *testing.T, st *store.Store, eventID string, topN int) {
	t.Helper()
	assertFromScratch(t, st, eventID, func(pool *matching.Pool) [][]matching.Entry {
		lists := make([][]matching.Entry, pool.Len())
		for i := range lists {
			lists[i] = pool.TopN(i, topN)
		}
		return lists
	})
}

// assertCappedAssignment checks every stored list against the capped
// assignment of a pool built from scratch.
func assertCappedAssignment(t *testing.T, st *store.Store, eventID string, topN, maxAppearances int) {
	t.Helper()
	assertFromScratch(t, st, eventID, func(pool *matching.Pool) [][]matching.Entry {
		lists, _, err := pool.CappedLists(context.Background(), topN, maxAppearances, nil)
		if err != nil {
			t.Fatal(err)
		}
		return lists
	})
}

// assertFromScratch checks every stored list against the lists expected
// computes from a pool built from scratch.
func assertFromScratch(t *testing.T, st *store.Store, eventID string, expected func(*matching.Pool) [][]matching.Entry) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Pool().Exec(ctx, `INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ('check', $1, '{}') ON CONFLICT DO NOTHING`, eventID); err != nil {
		t.Fatal(err)
	}
	snap, err := st.LoadSnapshot(ctx, eventID, "check", store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := matching.NewPoolContext(ctx, snap.Members)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]store.StoredMatch{}
	for _, m := range snap.Matches {
		stored[m.UserID] = append(stored[m.UserID], m)
	}
	wantLists := expected(pool)
	for i := range pool.Len() {
		owner := pool.Profile(i).UserID
		want := wantLists[i]
		got := stored[owner]
		if len(got) != len(want) {
			t.Fatalf("%s: %d stored matches, want %d", owner, len(got), len(want))
		}
		for k, e := range want {
			if got[k].MatchedUserID != pool.Profile(e.Other).UserID || got[k].Score != e.Score {
				t.Fatalf("%s rank %d: stored %s (%v), want %s (%v)", owner, k+1,
					got[k].MatchedUserID, got[k].Score, pool.Profile(e.Other).UserID, e.Score)
			}
		}
		delete(stored, owner)
	}
	for owner := range stored {
		t.Errorf("%s is not scored but has a stored list", owner)
	}
}

// newEnabledEvent is a fresh database holding one enabled event of members.
func newEnabledEvent(t *testing.T, code string, members []attendee.Profile) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	_, pool := testenv.Database(t)
	st := store.New(pool)
	ev, err := st.EnsureEvent(ctx, code, "Test event "+code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.InsertMembers(ctx, ev.ID, members); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnableEvent(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	return st, ev.ID
}

// runActivity runs one activity of acts in Temporal's activity test
// environment and decodes its result into out (nil: ignored).
func runActivity(t *testing.T, acts *Activities, fn, arg, out any) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(fn, arg)
	if err != nil {
		t.Fatalf("activity: %v", err)
	}
	if out != nil {
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEditsRepairListsFromReserves: after the first batch the worker keeps
// spares past every list, so when members edit their profiles the lists
// that name them are repaired from those spares; only the editors' own
// lists are scored against the whole event, and every list ends as its
// owner's true top-N.
func TestEditsRepairListsFromReserves(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ctx := context.Background()
	everyone := demodata.Generate(31, 300)
	st, eventID := newEnabledEvent(t, "reserves", everyone)
	acts := &Activities{Store: st, TopN: 3, Lease: time.Minute}
	batch := func(token string) ScoreResult {
		t.Helper()
		var claim ClaimResult
		runActivity(t, acts, acts.ClaimBatch, ClaimInput{EventID: eventID, Token: token, Limit: 1000}, &claim)
		ref := BatchRef{EventID: eventID, Token: token}
		var score ScoreResult
		runActivity(t, acts, acts.ScoreBatch, ref, &score)
		runActivity(t, acts, acts.WriteInsights, ref, nil)
		var commit CommitResult
		runActivity(t, acts, acts.CommitBatch, ref, &commit)
		if commit.Stale {
			t.Fatalf("batch %s stale", token)
		}
		return score
	}
	batch("reserves/all")

	// Edit the five most listed members: their listers' stored scores go
	// stale, which without spares means scoring each of those lists again.
	var editors []string
	var listers int
	err := st.Pool().QueryRow(ctx, `
		WITH top AS (
			SELECT matched_user_id, count(*) AS n FROM matches WHERE event_id = $1
			GROUP BY matched_user_id ORDER BY n DESC, matched_user_id LIMIT 5
		)
		SELECT array_agg(matched_user_id::text), sum(n)::int FROM top`, eventID).Scan(&editors, &listers)
	if err != nil {
		t.Fatal(err)
	}
	for k, id := range editors {
		donor := everyone[100+k]
		if _, err := st.Pool().Exec(ctx, `
			UPDATE all_events_members SET interests = $3, offering = $4 WHERE event_id = $1 AND user_id = $2`,
			eventID, id, donor.Interests, donor.Offering); err != nil {
			t.Fatal(err)
		}
	}
	score := batch("reserves/edits")
	t.Logf("%d editors listed %d times; %d lists rescored, %d changed", len(editors), listers, score.ListsRescored, score.ListsChanged)
	if score.Scored != len(editors) {
		t.Fatalf("the batch claimed %d members, want the %d editors", score.Scored, len(editors))
	}
	if score.ListsRescored >= len(editors)+listers/2 {
		t.Errorf("%d lists rescored for %d editors listed %d times: the spares were not used", score.ListsRescored, len(editors), listers)
	}
	assertTrueTopN(t, st, eventID, 3)
}
