package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
)

// violation queries each return the rows that break one rule; an empty
// result means the rule holds. They read only the database.
var violations = []struct {
	rule  string
	query string
}{
	{"the queue is drained", `
		SELECT user_id::text FROM matchmaking_queue WHERE event_id = $1`},
	{"nobody is matched with themself", `
		SELECT user_id::text FROM matches WHERE event_id = $1 AND user_id = matched_user_id`},
	{"nobody is matched with a colleague", `
		SELECT m.user_id::text || ' ~ ' || m.matched_user_id::text
		FROM matches m
		JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.user_id
		JOIN all_events_members b ON b.event_id = m.event_id AND b.user_id = m.matched_user_id
		WHERE m.event_id = $1
		  AND nullif(lower(regexp_replace(btrim(a.company), '\s+', ' ', 'g')), '')
		    = nullif(lower(regexp_replace(btrim(b.company), '\s+', ' ', 'g')), '')`},
	{"matches point at members of the event", `
		SELECT m.user_id::text FROM matches m
		WHERE m.event_id = $1 AND NOT EXISTS (
			SELECT 1 FROM all_events_members x WHERE x.event_id = m.event_id AND x.user_id = m.matched_user_id)
		   OR m.event_id = $1 AND NOT EXISTS (
			SELECT 1 FROM all_events_members x WHERE x.event_id = m.event_id AND x.user_id = m.user_id)`},
	{"every member has min(TOP_N, eligible candidates) matches", `
		WITH member AS (
			SELECT user_id, nullif(lower(regexp_replace(btrim(company), '\s+', ' ', 'g')), '') AS company
			FROM all_events_members WHERE event_id = $1
		), eligible AS (
			SELECT a.user_id, count(b.user_id) AS n
			FROM member a LEFT JOIN member b
			  ON b.user_id <> a.user_id AND (a.company IS NULL OR b.company IS NULL OR a.company <> b.company)
			GROUP BY a.user_id
		), listed AS (
			SELECT user_id, count(*) AS n FROM matches WHERE event_id = $1 GROUP BY user_id
		)
		SELECT e.user_id::text || ' has ' || coalesce(l.n, 0) || ' of ' || least(e.n, $2)
		FROM eligible e LEFT JOIN listed l USING (user_id)
		WHERE coalesce(l.n, 0) <> least(e.n, $2)`},
	{"ranks run 1..k without gaps", `
		SELECT user_id::text FROM matches WHERE event_id = $1
		GROUP BY user_id HAVING max(rank) <> count(*) OR min(rank) <> 1`},
	{"lists are ordered by score", `
		SELECT a.user_id::text FROM matches a
		JOIN matches b ON b.event_id = a.event_id AND b.user_id = a.user_id AND b.rank = a.rank + 1
		WHERE a.event_id = $1 AND b.score > a.score`},
	{"scores are in [0,1]", `
		SELECT user_id::text FROM matches WHERE event_id = $1 AND (score < 0 OR score > 1)`},
	{"the score of a pair is the same from both sides", `
		SELECT a.user_id::text FROM matches a
		JOIN matches b ON b.event_id = a.event_id AND b.user_id = a.matched_user_id AND b.matched_user_id = a.user_id
		WHERE a.event_id = $1 AND a.score <> b.score`},
	{"if A lists B with s, B lists A or B's list is full of scores >= s", `
		SELECT a.user_id::text || ' lists ' || a.matched_user_id::text
		FROM matches a
		WHERE a.event_id = $1
		  AND NOT EXISTS (SELECT 1 FROM matches b
		                  WHERE b.event_id = a.event_id AND b.user_id = a.matched_user_id AND b.matched_user_id = a.user_id)
		  AND (SELECT count(*) FILTER (WHERE b.score >= a.score) FROM matches b
		       WHERE b.event_id = a.event_id AND b.user_id = a.matched_user_id) < $2`},
	{"every match has an insight and a known source", `
		SELECT user_id::text FROM matches
		WHERE event_id = $1 AND (length(btrim(insight)) < 20 OR insight_source NOT IN ('ai', 'fallback'))`},
	{"no staged rows are left behind", `
		SELECT s.user_id::text FROM matchmaking_staged_matches s
		JOIN matchmaking_batches b ON b.token = s.token WHERE b.event_id = $1`},
}

// checkInvariants fails the test for every broken rule.
func checkInvariants(t *testing.T, pool *pgxpool.Pool, eventID string, topN int) {
	t.Helper()
	ctx := context.Background()
	for _, v := range violations {
		args := []any{eventID}
		if strings.Contains(v.query, "$2") {
			args = append(args, topN)
		}
		rows, err := pool.Query(ctx, v.query, args...)
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("check %q: %v", v.rule, err)
		}
		if len(bad) > 0 {
			if len(bad) > 5 {
				bad = append(bad[:5], "…")
			}
			t.Errorf("rule broken: %s: %v", v.rule, bad)
		}
	}
}

// storedLists reads every member's list as user IDs with scores.
func storedLists(t *testing.T, pool *pgxpool.Pool, eventID string) map[string][]store.StoredMatch {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT user_id::text, matched_user_id::text, rank, score FROM matches
		WHERE event_id = $1 ORDER BY user_id, rank`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.StoredMatch, error) {
		var m store.StoredMatch
		return m, r.Scan(&m.UserID, &m.MatchedUserID, &m.Rank, &m.Score)
	})
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string][]store.StoredMatch{}
	for _, m := range all {
		lists[m.UserID] = append(lists[m.UserID], m)
	}
	return lists
}

// eventPool loads every member of the event as a from-scratch recompute
// reads them (normalizedPool).
func eventPool(t *testing.T, pool *pgxpool.Pool, eventID string) *matching.Pool {
	t.Helper()
	return normalizedPool(t, pool, eventID, nil)
}

// checkTrueTopN compares every stored list with a from-scratch top-N: the
// incremental pipeline must end where a full recompute would.
func checkTrueTopN(t *testing.T, pool *pgxpool.Pool, eventID string) {
	t.Helper()
	checkFromScratch(t, pool, eventID, nil, nil)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func queryInt(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
