package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// TestBackfillThroughTheBatchAPIEndToEnd runs the AIBackfill workflow with
// the real activities against PostgreSQL and the fake's Batch API: after a
// live round of 512 of its 750 insights, the rest goes in one batch, the workflow polls it (the
// fake keeps it in progress for its first polls) while a newcomer's list
// is served live, collects it, and its rounds write every insight as AI,
// asking live only for the lines the batch failed.
func TestBackfillThroughTheBatchAPIEndToEnd(t *testing.T) {
	testenv.RequireIntegration(t)
	_, pool := testenv.Database(t)
	st := store.New(pool)
	fake := fakeopenai.New(t, func(call int, req fakeopenai.Request) fakeopenai.Response {
		if strings.HasPrefix(req.Path, "/v1/batches/") && call%9 == 0 {
			return fakeopenai.Error(500, "The server had an error while processing your request.")
		}
		return fakeopenai.Echo(call, req)
	})
	client, err := insight.New(insight.Config{APIKey: "sk-test", Model: "gpt-4o-mini", BaseURL: fake.URL()})
	require.NoError(t, err)
	acts := &activities.Activities{
		Store:    st,
		Insights: &activities.AIWriter{Client: client, Store: st, Model: "gpt-4o-mini", Concurrency: 4},
		TopN:     3, Lease: time.Minute, BatchSize: 1000,
		AIBatch: true, AIBatchMinBacklog: 40,
	}
	ctx := context.Background()
	ev, err := st.EnsureEvent(ctx, "batch-e2e", "Batch API test event")
	require.NoError(t, err)
	_, err = st.InsertMembers(ctx, ev.ID, demodata.Generate(23, 250))
	require.NoError(t, err)
	_, err = st.EnableEvent(ctx, ev.ID)
	require.NoError(t, err)

	// Match everyone: the lists commit with fallback insights.
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	batches := 0
	matchQueued := func() {
		for {
			aenv := suite.NewTestActivityEnvironment()
			aenv.RegisterActivity(acts)
			batches++
			token := fmt.Sprintf("e2e/%d", batches)
			var claim activities.ClaimResult
			execActivity(t, aenv, &claim, acts.ClaimBatch, activities.ClaimInput{EventID: ev.ID, Token: token, Limit: 1000})
			if claim.Claimed == 0 {
				return
			}
			ref := activities.BatchRef{EventID: ev.ID, Token: token}
			execActivity(t, aenv, nil, acts.ScoreBatch, ref)
			execActivity(t, aenv, nil, acts.WriteInsights, ref)
			execActivity(t, aenv, nil, acts.CommitBatch, ref)
		}
	}
	matchQueued()
	before, err := st.BackfillProgress(ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, before.Matches, before.Backlog, "every insight starts as the fallback")

	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(2 * time.Minute)
	env.RegisterWorkflow(AIBackfill)
	env.RegisterActivity(acts)
	// The fake's batch stays in progress until the workflow has polled it
	// three times.
	fake.SetBatchDelay(time.Hour)
	polls := 0
	newcomer := demodata.Generate(24, 1)[0]
	newcomerAI := -1 // the newcomer's AI insights before the batch is done
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "PollAIBatch" {
			if polls++; polls == 3 {
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2 AND insight_source = 'ai'`,
					ev.ID, newcomer.UserID).Scan(&newcomerAI))
				fake.SetBatchDelay(0)
			}
		}
	})
	// A newcomer arrives while the batch runs: their list commits, and the
	// commit wakes the backfill.
	env.RegisterDelayedCallback(func() {
		_, err := st.InsertMembers(ctx, ev.ID, []attendee.Profile{newcomer})
		require.NoError(t, err)
		matchQueued()
		env.SignalWorkflow(SignalWake, nil)
	}, 90*time.Second)
	// Disabling the event ends the workflow at its next round.
	env.RegisterDelayedCallback(func() {
		_, err := pool.Exec(ctx, `UPDATE events SET matchmaking_enabled = false WHERE id = $1`, ev.ID)
		require.NoError(t, err)
	}, 12*time.Hour)
	s := backfillTestSettings()
	s.BatchPoll = time.Minute
	env.ExecuteWorkflow(AIBackfill, BackfillInput{EventID: ev.ID, Settings: s})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	after, err := st.BackfillProgress(ctx, ev.ID)
	require.NoError(t, err)
	assert.Equal(t, after.Matches, after.AI, "every match ends with an AI insight: %+v", after)
	assert.Equal(t, 1, fake.Batches(), "one batch")
	assert.GreaterOrEqual(t, polls, 4, "polled until done")
	v, err := env.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	var status BackfillStatus
	require.NoError(t, v.Get(&status))
	assert.Equal(t, 3, newcomerAI, "the newcomer's list was upgraded live while the batch ran")
	assert.Equal(t, 1, status.Batches)
	assert.Positive(t, status.BatchCounts.Answered)
	assert.Positive(t, status.BatchCounts.Failed, "the lines the fake failed")
	// After the batch, the rounds asked live only for the lines it failed.
	reqs := fake.Requests()
	liveAfter := 0
	for i := len(reqs) - 1; i >= 0 && !strings.HasPrefix(reqs[i].Path, "/v1/batches/"); i-- {
		liveAfter++
	}
	assert.Equal(t, status.BatchCounts.Failed, liveAfter, "live calls after the batch")
	assert.Equal(t, fake.BatchLines(), status.BatchCounts.Answered+status.BatchCounts.Failed)
}

func execActivity(t *testing.T, env *testsuite.TestActivityEnvironment, out any, fn any, arg any) {
	t.Helper()
	v, err := env.ExecuteActivity(fn, arg)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, v.Get(out))
	}
}
