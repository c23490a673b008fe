package workflows

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/store"
)

// backfillHarness runs AIBackfill against a scripted BackfillRound: round
// n (1-based) answers answer(n), and the workflow time of every round is
// kept.
type backfillHarness struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	in     BackfillInput
	answer func(n int) activities.BackfillRoundResult

	mu     sync.Mutex
	rounds []time.Duration // since the start, on the workflow clock
	inputs []activities.BackfillRoundInput
	start  time.Time
}

func backfillTestSettings() BackfillSettings {
	return BackfillSettings{
		RoundTimeout:    time.Minute,
		IdlePoll:        time.Hour,
		PausePoll:       15 * time.Second,
		BackoffBase:     5 * time.Second,
		BackoffCeiling:  time.Minute,
		MaxRoundsPerRun: 100,
	}
}

func newBackfillHarness(t *testing.T, answer func(n int) activities.BackfillRoundResult) *backfillHarness {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	env.RegisterWorkflow(AIBackfill)
	env.RegisterActivity(&activities.Activities{})
	return &backfillHarness{t: t, env: env, answer: answer,
		in: BackfillInput{EventID: testEventID, Settings: backfillTestSettings()}}
}

func (h *backfillHarness) run() {
	a := &activities.Activities{}
	h.start = h.env.Now()
	h.env.OnActivity(a.BackfillRound, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BackfillRoundInput) (activities.BackfillRoundResult, error) {
			if in.EventID != testEventID {
				return activities.BackfillRoundResult{}, errors.New("wrong event")
			}
			h.mu.Lock()
			h.rounds = append(h.rounds, h.env.Now().Sub(h.start))
			h.inputs = append(h.inputs, in)
			n := len(h.rounds)
			h.mu.Unlock()
			return h.answer(n), nil
		})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, safetyHorizon)
	h.env.ExecuteWorkflow(AIBackfill, h.in)
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

func (h *backfillHarness) status() BackfillStatus {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryStatus)
	require.NoError(h.t, err)
	var st BackfillStatus
	require.NoError(h.t, v.Get(&st))
	return st
}

func (h *backfillHarness) roundTimes() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.rounds...)
}

// upgrading is a round that upgraded n of a backlog that leaves left.
func upgrading(n, left int) activities.BackfillRoundResult {
	return activities.BackfillRoundResult{Selected: n, BackfillCounts: activities.BackfillCounts{Upgraded: n, AICalls: n / 2},
		Progress: activities.BackfillProgress{Matches: 1000, AI: 1000 - left, Backlog: left, Calls: n / 2}}
}

var (
	nothingLeft = activities.BackfillRoundResult{Progress: activities.BackfillProgress{Matches: 1000, AI: 1000}}
	finished    = activities.BackfillRoundResult{Finished: true}
)

func TestBackfillRunsRoundsUntilNothingIsLeftThenWaitsForAWake(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch n {
		case 1:
			return upgrading(500, 500)
		case 2:
			return upgrading(500, 0)
		case 3:
			return nothingLeft
		case 4: // after the wake: a newcomer's lists
			return upgrading(6, 0)
		case 5:
			return nothingLeft
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		assert.Len(t, h.roundTimes(), 3, "rounds before the wake: two that upgraded, one that found nothing")
		st := h.status()
		assert.Equal(t, BackfillIdle, st.Phase)
		assert.Equal(t, 1000, st.Upgraded)
		assert.Equal(t, "100% AI (1000 of 1000 matches), backlog 0, 0 calls, 0 prompt + 0 completion tokens", st.Line)
		h.env.SignalWorkflow(SignalWake, nil)
	}, 10*time.Minute)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.Len(t, rounds, 6, "a round after the wake, one finding nothing, then the idle poll's round that finds the event disabled")
	assert.Equal(t, time.Duration(0), rounds[1], "a round that upgraded is followed at once")
	assert.Equal(t, 10*time.Minute, rounds[3], "the wake starts a round at once")
	assert.Equal(t, 10*time.Minute+time.Hour, rounds[5], "with nothing left, the next look is an idle poll later")
	st := h.status()
	assert.Equal(t, BackfillFinished, st.Phase)
	assert.Equal(t, 1006, st.Upgraded)
}

func TestBackfillStopsAtTheBudgetWithAStatusLine(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch n {
		case 1:
			r := upgrading(200, 800)
			r.Budget = 100
			return r
		case 2:
			return activities.BackfillRoundResult{BudgetSpent: true, Budget: 100,
				Progress: activities.BackfillProgress{Matches: 1000, AI: 200, Backlog: 800, Calls: 100}}
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		st := h.status()
		assert.Equal(t, BackfillBudgetSpent, st.Phase)
		assert.Equal(t, "AI budget of 100 calls spent; 800 matches keep the fallback", st.Line)
	}, time.Minute)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.Len(t, rounds, 3)
	assert.Equal(t, time.Hour, rounds[2], "a spent budget is looked at again only after an idle poll")
}

func TestBackfillBacksOffWhileTheEndpointIsDown(t *testing.T) {
	const down = 7
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch {
		case n <= down:
			return activities.BackfillRoundResult{Selected: 512, BackfillCounts: activities.BackfillCounts{AICalls: 1},
				EndpointDown: true, FailureReason: "server_error",
				Progress: activities.BackfillProgress{Matches: 1000, Backlog: 1000, Calls: n}}
		case n == down+1:
			return upgrading(512, 488)
		case n == down+2:
			return nothingLeft
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		st := h.status()
		assert.Equal(t, BackfillBackingOff, st.Phase)
		assert.Equal(t, "model calls failed (server_error)", st.LastError)
	}, 10*time.Second)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.GreaterOrEqual(t, len(rounds), down+2)
	var gaps []time.Duration
	for i := 1; i <= down; i++ {
		gaps = append(gaps, rounds[i]-rounds[i-1])
	}
	assert.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		time.Minute, time.Minute, time.Minute}, gaps, "exponential backoff up to the ceiling")
	assert.Equal(t, time.Duration(0), rounds[down+1]-rounds[down], "once calls succeed, rounds follow at once")
	st := h.status()
	assert.Equal(t, down, st.Backoffs)
	assert.Equal(t, 0, st.FailuresInARow)
}

func TestBackfillPausesWithTheEvent(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch {
		case n == 1:
			return upgrading(100, 900)
		case n <= 4:
			return activities.BackfillRoundResult{Paused: true,
				Progress: activities.BackfillProgress{Matches: 1000, AI: 100, Backlog: 900}}
		case n == 5:
			return upgrading(900, 0)
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		assert.Equal(t, BackfillPaused, h.status().Phase)
	}, 20*time.Second)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.Len(t, rounds, 6)
	for i := 2; i <= 4; i++ {
		assert.Equal(t, 15*time.Second, rounds[i]-rounds[i-1], "a paused event is looked at every PausePoll, no more")
	}
	assert.Equal(t, time.Duration(0), rounds[5]-rounds[4], "the round after the resume finds the event disabled")
}

func TestBackfillContinuesAsNewWithItsCounters(t *testing.T) {
	h := newBackfillHarness(t, func(int) activities.BackfillRoundResult { return upgrading(10, 500) })
	h.in.Settings.MaxRoundsPerRun = 3
	h.in.State = BackfillState{Runs: 2, BackfillCounts: activities.BackfillCounts{Upgraded: 70}, Backoffs: 1}
	h.run()
	err := h.env.GetWorkflowError()
	require.Truef(t, workflow.IsContinueAsNewError(err), "want continue-as-new, got %v", err)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can))
	require.Equal(t, "AIBackfill", can.WorkflowType.Name)
	var next BackfillInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	assert.Equal(t, testEventID, next.EventID)
	assert.Equal(t, 3, next.Settings.MaxRoundsPerRun)
	assert.Equal(t, 3, next.State.Runs)
	assert.Equal(t, 3, next.State.Rounds)
	assert.Equal(t, 100, next.State.Upgraded)
	assert.Equal(t, 1, next.State.Backoffs)
	assert.Equal(t, 500, next.State.Progress.Backlog)
}

func TestBackfillDelays(t *testing.T) {
	s := BackfillSettings{BackoffBase: 5 * time.Second, BackoffCeiling: 30 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoffDelay(s, n))
	}
	assert.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second,
		30 * time.Second, 30 * time.Second}, got)
	assert.Equal(t, defaultBackfillSettings, NewBackfillSettings(0, 0))
}

// TestBackfillStatusShowsRejectionsByRule: the status query carries the
// event's rejected answers by rule, as the last round read them from the
// database, and its line says them.
func TestBackfillStatusShowsRejectionsByRule(t *testing.T) {
	rejections := []store.RuleCount{{Rule: "json", Answers: 2}, {Rule: "length", Answers: 1}, {Rule: "name", Answers: 3}}
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		if n == 1 {
			r := upgrading(100, 0)
			r.Refused = 6
			r.Progress.Rejections = rejections
			return r
		}
		if n == 2 {
			return activities.BackfillRoundResult{Progress: activities.BackfillProgress{Matches: 1000, AI: 1000, Rejections: rejections}}
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		st := h.status()
		assert.Equal(t, rejections, st.Progress.Rejections)
		assert.Contains(t, st.Line, ", 6 answers rejected (json 2, length 1, name 3)")
	}, time.Minute)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
}

func TestBackfillStopsAtTheSpendLimitWithAStatusLine(t *testing.T) {
	h := newBackfillHarness(t, func(n int) activities.BackfillRoundResult {
		switch n {
		case 1:
			r := upgrading(200, 800)
			r.SpendLimitUSD, r.SpentUSD = 5, 4.2
			return r
		case 2:
			return activities.BackfillRoundResult{BudgetSpent: true, SpendLimitReached: true, SpendLimitUSD: 5, SpentUSD: 4.99,
				Progress: activities.BackfillProgress{Matches: 1000, AI: 200, Backlog: 800, Calls: 100}}
		}
		return finished
	})
	h.env.RegisterDelayedCallback(func() {
		st := h.status()
		assert.Equal(t, BackfillBudgetSpent, st.Phase)
		assert.Equal(t, "stopped: spend limit $5.00 reached ($4.99 spent); 800 matches keep the fallback", st.Line)
	}, time.Minute)
	h.run()
	require.NoError(t, h.env.GetWorkflowError())
	rounds := h.roundTimes()
	require.Len(t, rounds, 3)
	assert.Equal(t, time.Hour, rounds[2], "a reached spend limit is looked at again only after an idle poll")
}
