package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestAIInsightsKeepTheKeyAndProfilesOutOfHistoryAndLogs runs the real
// worker against a local OpenAI-compatible server and then searches the
// worker's log, the workflow's history and the database for the API key, and
// the history for profile and insight text.
func TestAIInsightsKeepTheKeyAndProfilesOutOfHistoryAndLogs(t *testing.T) {
	t.Parallel()
	const apiKey = "sk-e2e-SECRET-7d1e55c0ffee"
	fake := fakeopenai.New(t, nil)
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": apiKey, "OPENAI_BASE_URL": fake.URL()})
	pool := openPool(t, e.dbURL)
	members := demodata.Generate(51, 30)
	eventID := loadEvent(t, pool, "ai-event", members)
	w := e.startWorker()

	out, errOut, code := e.starter("enable", "ai-event", "--wait", "--timeout", "2m")
	if code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	checkInvariants(t, pool, eventID, topN)
	waitForAIShare(t, pool, eventID, 30*topN, 2*time.Minute)
	if fake.Calls() == 0 {
		t.Fatal("the worker never called the model")
	}
	var sampleInsight string
	if err := pool.QueryRow(context.Background(),
		`SELECT insight FROM matches WHERE event_id = $1 ORDER BY user_id, rank LIMIT 1`, eventID).Scan(&sampleInsight); err != nil {
		t.Fatal(err)
	}

	if strings.Contains(w.logs.String(), apiKey) {
		t.Errorf("the API key is in the worker's log")
	}
	if !strings.Contains(w.logs.String(), "AI (") {
		t.Errorf("the worker does not say it writes AI insights:\n%s", w.logs.String())
	}
	if strings.Contains(out+errOut, apiKey) {
		t.Errorf("the API key is in the starter's output")
	}

	history := workflowHistoryJSON(t, workflows.WorkflowID(eventID))
	if !strings.Contains(history, `"Claimed":`) {
		t.Fatalf("activity results are not readable in the decoded history; the search below would prove nothing")
	}
	backfillHistory := workflowHistoryJSON(t, workflows.BackfillWorkflowID(eventID))
	if !strings.Contains(backfillHistory, `"Upgraded":`) {
		t.Fatalf("the backfill's results are not readable in its decoded history; the search below would prove nothing")
	}
	history += backfillHistory
	if strings.Contains(history, apiKey) {
		t.Errorf("the API key is in the workflow history")
	}
	for _, text := range []string{sampleInsight, members[0].Bio, members[1].Bio} {
		if strings.Contains(history, text) {
			t.Errorf("profile or insight text is in the workflow history: %q", text)
		}
	}

	var leaked int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM matches WHERE insight LIKE '%' || $1 || '%' OR reasons::text LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_insight_cache WHERE for_first LIKE '%' || $1 || '%' OR for_second LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_batches WHERE coalesce(last_error, '') LIKE '%' || $1 || '%')
		     + (SELECT count(*) FROM matchmaking_queue WHERE coalesce(last_error, '') LIKE '%' || $1 || '%')`, apiKey).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked > 0 {
		t.Errorf("the API key is in %d database rows", leaked)
	}
}

var payloadData = regexp.MustCompile(`"data":"([A-Za-z0-9+/=]+)"`)

// workflowHistoryJSON returns the whole history as text, payloads decoded.
func workflowHistoryJSON(t *testing.T, workflowID string) string {
	t.Helper()
	iter := suite.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var b strings.Builder
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatalf("read history: %v", err)
		}
		raw, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
		// Payload bytes appear base64-encoded in protojson; decode them so
		// the search sees what the payloads really carry.
		for _, m := range payloadData.FindAllSubmatch(raw, -1) {
			if decoded, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil {
				b.Write(decoded)
				b.WriteByte('\n')
			}
		}
	}
	if b.Len() == 0 {
		t.Fatal("empty workflow history")
	}
	return b.String()
}

// waitForAIShare waits until the event has want matches, all with AI
// insights, and fails the test after timeout.
func waitForAIShare(t *testing.T, pool *pgxpool.Pool, eventID string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ai := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID)
		all := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1`, eventID)
		if ai == want && all == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d AI insights of %d matches, want all %d", timeout, ai, all, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// queryBackfill asks the event's backfill workflow for its status.
func queryBackfill(t *testing.T, eventID string) workflows.BackfillStatus {
	t.Helper()
	v, err := suite.temporal.QueryWorkflow(context.Background(), workflows.BackfillWorkflowID(eventID), "", workflows.QueryStatus)
	if err != nil {
		t.Fatalf("query the backfill's status: %v", err)
	}
	var st workflows.BackfillStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAIBackfillListsEveryoneBeforeTheModelAnswers: with a model that takes
// 1.5 s a call, every member is listed (with fallback insights) before the
// model's first answer, and then every match gets an AI insight.
func TestAIBackfillListsEveryoneBeforeTheModelAnswers(t *testing.T) {
	t.Parallel()
	const members = 40
	var mu sync.Mutex
	var firstAnswer time.Time
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		const latency = 1500 * time.Millisecond
		mu.Lock()
		if at := time.Now().Add(latency); firstAnswer.IsZero() || at.Before(firstAnswer) {
			firstAnswer = at
		}
		mu.Unlock()
		return fakeopenai.Echo(call, req).After(latency)
	})
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": "sk-e2e-backfill", "OPENAI_BASE_URL": fake.URL()})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "ai-listed", demodata.Generate(52, members))
	e.startWorker()

	start := time.Now()
	if out, errOut, code := e.starter("enable", "ai-listed", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	listed := time.Now()
	checkInvariants(t, pool, eventID, topN)
	mu.Lock()
	answered := firstAnswer
	mu.Unlock()
	if !answered.IsZero() && !listed.Before(answered) {
		t.Errorf("every member was listed %s after enable, but the model's first answer came %s after it: the lists waited for the model",
			listed.Sub(start), answered.Sub(start))
	}
	if ai := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID); ai == members*topN {
		t.Errorf("all %d insights were AI when the lists were done: the lists waited for the model", ai)
	}
	waitForAIShare(t, pool, eventID, members*topN, 2*time.Minute)
	t.Logf("listed %s after enable, all AI %s after enable", listed.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The status is the backfill workflow's, which hears of a round when
	// the round's activity returns, a moment after the rows it committed
	// (which waitForAIShare saw).
	const done = "100% AI (120 of 120 matches), backlog 0"
	st := queryBackfill(t, eventID)
	for deadline := time.Now().Add(30 * time.Second); !strings.HasPrefix(st.Line, done) && time.Now().Before(deadline); st = queryBackfill(t, eventID) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(st.Line, done) {
		t.Errorf("backfill status line %q", st.Line)
	}
	if st.Upgraded == 0 || st.AICalls == 0 {
		t.Errorf("backfill status %+v counts no work", st)
	}

	// starter status shows the same, from the database and the query.
	out, errOut, code := e.starter("status", "ai-listed", "-o", "json")
	if code != 0 {
		t.Fatalf("starter status exited %d: %s", code, errOut)
	}
	var report struct {
		Events []struct {
			AIBackfill *struct {
				Matches, AI, Backlog, Calls int
				State, Line                 string
			} `json:"ai_backfill"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if len(report.Events) != 1 || report.Events[0].AIBackfill == nil {
		t.Fatalf("status -o json has no ai_backfill: %s", out)
	}
	if b := report.Events[0].AIBackfill; b.Matches != members*topN || b.AI != b.Matches || b.Backlog != 0 || b.Calls == 0 ||
		(b.State != string(workflows.BackfillIdle) && b.State != string(workflows.BackfillUpgrading)) ||
		!strings.HasPrefix(b.Line, "100% AI (120 of 120 matches), backlog 0") {
		t.Errorf("status -o json ai_backfill = %+v, want all %d AI, calls counted, the workflow's phase and line", *b, members*topN)
	}
	if out, _, _ := e.starter("status", "ai-listed"); !regexp.MustCompile(`AI backfill \((idle|upgrading)\): 100% AI \(120 of 120 matches\)`).MatchString(out) {
		t.Errorf("starter status says nothing of the AI backfill:\n%s", out)
	}
}

// TestAIBackfillSurvivesAWorkerKilledMidway: the worker is killed while the
// backfill is under way, a listed member renames themself and another
// leaves; a new worker finishes the backfill, every match ends with AI
// text, and none is about the renamed member's old profile.
func TestAIBackfillSurvivesAWorkerKilledMidway(t *testing.T) {
	t.Parallel()
	const members = 60
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, req).After(200 * time.Millisecond)
	})
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": "sk-e2e-backfill", "OPENAI_BASE_URL": fake.URL(), "AI_CONCURRENCY": "2"})
	pool := openPool(t, e.dbURL)
	people := demodata.Generate(53, members)
	eventID := loadEvent(t, pool, "ai-restart", people)
	w := e.startWorker()
	if out, errOut, code := e.starter("enable", "ai-restart", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(time.Minute)
	for queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID) < members*topN/5 {
		if time.Now().After(deadline) {
			t.Fatal("the backfill did not get a fifth of the way in a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.stop(syscall.SIGKILL)
	ai := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID)
	if ai == members*topN {
		t.Fatal("the backfill finished before the worker was killed; the test proves nothing")
	}

	// A member several lists name takes a new first name; another leaves.
	var renamed, departed string
	if err := pool.QueryRow(context.Background(), `
		SELECT matched_user_id::text FROM matches WHERE event_id = $1
		GROUP BY matched_user_id ORDER BY count(*) DESC, matched_user_id LIMIT 1`, eventID).Scan(&renamed); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(),
		`UPDATE all_events_members SET display_name = 'Zebulon Renamed' WHERE event_id = $1 AND user_id = $2`, eventID, renamed); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), `
		SELECT user_id::text FROM all_events_members WHERE event_id = $1 AND user_id <> $2 ORDER BY user_id LIMIT 1`,
		eventID, renamed).Scan(&departed); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, eventID, departed); err != nil {
		t.Fatal(err)
	}
	e.startWorker()

	waitForAIShare(t, pool, eventID, (members-1)*topN, 3*time.Minute)
	checkInvariants(t, pool, eventID, topN)
	if n := queryInt(t, pool, `
		SELECT count(*) FROM matches WHERE event_id = $1 AND matched_user_id = $2 AND insight NOT LIKE '%Zebulon%'`,
		eventID, renamed); n > 0 {
		t.Errorf("%d AI insights about the renamed member do not use their new name: written for a profile no longer listed", n)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND $2 IN (user_id::text, matched_user_id::text)`,
		eventID, departed); n > 0 {
		t.Errorf("%d matches name the member who left", n)
	}
}

// TestAIBackfillPausesAndResumesWithTheEvent: `starter pause` stops the
// backfill's rounds after the one running, and `starter resume` lets it
// finish.
func TestAIBackfillPausesAndResumesWithTheEvent(t *testing.T) {
	t.Parallel()
	const members = 60
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		return fakeopenai.Echo(call, req).After(200 * time.Millisecond)
	})
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": "sk-e2e-backfill", "OPENAI_BASE_URL": fake.URL(), "AI_CONCURRENCY": "2"})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "ai-pause", demodata.Generate(54, members))
	e.startWorker()
	if out, errOut, code := e.starter("enable", "ai-pause", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	aiNow := func() int {
		return queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID)
	}
	waitFor(t, time.Minute, "the backfill to start upgrading", func() bool { return aiNow() > 0 })
	if out, errOut, code := e.starter("pause", "ai-pause"); code != 0 {
		t.Fatalf("starter pause exited %d: %s %s", code, out, errOut)
	}
	// The round under way when the pause came finishes (MAX_RUNTIME_MS is
	// 5 s); then none starts.
	waitFor(t, 20*time.Second, "the backfill to pause", func() bool { return queryBackfill(t, eventID).Phase == workflows.BackfillPaused })
	paused := aiNow()
	callsPaused := fake.Calls()
	time.Sleep(4 * time.Second)
	if got := aiNow(); got != paused || fake.Calls() != callsPaused {
		t.Errorf("while paused: AI insights %d → %d, model calls %d → %d", paused, got, callsPaused, fake.Calls())
	}
	if paused == members*topN {
		t.Fatal("the backfill finished before the pause; the test proves nothing")
	}
	if out, errOut, code := e.starter("resume", "ai-pause"); code != 0 {
		t.Fatalf("starter resume exited %d: %s %s", code, out, errOut)
	}
	waitForAIShare(t, pool, eventID, members*topN, 3*time.Minute)
}

// TestAIBackfillStartsForListsMatchedBeforeAIWasOn: an event matched by a
// worker without a model key has fallback insights only and an empty
// queue, so no commit will ever start its backfill. A worker with a key
// starts it at its safety poll, and every match ends with AI text without
// a single batch being committed again.
func TestAIBackfillStartsForListsMatchedBeforeAIWasOn(t *testing.T) {
	t.Parallel()
	const members = 20
	fake := fakeopenai.New(t, fakeopenai.Echo)
	e := newEnv(t, nil)
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "ai-later", demodata.Generate(54, members))
	w := e.startWorker()
	if out, errOut, code := e.starter("enable", "ai-later", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	if ai := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID); ai != 0 {
		t.Fatalf("%d AI insights from a worker without a model key", ai)
	}
	w.stop(syscall.SIGTERM)
	batches := queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1`, eventID)

	e.workerVars["OPENAI_API_KEY"] = "sk-e2e-later"
	e.workerVars["OPENAI_BASE_URL"] = fake.URL()
	e.startWorker()
	waitForAIShare(t, pool, eventID, members*topN, 2*time.Minute)
	if after := queryInt(t, pool, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1`, eventID); after != batches {
		t.Errorf("%d batches before the worker with a key, %d after: a commit, not the safety poll, started the backfill", batches, after)
	}
	checkInvariants(t, pool, eventID, topN)
}
