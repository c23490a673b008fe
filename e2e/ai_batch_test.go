package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestAIBatchSurvivesAWorkerKilledWhileItWaits: with AI_BATCH_API on, the
// backlog left after the first live round goes in one batch; the worker is
// killed while the backfill waits for it, a new worker polls the same
// batch (it is not submitted again) and, once the batch is done, every
// match ends with AI text. The backfill's history carries the batch's ID
// and counts, no profile or insight text.
func TestAIBatchSurvivesAWorkerKilledWhileItWaits(t *testing.T) {
	const members = 250
	fake := fakeopenai.New(t, nil)
	fake.SetBatchDelay(time.Hour)
	e := newEnv(t, map[string]string{"OPENAI_API_KEY": "sk-e2e-batch", "OPENAI_BASE_URL": fake.URL(),
		"AI_BATCH_API": "1", "AI_BATCH_MIN_BACKLOG": "50", "AI_BATCH_POLL": "1s"})
	pool := openPool(t, e.dbURL)
	people := demodata.Generate(57, members)
	eventID := loadEvent(t, pool, "ai-batch", people)
	w := e.startWorker()
	if out, errOut, code := e.starter("enable", "ai-batch", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("starter enable exited %d: %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(time.Minute)
	for fake.Batches() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no batch submitted in a minute; worker log:\n%s", w.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the backfill poll the batch at least once before the kill.
	time.Sleep(2 * time.Second)
	w.stop(syscall.SIGKILL)
	if n := queryInt(t, pool, `SELECT count(*) FROM matchmaking_ai_batches WHERE event_id = $1 AND collected_at IS NULL`, eventID); n != 1 {
		t.Fatalf("%d open batches in the database, want 1", n)
	}
	if ai := queryInt(t, pool, `SELECT count(*) FROM matches WHERE event_id = $1 AND insight_source = 'ai'`, eventID); ai == members*topN {
		t.Fatal("every insight is AI before the batch finished; the test proves nothing")
	}

	e.startWorker()
	time.Sleep(2 * time.Second)
	fake.SetBatchDelay(0)
	waitForAIShare(t, pool, eventID, members*topN, 3*time.Minute)
	checkInvariants(t, pool, eventID, topN)
	if fake.Batches() != 1 {
		t.Errorf("%d batches submitted, want 1: the new worker must poll the open one", fake.Batches())
	}
	if fake.BatchLines() == 0 {
		t.Error("no batch line was answered")
	}
	// The workflow's status hears of the collection when its activity
	// returns, a moment after the rows waitForAIShare saw.
	collected := func(st workflows.BackfillStatus) bool {
		return st.Batches == 1 && st.BatchCounts.Answered > 0 && st.Batch.ID == ""
	}
	st := queryBackfill(t, eventID)
	for deadline := time.Now().Add(30 * time.Second); !collected(st) && time.Now().Before(deadline); st = queryBackfill(t, eventID) {
		time.Sleep(100 * time.Millisecond)
	}
	if !collected(st) {
		t.Errorf("backfill status %+v, want one batch collected", st)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM matchmaking_ai_batches WHERE event_id = $1 AND collected_at IS NOT NULL`, eventID); n != 1 {
		t.Errorf("%d collected batches in the database, want 1", n)
	}

	history := workflowHistoryJSON(t, workflows.BackfillWorkflowID(eventID))
	if !strings.Contains(history, `"BatchID":`) {
		t.Fatal("the batch activities' payloads are not readable in the decoded history; the search below would prove nothing")
	}
	var sampleInsight string
	if err := pool.QueryRow(context.Background(),
		`SELECT insight FROM matches WHERE event_id = $1 ORDER BY user_id, rank LIMIT 1`, eventID).Scan(&sampleInsight); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{sampleInsight, people[0].Bio, people[1].Bio} {
		if strings.Contains(history, text) {
			t.Errorf("profile or insight text is in the backfill's history: %q", text)
		}
	}
}
