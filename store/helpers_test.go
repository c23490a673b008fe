package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// env is one test's fresh, migrated database.
type env struct {
	*testenv.DB
	st *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := testenv.NewDB(t)
	return &env{DB: d, st: store.New(d.Pool)}
}

var (
	uid   = testenv.UID
	ev    = testenv.EventUUID
	uids  = testenv.UIDs
	short = testenv.ShortID

	wantStrings = testenv.WantStrings
)

// members inserts members ns into the event in one statement, named "Mn".
func (e *env) members(event string, ns ...int) {
	e.T.Helper()
	e.Exec(`
		INSERT INTO all_events_members (event_id, user_id, display_name, job_title, interests)
		SELECT $1, u, 'M' || `+short("u")+`, 'Title ' || `+short("u")+`, ARRAY['go']
		FROM unnest($2::uuid[]) AS u`, event, uids(ns...))
}

// queue puts user n in the event's queue at priority p, enqueued ago before now.
func (e *env) queue(event string, n, p int, ago time.Duration) {
	e.T.Helper()
	e.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority, enqueued_at)
		VALUES ($1, $2, $3, now() - $4::interval)`, event, uid(n), p, ago)
}

// matchesFull lists the event's matches with every column.
func (e *env) matchesFull(event string) []string {
	e.T.Helper()
	return e.Strings(`SELECT concat_ws(' ', `+short("user_id")+` || '>' || `+short("matched_user_id")+` || '#' || rank,
		score, reasons::text, insight_source, insight, updated_at)
		FROM matches WHERE event_id = $1 ORDER BY user_id, rank`, event)
}

// queueRows lists the event's queue as "user:priority" in claim order,
// with "*token" appended to claimed rows.
func (e *env) queueRows(event string) []string {
	e.T.Helper()
	return e.Strings(`SELECT `+short("user_id")+` || ':' || priority || coalesce('*' || claim_token, '')
		FROM matchmaking_queue WHERE event_id = $1 ORDER BY priority DESC, enqueued_at, user_id`, event)
}

// queueFull lists every column of the event's queue that a batch may touch.
func (e *env) queueFull(event string) []string {
	e.T.Helper()
	return e.Strings(`SELECT concat_ws(' ', `+short("user_id")+`, priority, enqueued_at, generation,
		coalesce(claim_token, '-'), coalesce(claimed_generation::text, '-'), coalesce(lease_expires_at::text, '-'),
		attempts, coalesce(last_error, '-'))
		FROM matchmaking_queue WHERE event_id = $1 ORDER BY user_id`, event)
}

// version is the event's matchmaking_event_state.version, -1 without a row.
func (e *env) version(event string) int64 {
	e.T.Helper()
	return e.Int(`SELECT coalesce((SELECT version FROM matchmaking_event_state WHERE event_id = $1), -1)`, event)
}

// expire moves the leases of token's rows into the past.
func (e *env) expire(token string) {
	e.T.Helper()
	if e.Exec(`UPDATE matchmaking_queue SET lease_expires_at = now() - interval '1 second' WHERE claim_token = $1`, token) == 0 {
		e.T.Fatalf("no rows claimed by %s to expire", token)
	}
}

func (e *env) claim(event, token string, limit int) int {
	e.T.Helper()
	n, err := e.st.ClaimBatch(e.Ctx, event, token, limit, time.Minute)
	if err != nil {
		e.T.Fatalf("ClaimBatch(%s, %d): %v", token, limit, err)
	}
	return n
}

// stageAll snapshots the batch and stages rows "from>to" (ranks in order of
// appearance per viewer) for viewers, then writes an "ai" insight for each.
func (e *env) stageAll(event, token string, viewers []int, pairs ...[2]int) store.Snapshot {
	e.T.Helper()
	snap, err := e.st.LoadSnapshot(e.Ctx, event, token, store.NoCache)
	if err != nil {
		e.T.Fatalf("LoadSnapshot: %v", err)
	}
	rows, insights := stagedRows(pairs...)
	if _, err := e.st.StageMatches(e.Ctx, token, snap.Version, uids(viewers...), rows, false); err != nil {
		e.T.Fatalf("StageMatches: %v", err)
	}
	if err := e.st.SaveInsights(e.Ctx, token, insights); err != nil {
		e.T.Fatalf("SaveInsights: %v", err)
	}
	return snap
}

func stagedRows(pairs ...[2]int) ([]store.StagedMatch, []store.Insight) {
	var rows []store.StagedMatch
	var insights []store.Insight
	rank := map[int]int{}
	for _, p := range pairs {
		rank[p[0]]++
		rows = append(rows, store.StagedMatch{
			UserID: uid(p[0]), MatchedUserID: uid(p[1]), Rank: rank[p[0]],
			Score: 1 - 0.25*float32(rank[p[0]]), Reasons: []byte(`{"shared":["go"]}`),
		})
		insights = append(insights, store.Insight{
			UserID: uid(p[0]), Rank: rank[p[0]], Text: fmt.Sprintf("meet %d", p[1]), Source: "ai",
		})
	}
	return rows, insights
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
