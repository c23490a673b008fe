package activities

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// TestCachedViewFollowsExclusionsAndRules matches an event with one
// Activities (one cached view) while members decline each other, take it
// back and change languages, and while the organiser's rules change. After
// every batch the cached pool must allow exactly the pairs a whole read
// allows; exclusions and language edits must reach it through the change
// log (no whole read), rule changes by a whole read; and at the end every
// list is the allowed top N, with no excluded pair listed.
func TestCachedViewFollowsExclusionsAndRules(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ctx := context.Background()
	everyone := demodata.Generate(29, 120)
	st, eventID := newEnabledEvent(t, "eligibility", everyone)
	pool := st.Pool()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`UPDATE all_events_members m SET attendee_type = (ARRAY['exhibitor', 'buyer', 'investor', 'startup'])[1 + n.r % 4]
		FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) AS r FROM all_events_members WHERE event_id = $1) n
		WHERE m.event_id = $1 AND m.user_id = n.user_id`, eventID)
	acts := &Activities{Store: st, TopN: 3, Lease: time.Minute}
	rng := rand.New(rand.NewPCG(7, 9))
	batches := 0
	drain := func() (wholeReads int) {
		t.Helper()
		for {
			batches++
			token := fmt.Sprintf("eligibility/%d", batches)
			var claim ClaimResult
			runActivity(t, acts, acts.ClaimBatch, ClaimInput{EventID: eventID, Token: token, Limit: 1 + rng.IntN(40)}, &claim)
			if claim.Claimed == 0 {
				return wholeReads
			}
			ref := BatchRef{EventID: eventID, Token: token}
			var score ScoreResult
			runActivity(t, acts, acts.ScoreBatch, ref, &score)
			if score.ReadWholeEvent {
				wholeReads++
			}
			assertSameEligibility(t, acts, st, ref)
			runActivity(t, acts, acts.WriteInsights, ref, nil)
			var commit CommitResult
			runActivity(t, acts, acts.CommitBatch, ref, &commit)
			if commit.Stale {
				t.Fatalf("batch %s stale", token)
			}
		}
	}
	listed := func(viewer string) []string {
		rows, err := pool.Query(ctx, `SELECT matched_user_id::text FROM matches WHERE event_id = $1 AND user_id = $2 ORDER BY rank`, eventID, viewer)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}

	drain()
	for round := range 12 {
		if round%4 == 3 {
			exec(`DELETE FROM match_rules WHERE event_id = $1`, eventID)
			if round%8 == 3 {
				exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type)
					VALUES ($1, 'exhibitor', 'buyer'), ($1, 'buyer', 'exhibitor'), ($1, 'investor', 'startup')`, eventID)
			}
			if whole := drain(); whole == 0 {
				t.Errorf("round %d: new rules reached the cache without a whole read", round)
			}
			continue
		}
		for range 1 + rng.IntN(4) {
			viewer := everyone[rng.IntN(len(everyone))].UserID
			other := everyone[rng.IntN(len(everyone))].UserID
			if list := listed(viewer); len(list) > 0 {
				other = list[0]
			}
			if other == viewer {
				continue
			}
			exec(`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, 'declined')
				ON CONFLICT DO NOTHING`, eventID, viewer, other)
		}
		if rng.IntN(2) == 0 {
			exec(`DELETE FROM match_exclusions WHERE event_id = $1 AND user_id = $2`, eventID, everyone[rng.IntN(len(everyone))].UserID)
		}
		exec(`UPDATE all_events_members SET languages = $3 WHERE event_id = $1 AND user_id = $2`,
			eventID, everyone[rng.IntN(len(everyone))].UserID, []string{[]string{"en", "de", "fr"}[rng.IntN(3)]})
		if whole := drain(); whole != 0 {
			t.Errorf("round %d: %d batches read the whole event after declines and edits", round, whole)
		}
	}

	if n := queryCount(t, st, `SELECT count(*) FROM matches m JOIN match_exclusions x ON x.event_id = m.event_id
		AND ((x.user_id = m.user_id AND x.excluded_user_id = m.matched_user_id) OR (x.user_id = m.matched_user_id AND x.excluded_user_id = m.user_id))
		WHERE m.event_id = $1`, eventID); n != 0 {
		t.Errorf("%d listed pairs are excluded", n)
	}
	if n := queryCount(t, st, `SELECT count(*) FROM match_exclusions WHERE event_id = $1`, eventID); n == 0 {
		t.Error("the test left no exclusions to check")
	}
	assertAllowedTopN(t, st, eventID, 3)
}

func queryCount(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wholePool is the event read whole, as a worker without a cache builds it.
func wholePool(t *testing.T, st *store.Store, eventID, token string) *matching.Pool {
	t.Helper()
	snap, err := st.LoadSnapshot(context.Background(), eventID, token, store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	p, err := matching.NewPoolWithRules(context.Background(), snap.Members, snap.Rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertSameEligibility compares who may list whom in the worker's cached
// pool with a pool read whole.
func assertSameEligibility(t *testing.T, acts *Activities, st *store.Store, ref BatchRef) {
	t.Helper()
	cached := acts.events.get(ref.EventID).pool
	whole := wholePool(t, st, ref.EventID, ref.Token)
	if cached.Len() != whole.Len() {
		t.Fatalf("%s: cached pool of %d, event of %d", ref.Token, cached.Len(), whole.Len())
	}
	for i := range whole.Len() {
		ci, ok := cached.Index(whole.Profile(i).UserID)
		if !ok {
			t.Fatalf("%s: %s missing from the cached pool", ref.Token, whole.Profile(i).UserID)
		}
		for j := range whole.Len() {
			cj, _ := cached.Index(whole.Profile(j).UserID)
			if cached.Eligible(ci, cj) != whole.Eligible(i, j) {
				t.Fatalf("%s: %s may list %s: cached %v, whole read %v", ref.Token,
					whole.Profile(i).UserID, whole.Profile(j).UserID, cached.Eligible(ci, cj), whole.Eligible(i, j))
			}
		}
	}
}

// assertAllowedTopN checks every stored list against a pool read whole,
// rules, languages and exclusions included.
func assertAllowedTopN(t *testing.T, st *store.Store, eventID string, topN int) {
	t.Helper()
	if _, err := st.Pool().Exec(context.Background(), `INSERT INTO matchmaking_batches (token, event_id, claimed_users)
		VALUES ('check', $1, '{}') ON CONFLICT DO NOTHING`, eventID); err != nil {
		t.Fatal(err)
	}
	p := wholePool(t, st, eventID, "check")
	for i := range p.Len() {
		var want []string
		for _, e := range p.TopN(i, topN) {
			want = append(want, p.Profile(e.Other).UserID)
		}
		rows, err := st.Pool().Query(context.Background(), `SELECT matched_user_id::text FROM matches
			WHERE event_id = $1 AND user_id = $2 ORDER BY rank`, eventID, p.Profile(i).UserID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		rows.Close()
		if !slices.Equal(got, want) {
			t.Errorf("%s: stored %v, allowed top %d %v", p.Profile(i).UserID, got, topN, want)
		}
	}
}
