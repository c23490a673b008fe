package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/enums/v1"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestAIBackfillSurvivesTwoKillsAndEdits: a 300-member event with a slow
// model (150 ms a call); the worker is killed with SIGKILL twice during
// the backfill and started again each time, and members edit their
// profiles or leave in between: while it is down, and while a round that
// has read their pairs is asking the model. At
// the end at least 99% of the current matches have an AI insight, no
// match names a member who left, and every AI insight is the model's
// answer for the two profiles as they read now: none was written for a
// pair, or a profile, that is no longer listed.
func TestAIBackfillSurvivesTwoKillsAndEdits(t *testing.T) {
	const members = 300
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, req).After(150 * time.Millisecond)
	})
	e := newEnv(t, map[string]string{
		"OPENAI_API_KEY": "sk-e2e-kills", "OPENAI_BASE_URL": fake.URL(),
		"AI_CONCURRENCY": "8", "AI_REQUESTS_PER_MINUTE": "6000",
	})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "ai-kills", demodata.Generate(55, members))
	share := func() (ai, all int) {
		t.Helper()
		if err := pool.QueryRow(context.Background(), `
			SELECT count(*) FILTER (WHERE insight_source = 'ai'), count(*) FROM matches WHERE event_id = $1`,
			eventID).Scan(&ai, &all); err != nil {
			t.Fatal(err)
		}
		return ai, all
	}
	// killAt waits until the AI share reaches percent, kills w, and checks
	// that the backfill was still under way.
	killAt := func(w *workerProcess, percent int) {
		t.Helper()
		waitFor(t, time.Minute, fmt.Sprintf("%d%% AI", percent), func() bool {
			ai, all := share()
			return all > 0 && 100*ai >= percent*all
		})
		w.stop(syscall.SIGKILL)
		if ai, all := share(); ai == all {
			t.Fatalf("the backfill finished before the worker was killed at %d%%; the test proves nothing", percent)
		}
	}

	start := time.Now()
	w := e.startWorker()
	if out, errOut, code := e.starter("enable", "ai-kills", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	killAt(w, 20)
	firstKill := time.Since(start)

	// While no worker runs: two members edit their bio, two leave.
	down := queryStrings(t, pool, `SELECT user_id::text FROM all_events_members WHERE event_id = $1 ORDER BY user_id LIMIT 4`, eventID)
	mustExec(t, pool, `UPDATE all_events_members SET bio = bio || ' Now into sailing.' WHERE event_id = $1 AND user_id = ANY($2::uuid[])`,
		eventID, down[:2])
	mustExec(t, pool, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = ANY($2::uuid[])`, eventID, down[2:])
	departed := down[2:]

	w = e.startWorker()
	restarted := time.Now()
	// While it runs, once a round of the new worker has read its
	// fallbacks and is asking the model: three members named by those
	// fallbacks take new names, three edit their bio, one leaves.
	var roundStarted time.Time
	waitFor(t, time.Minute, "a round of the restarted worker under way", func() bool {
		roundStarted = runningRoundStarted(t, eventID)
		return roundStarted.After(restarted) && time.Since(roundStarted) > 500*time.Millisecond
	})
	pending := queryStrings(t, pool, `
		SELECT matched_user_id::text FROM (
			SELECT matched_user_id, max(updated_at) AS newest FROM matches
			WHERE event_id = $1 AND insight_source = 'fallback' AND updated_at < $3 AND NOT matched_user_id = ANY($2::uuid[])
			GROUP BY matched_user_id) f
		ORDER BY newest DESC, matched_user_id LIMIT 7`, eventID, down, roundStarted)
	if len(pending) < 7 {
		t.Fatalf("only %d members named by the round's fallbacks; the test proves nothing", len(pending))
	}
	renamed := pending[:3]
	for i, id := range renamed {
		mustExec(t, pool, `UPDATE all_events_members SET display_name = $3 WHERE event_id = $1 AND user_id = $2`,
			eventID, id, fmt.Sprintf("Zebulon%c Renamed", 'A'+i))
	}
	mustExec(t, pool, `UPDATE all_events_members SET bio = bio || ' Now into sailing.' WHERE event_id = $1 AND user_id = ANY($2::uuid[])`,
		eventID, pending[3:6])
	mustExec(t, pool, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, eventID, pending[6])
	departed = append(departed, pending[6])
	edited := time.Now()
	// Killed again once that round has saved and the next is under way.
	waitFor(t, time.Minute, "the round to save", func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM matchmaking_ai_backfill WHERE event_id = $1 AND updated_at > $2`, eventID, edited) > 0
	})
	time.Sleep(time.Second)
	w.stop(syscall.SIGKILL)
	if ai, all := share(); ai == all {
		t.Fatal("the backfill finished before the worker was killed again; the test proves nothing")
	}
	secondKill := time.Since(start)

	e.startWorker()
	waitFor(t, 2*time.Minute, "every member listed and 99% AI", func() bool {
		ai, all := share()
		return fullyMatched(pool, eventID) && 100*ai >= 99*all
	})
	took := time.Since(start)
	ai, all := share()
	t.Logf("killed at %s and %s; %d of %d matches AI (%.1f%%) %s after the first start, %d model calls",
		firstKill.Round(100*time.Millisecond), secondKill.Round(100*time.Millisecond), ai, all,
		100*float64(ai)/float64(all), took.Round(100*time.Millisecond), fake.Calls())

	checkInvariants(t, pool, eventID, topN)
	if n := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND (user_id = ANY($2::uuid[]) OR matched_user_id = ANY($2::uuid[]))`,
		eventID, departed); n > 0 {
		t.Errorf("%d matches name a member who left", n)
	}
	if n := queryInt(t, pool, `
		SELECT count(*) FROM matches m JOIN all_events_members a ON a.event_id = m.event_id AND a.user_id = m.matched_user_id
		WHERE m.event_id = $1 AND m.matched_user_id = ANY($2::uuid[]) AND m.insight_source = 'ai'
		  AND m.insight NOT LIKE '%' || split_part(a.display_name, ' ', 1) || '%'`, eventID, renamed); n > 0 {
		t.Errorf("%d AI insights about a renamed member do not use their new name", n)
	}
	// The edits came while a round was asking about their pairs: some
	// answers must have been refused by the fence, or the edits proved
	// nothing about it.
	if fenced := queryInt(t, pool, `SELECT fenced FROM matchmaking_ai_backfill WHERE event_id = $1`, eventID); fenced == 0 {
		t.Errorf("no AI answer was fenced out: the edits did not meet a round in flight")
	}
	if stale := aiInsightsNotForCurrentProfiles(t, pool, eventID); len(stale) > 0 {
		t.Errorf("%d AI insights are not the model's answer for the pair's current profiles, e.g. %v", len(stale), stale[:min(3, len(stale))])
	}
}

// runningRoundStarted is when the backfill's running round (attempt)
// started; zero when none is running.
func runningRoundStarted(t *testing.T, eventID string) time.Time {
	t.Helper()
	desc, err := suite.temporal.DescribeWorkflow(context.Background(), workflows.BackfillWorkflowID(eventID), "")
	if err != nil {
		return time.Time{}
	}
	for _, a := range desc.RawResponse.GetPendingActivities() {
		if a.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
			return a.GetLastStartedTime().AsTime()
		}
	}
	return time.Time{}
}

// aiInsightsNotForCurrentProfiles returns the event's AI insights (as
// "viewer → matched") whose text is not the cached answer for the two
// members' current profiles: text written for a profile, or a pair, that
// is no longer listed. Every AI answer is cached under the profiles it was
// asked for before it is written anywhere.
func aiInsightsNotForCurrentProfiles(t *testing.T, pool *pgxpool.Pool, eventID string) []string {
	t.Helper()
	ctx := context.Background()
	profiles, err := store.New(pool).EventProfiles(ctx, eventID)
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{}
	for _, p := range profiles {
		key[p.UserID] = activities.ProfileCacheKey(p)
	}
	rows, err := pool.Query(ctx, `
		SELECT user_id::text, matched_user_id::text, insight FROM matches
		WHERE event_id = $1 AND insight_source = 'ai'`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	type aiRow struct{ viewer, matched, text string }
	ais, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (aiRow, error) {
		var a aiRow
		return a, r.Scan(&a.viewer, &a.matched, &a.text)
	})
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for _, a := range ais {
		v, m := key[a.viewer], key[a.matched]
		var forFirst, forSecond string
		err := pool.QueryRow(ctx, `
			SELECT for_first, for_second FROM matchmaking_insight_cache
			WHERE first_hash = $1 AND second_hash = $2 LIMIT 1`, min(v, m), max(v, m)).Scan(&forFirst, &forSecond)
		want := forFirst
		if v > m {
			want = forSecond
		}
		if err != nil || a.text != want {
			stale = append(stale, a.viewer+" → "+a.matched)
		}
	}
	return stale
}

func queryStrings(t *testing.T, pool *pgxpool.Pool, q string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustExec(t *testing.T, pool *pgxpool.Pool, q string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}
