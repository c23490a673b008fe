// Package workflows holds the per-event matchmaking workflow. It only
// orchestrates: claiming, scoring, insights and persistence happen in
// activities, and the workflow carries IDs and counters, never profiles.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
)

// Signal and query names. Operators use the signals from the CLI:
//
//	temporal workflow signal --workflow-id matchmaking-<event uuid> --name pause
const (
	SignalPause  = "pause"
	SignalResume = "resume"
	// SignalWake tells an idle workflow that its queue has new rows.
	SignalWake  = "wake"
	QueryStatus = "status"
)

// WorkflowIDPrefix + event UUID is the one workflow ID of an event.
const WorkflowIDPrefix = "matchmaking-"

// WorkflowID returns the workflow ID of an event.
func WorkflowID(eventID string) string { return WorkflowIDPrefix + eventID }

// Settings shape the loop. They travel in the input so a run and its
// continuations behave the same and the history shows what was used.
type Settings struct {
	BatchSize  int
	MaxRuntime time.Duration
	// IdlePoll bounds how long an idle workflow sleeps without a wake
	// signal before it looks at its queue again.
	IdlePoll time.Duration
	// MaxBatchesPerRun bounds a run's history; the workflow continues as
	// new after that many batches even if Temporal does not suggest it.
	MaxBatchesPerRun int
	// FailureBackoff is the pause after a batch that failed for good.
	FailureBackoff time.Duration
}

// State is what survives continue-as-new.
type State struct {
	Paused bool
	// WakePending carries a wake signal across continue-as-new.
	WakePending  bool
	Batches      int
	UsersMatched int
	Requeued     int
	StaleRetries int
	Errors       int
	LastError    string
	LastBatchAt  time.Time
	Runs         int
	Insights     InsightTotals
}

// InsightTotals sums the insight step over the workflow's life.
type InsightTotals struct {
	AI               int
	Fallback         int
	FallbackReasons  []activities.ReasonCount
	AICalls          int
	CacheHits        int
	PromptTokens     int
	CompletionTokens int
	AILatencyMS      int64
}

func (t *InsightTotals) add(r activities.InsightResult) {
	t.AI += r.AI
	t.Fallback += r.Fallback
	for _, rc := range r.FallbackReasons {
		t.FallbackReasons = activities.AddReasonCount(t.FallbackReasons, rc.Reason, rc.Count)
	}
	t.AICalls += r.AICalls
	t.CacheHits += r.CacheHits
	t.PromptTokens += r.PromptTokens
	t.CompletionTokens += r.CompletionTokens
	t.AILatencyMS += r.AILatencyMS
}

// Input starts or continues an event's workflow.
type Input struct {
	EventID  string
	Settings Settings
	State    State
}

// Status answers the status query.
type Status struct {
	EventID string
	State
	Phase string // "idle", "paused", "claiming", "scoring", "insights", "committing", "backing off"
}

// maxStaleRetries bounds how often one batch is re-scored because the event
// changed under it before the batch is given back to the queue.
const maxStaleRetries = 5

// EventMatchmaking is the workflow of one event: it claims batches from the
// event's queue and matches them until the queue is empty, then sleeps until
// woken, forever; pause and resume signals gate the claiming.
func EventMatchmaking(ctx workflow.Context, in Input) error {
	if in.EventID == "" {
		return temporal.NewNonRetryableApplicationError("event id is required", "BadInput", nil)
	}
	s := withDefaults(in.Settings)
	state := in.State
	state.Runs++
	phase := "idle"
	wakes := 0
	if state.WakePending {
		wakes, state.WakePending = 1, false
	}

	pauseCh := workflow.GetSignalChannel(ctx, SignalPause)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResume)
	wakeCh := workflow.GetSignalChannel(ctx, SignalWake)
	applySignals := func() {
		for pauseCh.ReceiveAsync(nil) {
			state.Paused = true
		}
		for resumeCh.ReceiveAsync(nil) {
			state.Paused = false
		}
		for wakeCh.ReceiveAsync(nil) {
			wakes++
		}
	}
	// This goroutine applies signals while the loop is blocked. It waits on
	// Len, not Receive: a blocked Receive/Select takes a signal out of the
	// channel at delivery but applies it only when the goroutine runs, which
	// is after the loop when the signal comes in the same workflow task as
	// an activity result. The loop would then claim while paused, or
	// continue as new and drop the signal. Left in the channel, the loop's
	// own applySignals sees it.
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool {
				return pauseCh.Len() > 0 || resumeCh.Len() > 0 || wakeCh.Len() > 0
			}); err != nil {
				return
			}
			applySignals()
		}
	})

	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) {
		p := phase
		if state.Paused {
			p = "paused"
		}
		return Status{EventID: in.EventID, State: state, Phase: p}, nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}

	logger := workflow.GetLogger(ctx)
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	batchesThisRun := 0
	for {
		applySignals()
		// Continue as new before waiting out a pause: State carries Paused,
		// and a paused run should not keep a full history.
		if batchesThisRun >= s.MaxBatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			state.WakePending = wakes > 0
			logger.Info("continuing as new", "batches", batchesThisRun)
			return workflow.NewContinueAsNewError(ctx, EventMatchmaking, Input{EventID: in.EventID, Settings: s, State: state})
		}
		if state.Paused {
			// Wake signals keep arriving while paused (the listener's safety
			// poll sees the queued rows), so the wait also ends when history
			// should be cut; the loop then continues as new, still paused.
			if err := workflow.Await(ctx, func() bool {
				return !state.Paused || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
			}); err != nil {
				return err
			}
			continue
		}

		wakesBefore := wakes
		token := fmt.Sprintf("%s/%d", runID, batchesThisRun+1)
		batchesThisRun++
		claimed, err := runBatch(ctx, in.EventID, token, s, &state, &phase)
		if err != nil {
			state.Errors++
			state.LastError = err.Error()
			logger.Error("batch failed", "batch", token, "error", err)
			phase = "backing off"
			if err := workflow.Sleep(ctx, s.FailureBackoff); err != nil {
				return err
			}
			phase = "idle"
			continue
		}
		if claimed > 0 {
			continue
		}

		phase = "idle"
		if _, err := workflow.AwaitWithTimeout(ctx, s.IdlePoll, func() bool {
			return wakes != wakesBefore || state.Paused
		}); err != nil {
			return err
		}
	}
}

// runBatch claims one batch and carries it to commit. It returns how many
// members it claimed; zero means the queue is empty.
func runBatch(ctx workflow.Context, eventID, token string, s Settings, state *State, phase *string) (int, error) {
	var a *activities.Activities
	quick := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: minDuration(s.MaxRuntime, 30*time.Second),
		RetryPolicy:         retryPolicy(),
	})
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: s.MaxRuntime,
		RetryPolicy:         retryPolicy(),
	})
	ref := activities.BatchRef{EventID: eventID, Token: token}

	*phase = "claiming"
	var claim activities.ClaimResult
	if err := workflow.ExecuteActivity(quick, a.ClaimBatch, activities.ClaimInput{
		EventID: eventID, Token: token, Limit: s.BatchSize,
	}).Get(ctx, &claim); err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	if claim.Claimed == 0 {
		return 0, nil
	}

	for attempt := 0; ; attempt++ {
		*phase = "scoring"
		var scored activities.ScoreResult
		err := workflow.ExecuteActivity(long, a.ScoreBatch, ref).Get(ctx, &scored)
		if err == nil {
			*phase = "insights"
			var insights activities.InsightResult
			err = workflow.ExecuteActivity(long, a.WriteInsights, ref).Get(ctx, &insights)
			state.Insights.add(insights)
		}
		var commit activities.CommitResult
		if err == nil {
			*phase = "committing"
			err = workflow.ExecuteActivity(quick, a.CommitBatch, ref).Get(ctx, &commit)
		}
		if err != nil {
			return claim.Claimed, giveUp(ctx, quick, token, err)
		}
		if commit.Stale {
			state.StaleRetries++
			if attempt+1 >= maxStaleRetries {
				return claim.Claimed, giveUp(ctx, quick, token, errors.New("event kept changing while the batch was scored"))
			}
			continue
		}
		state.Batches++
		state.UsersMatched += commit.UsersCommitted
		state.Requeued += commit.UsersRequeued
		state.LastBatchAt = workflow.Now(ctx)
		return claim.Claimed, nil
	}
}

// giveUp releases the batch's rows so they are claimed again later, unless
// the batch's lease already went to another claim.
func giveUp(ctx, quick workflow.Context, token string, cause error) error {
	var appErr *temporal.ApplicationError
	if errors.As(cause, &appErr) && appErr.Type() == activities.ErrTypeLeaseLost {
		return fmt.Errorf("batch %s: %w", token, cause)
	}
	var a *activities.Activities
	if err := workflow.ExecuteActivity(quick, a.ReleaseBatch, activities.ReleaseInput{
		Token: token, Reason: cause.Error(),
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("batch %s: %w (and releasing it failed: %v)", token, cause, err)
	}
	return fmt.Errorf("batch %s: %w", token, cause)
}

func retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    500 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    8,
		NonRetryableErrorTypes: []string{
			activities.ErrTypeLeaseLost,
			activities.ErrTypeBatchNotFound,
			"BadInput",
		},
	}
}

func withDefaults(s Settings) Settings {
	if s.BatchSize <= 0 {
		s.BatchSize = 250
	}
	if s.MaxRuntime <= 0 {
		s.MaxRuntime = 45 * time.Second
	}
	if s.IdlePoll <= 0 {
		s.IdlePoll = 5 * time.Minute
	}
	if s.MaxBatchesPerRun <= 0 {
		s.MaxBatchesPerRun = 200
	}
	if s.FailureBackoff <= 0 {
		s.FailureBackoff = 10 * time.Second
	}
	return s
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
