package activities

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// batchMark ends every answer the fake's batches give (and no live
// answer), so a test can tell which path wrote an insight.
const batchMark = "compare notes with at this event."

// TestBacklogGoesThroughTheBatchAPI: with AI_BATCH_API on, an event's
// backlog is submitted as one batch (once: submitting again resumes it),
// polled until done, and collected: answers validated and cached, lines
// the batch failed and answers about a profile edited meanwhile left out.
// The rounds then write the cached answers fenced, and ask the model live
// only for what the batch did not answer. No batch answer lands on a pair
// of the edited member.
func TestBacklogGoesThroughTheBatchAPI(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 30, func(call int, req fakeopenai.Request) fakeopenai.Response {
		if !strings.HasPrefix(req.Path, "/v1/batches/") {
			return fakeopenai.Echo(call, req)
		}
		if call%10 == 0 {
			return fakeopenai.Error(http.StatusInternalServerError, "The server had an error while processing your request.")
		}
		r := fakeopenai.Echo(call, req)
		r.Content = strings.ReplaceAll(r.Content, "compare notes with here.", batchMark)
		return r
	})
	f.fake.SetBatchDelay(time.Hour)
	f.acts.AIBatch, f.acts.AIBatchMinBacklog = true, 20
	f.drainBatches()
	ctx := context.Background()
	db := f.st.Pool()
	var suite testsuite.WorkflowTestSuite
	run := func(out any, fn any, arg any) {
		t.Helper()
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(f.acts)
		f.exec(env, out, fn, arg)
	}

	var round BackfillRoundResult
	progress, err := f.st.BackfillProgress(ctx, f.eventID)
	if err != nil {
		t.Fatal(err)
	}
	if !f.acts.batchAdvised(progress) {
		t.Fatalf("a backlog of %d with AI_BATCH_MIN_BACKLOG 20 is not advised for a batch", progress.Backlog)
	}
	var sub SubmitAIBatchResult
	run(&sub, f.acts.SubmitAIBatch, BackfillRoundInput{EventID: f.eventID})
	if sub.BatchID == "" || sub.Requests < 20 || f.fake.Batches() != 1 || f.fake.Calls() != 0 {
		t.Fatalf("submitted %+v; %d batches, %d calls", sub, f.fake.Batches(), f.fake.Calls())
	}
	var again SubmitAIBatchResult
	run(&again, f.acts.SubmitAIBatch, BackfillRoundInput{EventID: f.eventID})
	if !again.Resumed || again.BatchID != sub.BatchID || f.fake.Batches() != 1 {
		t.Fatalf("submitted again: %+v, %d batches; want the open batch resumed", again, f.fake.Batches())
	}

	// While the batch runs, a member edits their profile: the batch's
	// answers about them are about a bio they no longer have.
	edited := f.members[0].UserID
	if _, err := db.Exec(ctx, `UPDATE all_events_members SET bio = bio || ' Now into sailing.' WHERE event_id = $1 AND user_id = $2`,
		f.eventID, edited); err != nil {
		t.Fatal(err)
	}
	f.drainBatches() // rewrites the lists the edit touched, with fallbacks

	// Those lists are not in the batch: a round for the lists written
	// after the batch's serves them live, and nothing else.
	if sub.ListsUpTo.IsZero() {
		t.Fatal("the batch does not say which lists it holds")
	}
	run(&round, f.acts.BackfillRound, BackfillRoundInput{EventID: f.eventID, ListsWrittenAfter: sub.ListsUpTo})
	var newer, aiOnNewer, aiOnOlder int
	if err := db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE updated_at > $2),
		       count(*) FILTER (WHERE updated_at > $2 AND insight_source = 'ai'),
		       count(*) FILTER (WHERE updated_at <= $2 AND insight_source = 'ai')
		FROM matches WHERE event_id = $1`, f.eventID, sub.ListsUpTo).Scan(&newer, &aiOnNewer, &aiOnOlder); err != nil {
		t.Fatal(err)
	}
	if newer == 0 || round.Selected != newer || aiOnNewer != newer || aiOnOlder != 0 {
		t.Fatalf("round %+v: %d lists rows written after the batch's, %d of them AI, %d AI rows among the batch's; "+
			"want exactly the newer ones upgraded", round, newer, aiOnNewer, aiOnOlder)
	}
	if f.fake.BatchLines() != 0 {
		t.Fatal("the batch answered before its delay")
	}

	in := AIBatchInput{EventID: f.eventID, BatchID: sub.BatchID}
	var poll AIBatchPollResult
	run(&poll, f.acts.PollAIBatch, in)
	if poll.Done || poll.Total != sub.Requests {
		t.Fatalf("poll before the batch's delay: %+v", poll)
	}
	f.fake.SetBatchDelay(0)
	run(&poll, f.acts.PollAIBatch, in)
	if !poll.Done || poll.Completed+poll.Failed != sub.Requests || poll.Failed == 0 {
		t.Fatalf("poll after the delay: %+v, want done with some lines failed", poll)
	}
	callsBefore := round.Progress.Calls
	var got AIBatchCollectResult
	run(&got, f.acts.CollectAIBatch, in)
	if got.Answered == 0 || got.Failed != poll.Failed || got.Stale == 0 || got.Calls != poll.Completed {
		t.Fatalf("collected %+v (poll %+v): want answers, the failed lines, and stale answers about the edited profile", got, poll)
	}
	if got.Answered+got.Refused+got.Stale != poll.Completed {
		t.Errorf("collected %+v: the %d completed lines are not all accounted for", got, poll.Completed)
	}
	var twice AIBatchCollectResult
	run(&twice, f.acts.CollectAIBatch, in)
	if twice.AIBatchCounts != got.AIBatchCounts || twice.Calls != 0 {
		t.Errorf("collected again: %+v, want the first counts and no calls counted again", twice)
	}
	if progress, err = f.st.BackfillProgress(ctx, f.eventID); err != nil {
		t.Fatal(err)
	}
	if progress.Calls-callsBefore != poll.Completed {
		t.Errorf("%d calls counted for a batch of %d answered lines", progress.Calls-callsBefore, poll.Completed)
	}
	if _, open, err := f.st.OpenAIBatch(ctx, f.eventID); err != nil || open {
		t.Errorf("the batch is still open after collecting (%v)", err)
	}

	batchLines := f.fake.BatchLines()
	rounds := f.backfill()
	round = rounds[len(rounds)-1]
	if ai, fallback := f.sources(); fallback != 0 || ai == 0 {
		t.Fatalf("after the rounds: %d ai, %d fallback; last round %+v", ai, fallback, round)
	}
	live := f.fake.Calls() - batchLines
	if live == 0 || live >= sub.Requests/2 {
		t.Errorf("%d live calls after a batch of %d requests: want only what the batch did not answer", live, sub.Requests)
	}
	var fromBatch, onEdited int
	if err := db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE insight LIKE '%' || $3),
		       count(*) FILTER (WHERE insight LIKE '%' || $3 AND $2 IN (user_id, matched_user_id))
		FROM matches WHERE event_id = $1`, f.eventID, edited, batchMark).Scan(&fromBatch, &onEdited); err != nil {
		t.Fatal(err)
	}
	if fromBatch == 0 {
		t.Error("no insight came from the batch")
	}
	if onEdited != 0 {
		t.Errorf("%d batch answers written onto pairs of the member who edited their profile after the batch was sent", onEdited)
	}
}

// TestALostBatchIsClosed: a batch the provider does not know (404) is
// done with nothing to collect; collecting closes it, so the backfill goes
// on live instead of polling it forever.
func TestALostBatchIsClosed(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 6, ok)
	f.acts.AIBatch, f.acts.AIBatchMinBacklog = true, 1
	ctx := context.Background()
	if err := f.st.RecordAIBatch(ctx, f.eventID, store.AIBatch{BatchID: "batch_unknown", Requests: 9, ListsUpTo: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	env := func() *testsuite.TestActivityEnvironment {
		e := suite.NewTestActivityEnvironment()
		e.RegisterActivity(f.acts)
		return e
	}
	in := AIBatchInput{EventID: f.eventID, BatchID: "batch_unknown"}
	var poll AIBatchPollResult
	f.exec(env(), &poll, f.acts.PollAIBatch, in)
	if !poll.Done || poll.Status != batchLost {
		t.Fatalf("poll of an unknown batch: %+v", poll)
	}
	var got AIBatchCollectResult
	f.exec(env(), &got, f.acts.CollectAIBatch, in)
	if got.Calls != 0 || got.Answered != 0 {
		t.Errorf("collected %+v from a lost batch", got)
	}
	if _, open, err := f.st.OpenAIBatch(ctx, f.eventID); err != nil || open {
		t.Errorf("the lost batch is still open (%v)", err)
	}
}

// TestABatchIsClosedByAWorkerWithoutAI: a worker with AI off cannot ask
// about the batch; it closes it rather than poll it in vain.
func TestABatchIsClosedByAWorkerWithoutAI(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 6, ok)
	f.acts.Insights = nil
	ctx := context.Background()
	if err := f.st.RecordAIBatch(ctx, f.eventID, store.AIBatch{BatchID: "batch_x", Requests: 9, ListsUpTo: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	env := func() *testsuite.TestActivityEnvironment {
		e := suite.NewTestActivityEnvironment()
		e.RegisterActivity(f.acts)
		return e
	}
	in := AIBatchInput{EventID: f.eventID, BatchID: "batch_x"}
	var poll AIBatchPollResult
	f.exec(env(), &poll, f.acts.PollAIBatch, in)
	if !poll.Done || poll.Status != batchLost {
		t.Fatalf("poll without AI: %+v", poll)
	}
	f.exec(env(), nil, f.acts.CollectAIBatch, in)
	if _, open, err := f.st.OpenAIBatch(ctx, f.eventID); err != nil || open {
		t.Errorf("the batch is still open (%v)", err)
	}
}

// TestAnExpiredBatchLeavesTheRestToTheLiveRounds: a batch that expires
// with half its lines answered is collected for that half; the rounds ask
// the model live for the rest, and every match ends with AI text.
func TestAnExpiredBatchLeavesTheRestToTheLiveRounds(t *testing.T) {
	testenv.RequireIntegration(t)
	f := newAIFixture(t, 20, ok)
	f.fake.SetBatchOutcome(fakeopenai.BatchExpired)
	f.acts.AIBatch, f.acts.AIBatchMinBacklog = true, 10
	f.drainBatches()
	var suite testsuite.WorkflowTestSuite
	run := func(out any, fn any, arg any) {
		t.Helper()
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(f.acts)
		f.exec(env, out, fn, arg)
	}
	var sub SubmitAIBatchResult
	run(&sub, f.acts.SubmitAIBatch, BackfillRoundInput{EventID: f.eventID})
	in := AIBatchInput{EventID: f.eventID, BatchID: sub.BatchID}
	var poll AIBatchPollResult
	run(&poll, f.acts.PollAIBatch, in)
	if !poll.Done || poll.Status != fakeopenai.BatchExpired || poll.Completed != sub.Requests/2 {
		t.Fatalf("poll %+v of a batch of %d", poll, sub.Requests)
	}
	var got AIBatchCollectResult
	run(&got, f.acts.CollectAIBatch, in)
	if got.Answered != poll.Completed || got.Failed != poll.Failed || got.Calls != poll.Completed {
		t.Fatalf("collected %+v after poll %+v", got, poll)
	}
	batchLines := f.fake.BatchLines()
	f.backfill()
	if ai, fallback := f.sources(); fallback != 0 || ai == 0 {
		t.Fatalf("after the rounds: %d ai, %d fallback", ai, fallback)
	}
	if live := f.fake.Calls() - batchLines; live != poll.Failed {
		t.Errorf("%d live calls, want one per line the batch did not answer (%d)", live, poll.Failed)
	}
}
