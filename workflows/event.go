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

// Signal and query names. Operators use the signals from the CLI:
//
//	temporal workflow signal --workflow-id matchmaking-<event uuid> --name pause
const (
	SignalPause  = "pause"
	SignalResume = "resume"
	// SignalWake tells an idle workflow that its queue has new rows.
	SignalWake = "wake"
	// SignalDisable ends the workflow after its current batch; the starter's
	// disable command sends it as an update of the same name.
	SignalDisable = "disable"
	QueryStatus   = "status"
)

// Search attributes the workflow keeps current, so operators can filter in
// the Web UI and `temporal workflow list --query "MatchmakingEventCode='x'"`.
var (
	AttrEventCode    = temporal.NewSearchAttributeKeyKeyword("MatchmakingEventCode")
	AttrPaused       = temporal.NewSearchAttributeKeyBool("MatchmakingPaused")
	AttrUsersMatched = temporal.NewSearchAttributeKeyInt64("MatchmakingUsersMatched")
	AttrQueueDepth   = temporal.NewSearchAttributeKeyInt64("MatchmakingQueueDepth")
)

// SearchAttributes lists the custom search attributes, for registration.
var SearchAttributes = []temporal.SearchAttributeKey{AttrEventCode, AttrPaused, AttrUsersMatched, AttrQueueDepth}

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
	// ListsDeferred counts lists set aside at commit because they named a
	// member who left meanwhile (their owners went round again).
	ListsDeferred int
	// Quarantined is how many of the event's members are in quarantine,
	// as of the last commit.
	Quarantined int
	LastBatchAt time.Time
	Runs        int
	Insights    InsightTotals
	// QueueDepth is the queue size after the last commit.
	QueueDepth int
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

// Status answers the status query and the pause, resume and disable updates.
type Status struct {
	EventID   string
	EventCode string
	EventName string
	State
	// Phase is "starting", "idle", "paused", "claiming", "scoring",
	// "insights", "committing", "backing off" or "disabled".
	Phase string
}

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
		phase:   "starting",
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
	r.phase = "idle"
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
			r.phase = "backing off"
			r.publish(ctx)
			if err := workflow.Sleep(ctx, r.s.FailureBackoff); err != nil {
				return err
			}
			r.phase = "idle"
			continue
		}
		if claimed > 0 {
			r.publish(ctx)
			continue
		}

		r.phase = "idle"
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
	phase      string
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

func (r *run) status() Status {
	st := Status{EventID: r.eventID, EventCode: r.code, EventName: r.name, State: r.state, Phase: r.phase}
	switch {
	case r.disabled:
		st.Phase = "disabled"
	case r.state.Paused:
		st.Phase = "paused"
	}
	return st
}

func (r *run) applySignals() {
	for r.pauseCh.ReceiveAsync(nil) {
		r.state.Paused = true
	}
	for r.resumeCh.ReceiveAsync(nil) {
		r.state.Paused = false
	}
	for r.wakeCh.ReceiveAsync(nil) {
		r.wakes++
	}
	for r.disableCh.ReceiveAsync(nil) {
		r.disabled = true
	}
}

func (r *run) registerHandlers(ctx workflow.Context) error {
	r.pauseCh = workflow.GetSignalChannel(ctx, SignalPause)
	r.resumeCh = workflow.GetSignalChannel(ctx, SignalResume)
	r.wakeCh = workflow.GetSignalChannel(ctx, SignalWake)
	r.disableCh = workflow.GetSignalChannel(ctx, SignalDisable)
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
				return r.pauseCh.Len() > 0 || r.resumeCh.Len() > 0 || r.wakeCh.Len() > 0 || r.disableCh.Len() > 0
			}); err != nil {
				return
			}
			r.applySignals()
		}
	})

	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) {
		return r.status(), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	// The updates return once the workflow has taken the change, with the
	// resulting status, so `starter pause` can print the new state.
	updates := []struct {
		name  string
		apply func()
	}{
		{SignalPause, func() { r.state.Paused = true }},
		{SignalResume, func() { r.state.Paused = false }},
		{SignalDisable, func() { r.disabled = true }},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandler(ctx, u.name, func(ctx workflow.Context) (Status, error) {
			r.applySignals()
			u.apply()
			r.publish(ctx)
			return r.status(), nil
		}); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

// finish ends the run of a disabled event cleanly.
func (r *run) finish(ctx workflow.Context) error {
	r.publish(ctx)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	r.logger.Info("matchmaking disabled for the event; workflow finished")
	return nil
}

// publish shows the run's state in the Web UI: search attributes for
// filtering, and the current details in Markdown.
func (r *run) publish(ctx workflow.Context) {
	st := r.status()
	p := &r.published
	if !p.set || p.paused != r.state.Paused || p.usersMatched != r.state.UsersMatched || p.queueDepth != r.state.QueueDepth {
		updates := []temporal.SearchAttributeUpdate{
			AttrPaused.ValueSet(r.state.Paused),
			AttrUsersMatched.ValueSet(int64(r.state.UsersMatched)),
			AttrQueueDepth.ValueSet(int64(r.state.QueueDepth)),
		}
		if r.code != "" {
			updates = append(updates, AttrEventCode.ValueSet(r.code))
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			r.logger.Warn("could not update search attributes", "error", err)
		} else {
			p.set, p.paused, p.usersMatched, p.queueDepth = true, r.state.Paused, r.state.UsersMatched, r.state.QueueDepth
		}
	}
	workflow.SetCurrentDetails(ctx, currentDetails(st))
}

func currentDetails(st Status) string {
	var b strings.Builder
	// The state line comes first: the Web UI shows only the top of the
	// details without scrolling.
	fmt.Fprintf(&b, "**State:** %s · %d users matched · queue %d · %d batches · %d errors · insights %d AI / %d fallback",
		strings.ToUpper(st.Phase[:1])+st.Phase[1:], st.UsersMatched, st.QueueDepth, st.Batches, st.Errors,
		st.Insights.AI, st.Insights.Fallback)
	if st.Quarantined > 0 {
		fmt.Fprintf(&b, " · **%d quarantined** (`starter status %s`)", st.Quarantined, markdownText(st.EventCode))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "## Event %s\n\n", markdownText(st.EventCode))
	if st.EventName != "" {
		fmt.Fprintf(&b, "%s\n\n", markdownText(st.EventName))
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "Last error: `%s`\n", strings.ReplaceAll(st.LastError, "`", "'"))
	}
	return b.String()
}

// markdownText keeps an operator-chosen name from turning into Markdown.
func markdownText(s string) string {
	return strings.NewReplacer("*", "\\*", "_", "\\_", "#", "\\#", "`", "'", "[", "\\[", "|", "\\|").Replace(s)
}

// runBatch claims one batch and carries it to commit. It returns how many
// members it claimed; zero means the queue is empty.
func (r *run) runBatch(ctx workflow.Context, token string, n int) (int, error) {
	var a *activities.Activities
	ref := activities.BatchRef{EventID: r.eventID, Token: token}

	r.phase = "claiming"
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
		r.phase = "scoring"
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
			r.phase = "insights"
			var insights activities.InsightResult
			err = r.batchStep(ctx, claim.Claimed, fmt.Sprintf("insights for batch %d: %d lists", n, scored.ListsChanged),
				a.WriteInsights, ref).Get(ctx, &insights)
			r.state.Insights.add(insights)
		}
		var commit activities.CommitResult
		if err == nil {
			r.phase = "committing"
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

// Local steps. Each activity a batch runs costs a round trip through the
// server (schedule, dispatch, complete, a new workflow task), some 15–35 ms
// each on an idle worker, most of a newcomer's wait. From localStepsVersion
// on, claim and commit always run as local activities, and so do score and
// insights for batches of at most localBatchLimit members, whose scoring
// is milliseconds: a newcomer's whole batch then fits in one workflow task.
// Larger batches keep regular activities, which any worker may take and
// which survive the worker that runs them. Every step is idempotent under
// the batch's token, so a local activity run again after a crash is
// harmless.
//
// Changing localBatchLimit changes the commands of batches near the limit,
// so it takes a new version too.
const (
	localStepsChange  = "local-short-steps"
	localStepsVersion = 1
	localBatchLimit   = 50
)

// Fan-out. From fanOutVersion on, a batch of at least fanOutMinBatch
// members, claimed while more than one worker process polls the shard
// task queue, is scored in shards of about shardMembers fresh members (at
// most maxShards), each a regular activity on that queue, where every
// worker takes one shard at a time: adding worker processes shortens a
// large event. With one worker, shards would only add their round trips
// and the merge (a 10,000-member event took 10.8 s instead of ~6), so the
// batch is scored whole. ScoreBatch then merges the shards, or scores the batch
// itself if they saw another version of the event. Changing these
// constants changes the commands of large batches: it takes a new version.
const (
	fanOutChange    = "fan-out-shards"
	fanOutVersion   = 1
	fanOutMinBatch  = 2000
	shardMembers    = 1000
	maxShards       = 8
	shardQueueTrail = "-shards"
)

func (r *run) claimInput(token string) activities.ClaimInput {
	in := activities.ClaimInput{EventID: r.eventID, Token: token, Limit: r.s.BatchSize}
	if r.fanOut {
		in.FanOutMin = fanOutMinBatch
	}
	return in
}

// ShardTaskQueue is the task queue of the shards of the workflows on
// taskQueue; workers poll it with their own concurrency.
func ShardTaskQueue(taskQueue string) string { return taskQueue + shardQueueTrail }

// scoreShards runs every shard of the batch in parallel and waits for all
// of them; the first failure fails the batch.
func (r *run) scoreShards(ctx workflow.Context, ref activities.BatchRef, n int) error {
	var a *activities.Activities
	futures := make([]workflow.Future, ref.Shards)
	for k := range futures {
		opts := workflow.ActivityOptions{
			TaskQueue:           ShardTaskQueue(workflow.GetInfo(ctx).TaskQueueName),
			StartToCloseTimeout: r.s.MaxRuntime,
			RetryPolicy:         retryPolicy(),
			Summary:             fmt.Sprintf("score batch %d, shard %d of %d", n, k+1, ref.Shards),
		}
		futures[k] = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.ScoreShard,
			activities.ShardRef{EventID: ref.EventID, Token: ref.Token, Shard: k, Shards: ref.Shards})
	}
	var first error
	for k, f := range futures {
		if err := f.Get(ctx, nil); err != nil && first == nil {
			first = fmt.Errorf("shard %d of %d: %w", k+1, ref.Shards, err)
		}
	}
	return first
}

// quickStep runs a short database step: claim or commit.
func (r *run) quickStep(ctx workflow.Context, summary string, activity, arg any) workflow.Future {
	if r.localSteps {
		return workflow.ExecuteLocalActivity(r.localOptions(ctx, minDuration(r.s.MaxRuntime, 30*time.Second), summary), activity, arg)
	}
	return workflow.ExecuteActivity(r.quickOptions(ctx, summary), activity, arg)
}

// batchStep runs a step whose cost grows with the batch: score or insights.
func (r *run) batchStep(ctx workflow.Context, claimed int, summary string, activity, arg any) workflow.Future {
	if r.localSteps && claimed <= localBatchLimit {
		return workflow.ExecuteLocalActivity(r.localOptions(ctx, r.s.MaxRuntime, summary), activity, arg)
	}
	return workflow.ExecuteActivity(r.longOptions(ctx, summary), activity, arg)
}

func (r *run) localOptions(ctx workflow.Context, attempt time.Duration, summary string) workflow.Context {
	policy := retryPolicy()
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: attempt,
		// Local activities stop retrying at ScheduleToClose, which
		// defaults to one attempt's timeout; allow every attempt the
		// policy grants, with its backoff.
		ScheduleToCloseTimeout: time.Duration(policy.MaximumAttempts) * (attempt + policy.MaximumInterval),
		RetryPolicy:            policy,
		Summary:                summary,
	})
}

func (r *run) quickOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: minDuration(r.s.MaxRuntime, 30*time.Second),
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
}

func (r *run) longOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: r.s.MaxRuntime,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
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
		s.BatchSize = 10000
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
}
