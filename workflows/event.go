// Package workflows holds the per-event matchmaking workflow. It only
// orchestrates: claiming, scoring, insights and persistence happen in
// activities, and the workflow carries IDs and counters, never profiles.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
)

// maxStaleRetries bounds how often one batch is re-scored because the event
// changed under it in a way the commit cannot work around (member
// departures it can) before the batch is given back to the queue.
const maxStaleRetries = 5

// maxQuarantineRounds bounds how often one batch is re-scored after its
// commit quarantined members.
const maxQuarantineRounds = 10

// EventMatchmaking is the workflow of one event: it claims batches from the
// event's queue and matches them until the queue is empty, then sleeps until
// woken, forever; pause and resume gate the claiming, disable ends it.
func EventMatchmaking(ctx workflow.Context, in Input) error {
	if in.EventID == "" {
		return temporal.NewNonRetryableApplicationError("event id is required", "BadInput", nil)
	}
	r := &run{
		eventID: in.EventID,
		s:       withDefaults(in.Settings),
		state:   in.State,
		phase:   PhaseStarting,
		logger:  workflow.GetLogger(ctx),
	}
	r.state.Runs++
	if r.state.WakePending {
		r.wakes, r.state.WakePending = 1, false
	}
	if err := r.registerHandlers(ctx); err != nil {
		return err
	}

	// Runs started before local steps existed keep regular activities to
	// the end; their continuations take the new version.
	r.localSteps = workflow.GetVersion(ctx, localStepsChange, workflow.DefaultVersion, localStepsVersion) >= localStepsVersion
	r.fanOut = workflow.GetVersion(ctx, fanOutChange, workflow.DefaultVersion, fanOutVersion) >= fanOutVersion

	var a *activities.Activities
	var event activities.EventInfo
	err := workflow.ExecuteActivity(r.quickOptions(ctx, "look up the event"), a.DescribeEvent, in.EventID).Get(ctx, &event)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeEventNotFound {
		r.logger.Info("event no longer exists; finishing")
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up event %s: %w", in.EventID, err)
	}
	r.code, r.name = event.Code, event.Name
	// The worker owns the batch settings; whoever started the workflow
	// does not (their values stay only where a worker reports none).
	if event.BatchSize > 0 {
		r.s.BatchSize = event.BatchSize
	}
	if event.MaxRuntime > 0 {
		r.s.MaxRuntime = event.MaxRuntime
	}
	if !event.Enabled {
		r.disabled = true
	}
	r.phase = PhaseIdle
	r.publish(ctx)

	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	batchesThisRun := 0
	for {
		r.applySignals()
		if r.disabled {
			return r.finish(ctx)
		}
		// Continue as new before waiting out a pause: State carries Paused,
		// and a paused run should not keep a full history.
		if batchesThisRun >= r.s.MaxBatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			r.state.WakePending = r.wakes > 0
			r.logger.Info("continuing as new", "batches", batchesThisRun)
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			return workflow.NewContinueAsNewError(ctx, EventMatchmaking, Input{EventID: in.EventID, Settings: r.s, State: r.state})
		}
		if r.state.Paused {
			r.publish(ctx)
			// Wake signals keep arriving while paused (the listener's safety
			// poll sees the queued rows), so the wait also ends when history
			// should be cut; the loop then continues as new, still paused.
			if err := workflow.Await(ctx, func() bool {
				return !r.state.Paused || r.disabled || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
			}); err != nil {
				return err
			}
			continue
		}

		wakesBefore := r.wakes
		batchesThisRun++
		token := fmt.Sprintf("%s/%d", runID, batchesThisRun)
		claimed, err := r.runBatch(ctx, token, batchesThisRun)
		if err != nil {
			r.state.Errors++
			var failure *batchFailure
			if errors.As(err, &failure) {
				r.state.LastError = failure.describe(batchesThisRun, r.s.FailureBackoff)
			} else {
				r.state.LastError = fmt.Sprintf("batch %d: %s; next try in %s", batchesThisRun, plainError(err), r.s.FailureBackoff)
			}
			r.logger.Error("batch failed", "batch", token, "error", r.state.LastError)
			r.logger.Debug("batch failure in full", "batch", token, "error", err)
			r.phase = PhaseBackingOff
			r.publish(ctx)
			if err := workflow.Sleep(ctx, r.s.FailureBackoff); err != nil {
				return err
			}
			r.phase = PhaseIdle
			continue
		}
		if claimed > 0 {
			r.publish(ctx)
			continue
		}

		r.phase = PhaseIdle
		r.publish(ctx)
		if _, err := workflow.AwaitWithTimeout(ctx, r.s.IdlePoll, func() bool {
			return r.wakes != wakesBefore || r.state.Paused || r.disabled
		}); err != nil {
			return err
		}
	}
}

// run is one run's mutable state, shared by the loop, the signal and update
// handlers and the status query.
type run struct {
	eventID    string
	code, name string
	s          Settings
	state      State
	phase      Phase
	wakes      int
	disabled   bool
	logger     log.Logger
	// localSteps: this run runs short steps as local activities.
	localSteps bool
	// fanOut: this run scores large batches in shards.
	fanOut bool

	pauseCh, resumeCh, wakeCh, disableCh workflow.ReceiveChannel
	// published is what the search attributes last said, to upsert only
	// on change.
	published struct {
		set          bool
		paused       bool
		usersMatched int
		queueDepth   int
	}
}

// runBatch claims one batch and carries it to commit. It returns how many
// members it claimed; zero means the queue is empty.
func (r *run) runBatch(ctx workflow.Context, token string, n int) (int, error) {
	var a *activities.Activities
	ref := activities.BatchRef{EventID: r.eventID, Token: token}

	r.phase = PhaseClaiming
	var claim activities.ClaimResult
	if err := r.quickStep(ctx, fmt.Sprintf("claim batch %d (up to %d members)", n, r.s.BatchSize),
		a.ClaimBatch, r.claimInput(token)).Get(ctx, &claim); err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	if claim.Claimed == 0 {
		return 0, nil
	}
	if claim.Finished {
		// Its commit (or release) is in the database, not in this history;
		// the counters miss it, the lists do not.
		r.logger.Info("batch finished by an earlier attempt of this run; going on", "batch", token)
		return claim.Claimed, nil
	}

	// Quarantine rounds are bounded by the batch's members; the bound only
	// stops a database that blames a new member on every try.
	staleAttempts, quarantineRounds := 0, 0
	for {
		r.phase = PhaseScoring
		ref.Shards = 0
		if r.fanOut && claim.Claimed >= fanOutMinBatch && claim.ShardWorkers > 1 {
			ref.Shards = min(maxShards, (claim.Claimed+shardMembers-1)/shardMembers)
			if err := r.scoreShards(ctx, ref, n); err != nil {
				return claim.Claimed, r.giveUp(ctx, token, err)
			}
		}
		var scored activities.ScoreResult
		err := r.batchStep(ctx, claim.Claimed, fmt.Sprintf("score batch %d: %d members against the event", n, claim.Claimed),
			a.ScoreBatch, ref).Get(ctx, &scored)
		if err == nil {
			r.phase = PhaseInsights
			var insights activities.InsightResult
			err = r.batchStep(ctx, claim.Claimed, fmt.Sprintf("insights for batch %d: %d lists", n, scored.ListsChanged),
				a.WriteInsights, ref).Get(ctx, &insights)
			r.state.Insights.add(insights)
		}
		var commit activities.CommitResult
		if err == nil {
			r.phase = PhaseCommitting
			err = r.quickStep(ctx, fmt.Sprintf("commit batch %d", n), a.CommitBatch, ref).Get(ctx, &commit)
		}
		if err != nil {
			return claim.Claimed, r.giveUp(ctx, token, err)
		}
		if commit.Quarantined > 0 {
			r.state.Quarantined = commit.QuarantinedTotal
			r.logger.Warn("members quarantined; scoring the batch again without them",
				"batch", token, "quarantined", commit.Quarantined)
			quarantineRounds++
			if quarantineRounds > maxQuarantineRounds {
				return claim.Claimed, r.giveUp(ctx, token, errors.New("the database kept refusing rows after quarantining members"))
			}
			continue
		}
		if commit.Stale {
			r.state.StaleRetries++
			staleAttempts++
			if staleAttempts >= maxStaleRetries {
				return claim.Claimed, r.giveUp(ctx, token,
					errors.New("the event's lists kept being rewritten by another commit while the batch was scored"))
			}
			continue
		}
		if commit.Released {
			// A stopping worker gave the batch back; the next claim takes
			// its members. Not a batch done, and not an error.
			r.logger.Info("batch released by a stopping worker; its members are back in the queue", "batch", token)
			r.state.QueueDepth = commit.QueueDepth
			return claim.Claimed, nil
		}
		r.state.Batches++
		r.state.UsersMatched += commit.UsersCommitted
		r.state.Requeued += commit.UsersRequeued
		r.state.ListsDeferred += commit.ListsDeferred
		r.state.Quarantined = commit.QuarantinedTotal
		r.state.QueueDepth = commit.QueueDepth
		r.state.LastBatchAt = workflow.Now(ctx)
		return claim.Claimed, nil
	}
}

// batchFailure is a batch the workflow gave up on.
type batchFailure struct {
	token string
	cause error
	// released says whether its rows went back to the queue at once;
	// otherwise they come back when the lease runs out.
	released   bool
	releaseErr error
}

func (f *batchFailure) Error() string {
	msg := fmt.Sprintf("batch %s: %v", f.token, f.cause)
	if f.releaseErr != nil {
		msg += fmt.Sprintf(" (and releasing it failed: %v)", f.releaseErr)
	}
	return msg
}

func (f *batchFailure) Unwrap() error { return f.cause }

// describe says what happened and what happens next, in the engine's words.
func (f *batchFailure) describe(n int, backoff time.Duration) string {
	msg := fmt.Sprintf("batch %d: %s; ", n, plainError(f.cause))
	switch {
	case f.released:
		msg += "its members went back to the queue"
	case f.releaseErr != nil:
		msg += fmt.Sprintf("releasing it failed too (%s), so its members come back when their lease ends", plainError(f.releaseErr))
	default:
		msg += "another claim has its members"
	}
	return msg + fmt.Sprintf(", next try in %s", backoff)
}

// giveUp releases the batch's rows so they are claimed again later, unless
// the batch's lease already went to another claim.
func (r *run) giveUp(ctx workflow.Context, token string, cause error) error {
	var appErr *temporal.ApplicationError
	if errors.As(cause, &appErr) && appErr.Type() == activities.ErrTypeLeaseLost {
		return &batchFailure{token: token, cause: cause}
	}
	var a *activities.Activities
	if err := workflow.ExecuteActivity(r.quickOptions(ctx, "release batch after failure"), a.ReleaseBatch, activities.ReleaseInput{
		Token: token, Reason: plainError(cause),
	}).Get(ctx, nil); err != nil {
		return &batchFailure{token: token, cause: cause, releaseErr: err}
	}
	return &batchFailure{token: token, cause: cause, released: true}
}

// plainError says what failed in the engine's words: the step's own message
// without Temporal's wrapping ("activity error (type: CommitBatch,
// scheduledEventID: 35, …)"), which the workflow logs at debug.
func plainError(err error) string {
	var (
		activityErr *temporal.ActivityError
		appErr      *temporal.ApplicationError
		timeoutErr  *temporal.TimeoutError
		canceledErr *temporal.CanceledError
	)
	step := ""
	if errors.As(err, &activityErr) {
		step = stepNames[activityErr.ActivityType().GetName()]
	}
	var what string
	switch {
	case errors.As(err, &appErr):
		what = appErr.Message()
	case errors.As(err, &timeoutErr):
		what = fmt.Sprintf("timed out (%s)", strings.ToLower(strings.TrimPrefix(timeoutErr.TimeoutType().String(), "TIMEOUT_TYPE_")))
	case errors.As(err, &canceledErr):
		what = "was cancelled"
	default:
		what = err.Error()
	}
	if step == "" {
		return what
	}
	return step + ": " + what
}

// stepNames are the activities as operators know them.
var stepNames = map[string]string{
	"DescribeEvent": "looking up the event",
	"ClaimBatch":    "claiming",
	"ScoreBatch":    "scoring",
	"WriteInsights": "writing insights",
	"CommitBatch":   "committing",
	"ReleaseBatch":  "releasing",
	"BackfillRound": "upgrading insights to AI",
}
