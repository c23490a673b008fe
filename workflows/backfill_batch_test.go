package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/store"
)

// batchScript answers the Batch API's activities for a backfillHarness:
// SubmitAIBatch hands out batch "batch_1"; PollAIBatch answers polls[n-1]
// for its n-th attempt (an error fails that attempt, which Temporal
// retries); CollectAIBatch answers collect. The workflow time of every
// call is kept.
type batchScript struct {
	polls   []any // activities.AIBatchPollResult or error
	collect activities.AIBatchCollectResult

	mu                  sync.Mutex
	submits, collects   []time.Duration
	pollTimes           []time.Duration
	pollIDs, collectIDs []string
}

func (s *batchScript) mock(h *backfillHarness) {
	a := &activities.Activities{}
	h.env.OnActivity(a.SubmitAIBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BackfillRoundInput) (activities.SubmitAIBatchResult, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.submits = append(s.submits, h.env.Now().Sub(h.start))
			return activities.SubmitAIBatchResult{BatchID: "batch_1", Requests: 3000, ListsUpTo: batchListsUpTo}, nil
		})
	h.env.OnActivity(a.PollAIBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AIBatchInput) (activities.AIBatchPollResult, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.pollTimes = append(s.pollTimes, h.env.Now().Sub(h.start))
			s.pollIDs = append(s.pollIDs, in.BatchID)
			n := len(s.pollTimes)
			if n > len(s.polls) {
				return activities.AIBatchPollResult{Status: "completed", Done: true, Total: 3000, Completed: 3000}, nil
			}
			if err, ok := s.polls[n-1].(error); ok {
				return activities.AIBatchPollResult{}, err
			}
			return s.polls[n-1].(activities.AIBatchPollResult), nil
		})
	h.env.OnActivity(a.CollectAIBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AIBatchInput) (activities.AIBatchCollectResult, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.collects = append(s.collects, h.env.Now().Sub(h.start))
			s.collectIDs = append(s.collectIDs, in.BatchID)
			return s.collect, nil
		})
}

// advised is a round that upgraded n and leaves a backlog large enough for
// the Batch API.
func advised(n, left int) activities.BackfillRoundResult {
	r := upgrading(n, left)
	r.BatchAdvised = true
	return r
}

var batchListsUpTo = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

var pending = activities.AIBatchPollResult{Status: "in_progress", Total: 3000, Completed: 1000}

func TestBackfillSendsALargeBacklogInABatchAndPollsItWithATimer(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch n {
		case 1: // the newest lists, live; the rest is a batch's worth
			return advised(512, 5488)
		case 2: // after the batch: its answers, from the cache
			return advised(512, 4976)
		case 3:
			return upgrading(4976, 0)
		case 4:
			return nothingLeft
		}
		return finished
	})
	h.in.Settings.BatchPoll = time.Minute
	s := &batchScript{
		polls: []any{
			pending,
			errors.New("HTTP 500"), errors.New("HTTP 500"), pending, // a poll retried twice by Temporal
			activities.AIBatchPollResult{Status: "completed", Done: true, Total: 3000, Completed: 2990, Failed: 10},
		},
		collect: activities.AIBatchCollectResult{AIBatchCounts: store.AIBatchCounts{Answered: 2980, Refused: 5, Failed: 10, Stale: 5},
			Calls: 2990, PromptTokens: 900_000, CompletionTokens: 90_000},
	}
	s.mock(h)
	h.env.RegisterDelayedCallback(func() {
		st := h.status()
		assert.Equal(t, BackfillAwaitingBatch, st.Phase)
		assert.Equal(t, "batch_1", st.Batch.ID)
		assert.Contains(t, st.Line, "batch batch_1 in_progress: 1000 of 3000 requests done")
	}, 90*time.Second)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())

	require.Len(t, s.submits, 1, "one batch: the round after it does not submit another while the backlog stays large")
	require.Len(t, s.pollTimes, 5, "three polls, one of them retried twice")
	assert.Equal(t, time.Minute, s.pollTimes[0]-s.submits[0], "a timer of BatchPoll before the first poll")
	assert.Equal(t, time.Minute, s.pollTimes[1]-s.pollTimes[0], "and before the next")
	assert.Less(t, s.pollTimes[3]-s.pollTimes[1], time.Minute, "a failed poll is retried by Temporal, not after another timer")
	assert.Equal(t, time.Minute, s.pollTimes[4]-s.pollTimes[3])
	assert.Equal(t, []string{"batch_1", "batch_1", "batch_1", "batch_1", "batch_1"}, s.pollIDs)
	require.Len(t, s.collects, 1)
	assert.Equal(t, s.pollTimes[4], s.collects[0], "collected as soon as a poll says done")
	rounds := h.roundTimes()
	require.GreaterOrEqual(t, len(rounds), 4)
	assert.Equal(t, s.collects[0], rounds[1], "rounds go on as soon as the batch is collected")

	st := h.status()
	assert.Equal(t, 1, st.Batches)
	assert.Equal(t, "", st.Batch.ID)
	assert.Equal(t, store.AIBatchCounts{Answered: 2980, Refused: 5, Failed: 10, Stale: 5}, st.BatchCounts)
	assert.Equal(t, 2990+256+256+2488, st.AICalls, "the batch's calls are counted with the rounds'")
}

func TestBackfillResumesPollingItsBatchAfterContinueAsNew(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		if n == 1 {
			return upgrading(512, 0)
		}
		return finished
	})
	h.in.Settings.BatchPoll = 30 * time.Second
	h.in.State = BackfillState{Runs: 1, Batch: BatchRef{ID: "batch_7", Requests: 4000, Status: "in_progress"}, BatchDisarmed: true}
	s := &batchScript{polls: []any{pending}}
	s.mock(h)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	assert.Empty(t, s.submits, "an open batch is polled, never submitted again")
	assert.Equal(t, []string{"batch_7", "batch_7"}, s.pollIDs)
	assert.Equal(t, []time.Duration{30 * time.Second, time.Minute}, s.pollTimes)
	assert.Equal(t, []string{"batch_7"}, s.collectIDs)
	assert.Equal(t, []time.Duration{time.Minute}, h.roundTimes()[:1], "the first round follows the collect")
}

func TestBackfillContinuesAsNewWhilePollingWithTheBatchInItsState(t *testing.T) {
	h := newBackfillHarness(t, func(int) activities.BackfillRoundResult { return finished })
	h.in.Settings.MaxRoundsPerRun = 3
	h.in.State = BackfillState{Batch: BatchRef{ID: "batch_9", Requests: 2500}}
	s := &batchScript{polls: []any{pending, pending, pending, pending}}
	s.mock(h)
	h.run()
	err := h.env.GetWorkflowError()
	require.Truef(t, workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can))
	var next BackfillInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	assert.Equal(t, "batch_9", next.State.Batch.ID, "the batch goes on in the next run")
	assert.Equal(t, 3, next.State.Batch.Polls)
	assert.Len(t, s.pollTimes, 3)
	assert.Empty(t, s.collects)
	assert.Empty(t, h.roundTimes())
}

// TestBackfillServesNewListsLiveWhileItsBatchRuns: a wake while the batch
// runs (a newcomer's lists committed) runs a round for the lists written
// after the batch's, at once; the polls keep their timer.
func TestBackfillServesNewListsLiveWhileItsBatchRuns(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch n {
		case 1:
			return advised(512, 5488)
		case 2: // the newcomer's lists, during the batch
			return upgrading(6, 5488)
		case 3:
			return upgrading(5488, 0)
		case 4:
			return nothingLeft
		}
		return finished
	})
	h.in.Settings.BatchPoll = time.Minute
	s := &batchScript{polls: []any{pending, pending}}
	s.mock(h)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(SignalWake, nil) }, 90*time.Second)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.GreaterOrEqual(t, len(rounds), 3)
	assert.Equal(t, 90*time.Second, rounds[1], "the wake runs a round at once, the batch still open")
	assert.Equal(t, batchListsUpTo, h.inputs[1].ListsWrittenAfter, "for the lists the batch does not hold")
	assert.True(t, h.inputs[0].ListsWrittenAfter.IsZero() && h.inputs[2].ListsWrittenAfter.IsZero(), "other rounds read every list")
	assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, s.pollTimes, "the polls keep their timer")
	require.Len(t, s.collects, 1)
	assert.Equal(t, 3*time.Minute, rounds[2], "rounds over every list resume after the collect")
	assert.Len(t, s.submits, 1)
}
