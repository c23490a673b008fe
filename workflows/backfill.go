package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/store"
)

// The AI backfill. A batch commits its lists with fallback insights (AI
// text only where the insight cache already has it), so matching never
// waits for the model; this workflow, one per event, upgrades the
// fallbacks to AI text afterwards, round by round under the worker's rate
// limit, newest lists first, until every current match has one.
//
// It is a sibling of the event's workflow, not its child: CommitBatch
// starts it (or wakes it) by signal-with-start under BackfillWorkflowID, so
// there is exactly one per event, and the event workflow's commands, and
// with them every recorded history, are unchanged. It outlives the event
// workflow's continue-as-new on its own terms, needs no parent close
// policy, and pauses, resumes and ends with the event by what each round
// reads: the event's MatchmakingPaused and matchmaking_enabled.

// BackfillWorkflowIDPrefix + event UUID is the one backfill workflow ID of
// an event.
const BackfillWorkflowIDPrefix = "ai-backfill-"

// BackfillWorkflowID returns the ID of an event's AI backfill workflow.
func BackfillWorkflowID(eventID string) string { return BackfillWorkflowIDPrefix + eventID }

// BackfillSettings shape the backfill's loop; like Settings they travel in
// the input so that a run and its continuations behave the same.
type BackfillSettings struct {
	// RoundTimeout is one round's start-to-close timeout (MAX_RUNTIME_MS).
	RoundTimeout time.Duration
	// IdlePoll: with nothing to upgrade (or the budget spent), how long the
	// backfill waits for a wake before it looks again by itself.
	IdlePoll time.Duration
	// PausePoll: while the event is paused, how often it looks whether the
	// event was resumed.
	PausePoll time.Duration
	// BackoffBase and BackoffCeiling bound the wait after a round whose
	// calls all failed (a dead endpoint): BackoffBase, doubled with every
	// such round in a row, at most BackoffCeiling.
	BackoffBase    time.Duration
	BackoffCeiling time.Duration
	// MaxRoundsPerRun bounds a run's history (rounds, and polls of a
	// batch).
	MaxRoundsPerRun int
	// BatchPoll is how often the backfill asks whether its batch at the
	// provider's Batch API is done (AI_BATCH_POLL).
	BatchPoll time.Duration
}

var defaultBackfillSettings = BackfillSettings{
	RoundTimeout:    45 * time.Second,
	IdlePoll:        5 * time.Minute,
	PausePoll:       15 * time.Second,
	BackoffBase:     5 * time.Second,
	BackoffCeiling:  5 * time.Minute,
	MaxRoundsPerRun: 200,
	BatchPoll:       time.Minute,
}

// NewBackfillSettings are the backfill's settings for the worker's
// MAX_RUNTIME_MS and IDLE_POLL, with defaults for whatever is zero.
func NewBackfillSettings(maxRuntime, idlePoll time.Duration) BackfillSettings {
	return backfillWithDefaults(BackfillSettings{RoundTimeout: maxRuntime, IdlePoll: idlePoll})
}

func backfillWithDefaults(s BackfillSettings) BackfillSettings {
	d := defaultBackfillSettings
	for _, f := range []struct{ v, def *time.Duration }{
		{&s.RoundTimeout, &d.RoundTimeout}, {&s.IdlePoll, &d.IdlePoll}, {&s.PausePoll, &d.PausePoll},
		{&s.BackoffBase, &d.BackoffBase}, {&s.BackoffCeiling, &d.BackoffCeiling}, {&s.BatchPoll, &d.BatchPoll},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if s.MaxRoundsPerRun <= 0 {
		s.MaxRoundsPerRun = d.MaxRoundsPerRun
	}
	return s
}

// BackfillState is what survives continue-as-new: counters of this
// workflow's rounds (the database keeps the event's own, all runs
// together, in Progress).
type BackfillState struct {
	Runs   int
	Rounds int
	activities.BackfillCounts
	// Backoffs counts waits after rounds whose calls all failed;
	// FailuresInARow, those since the last round that did not fail.
	Backoffs       int
	FailuresInARow int
	// Errors counts rounds that failed after their retries; LastError
	// says the latest, or the latest failed calls' reason.
	Errors    int
	LastError string
	// Budget is the worker's AI_MAX_CALLS_PER_EVENT (0: unlimited) and
	// BudgetSpent whether the event has spent it.
	Budget      int
	BudgetSpent bool
	// SpendLimitUSD is the worker's AI_MAX_SPEND_USD_PER_EVENT (0:
	// unlimited), SpentUSD what the event's calls cost at the model's
	// price, and SpendLimitReached whether the limit stopped the backfill.
	SpendLimitUSD     float64
	SpentUSD          float64
	SpendLimitReached bool
	// Progress is where the event stood after the last round.
	Progress activities.BackfillProgress
	// Batch is the event's batch at the provider's Batch API while it is
	// open: carried across continue-as-new (and kept in the database), so
	// that it is polled until collected and never submitted twice.
	Batch BatchRef
	// BatchDisarmed: a batch was tried (submitted, or declined) since the
	// backlog was last below AI_BATCH_MIN_BACKLOG; the next one waits
	// until it was, so that answers a batch failed are asked live rather
	// than in batch after batch.
	BatchDisarmed bool
	// Batches counts the batches collected, BatchCounts what they found.
	Batches     int
	BatchCounts store.AIBatchCounts
}

// BatchRef is an open batch: its ID and counts, never its content.
type BatchRef struct {
	ID       string
	Requests int
	// ListsUpTo is the newest list write in the batch; lists written after
	// it are served by live rounds while the batch runs.
	ListsUpTo           time.Time
	Status              string
	Completed, Failed   int
	Polls, PollFailures int
}

// BackfillInput starts or continues an event's backfill.
type BackfillInput struct {
	EventID  string
	Settings BackfillSettings
	State    BackfillState
}

// BackfillPhase is what the backfill is doing.
type BackfillPhase string

const (
	BackfillStarting    BackfillPhase = "starting"
	BackfillUpgrading   BackfillPhase = "upgrading"
	BackfillIdle        BackfillPhase = "idle"
	BackfillPaused      BackfillPhase = "paused"
	BackfillBackingOff  BackfillPhase = "backing off"
	BackfillBudgetSpent BackfillPhase = "budget spent"
	BackfillFinished    BackfillPhase = "finished"
	// BackfillAwaitingBatch: the backlog is at the provider's Batch API;
	// the backfill polls it.
	BackfillAwaitingBatch BackfillPhase = "awaiting batch"
)

// The Batch API mode (AI_BATCH_API) added commands to the backfill: runs
// started before it replay as they were recorded.
const (
	batchAPIChange  = "ai-batch-api"
	batchAPIVersion = 1
)

// BackfillStatus answers the backfill's status query (QueryStatus).
type BackfillStatus struct {
	EventID string
	BackfillState
	Phase BackfillPhase
	// Line says in one sentence where the event's AI insights stand.
	Line string
}

// AIBackfill is the AI backfill workflow of one event (see above). It
// carries IDs and counts only, never profile or insight text.
func AIBackfill(ctx workflow.Context, in BackfillInput) error {
	if in.EventID == "" {
		return temporal.NewNonRetryableApplicationError("event id is required", "BadInput", nil)
	}
	b := &backfill{
		eventID: in.EventID,
		s:       backfillWithDefaults(in.Settings),
		state:   in.State,
		phase:   BackfillStarting,
		wakeCh:  workflow.GetSignalChannel(ctx, SignalWake),
		logger:  workflow.GetLogger(ctx),
	}
	b.state.Runs++
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BackfillStatus, error) {
		return b.status(), nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	b.publish(ctx)

	batchAPI := workflow.GetVersion(ctx, batchAPIChange, workflow.DefaultVersion, batchAPIVersion) >= batchAPIVersion

	var a *activities.Activities
	opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: b.s.RoundTimeout,
		HeartbeatTimeout:    activities.HeartbeatTimeout,
		RetryPolicy:         retryPolicy(),
		Summary:             "upgrade fallback insights to AI, newest lists first",
	})
	for roundsThisRun := 0; ; roundsThisRun++ {
		// A new run starts with a round, so wakes need not be carried.
		b.drainWakes()
		if roundsThisRun >= b.s.MaxRoundsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return b.continueAsNew(ctx, roundsThisRun)
		}
		if batchAPI && b.state.Batch.ID != "" {
			polls, err := b.awaitBatch(ctx)
			if err != nil {
				return err
			}
			roundsThisRun += polls
			continue
		}
		b.phase = BackfillUpgrading
		var res activities.BackfillRoundResult
		err := workflow.ExecuteActivity(opts, a.BackfillRound, activities.BackfillRoundInput{EventID: b.eventID}).Get(ctx, &res)
		if err != nil {
			b.state.Errors++
			b.state.LastError = plainError(err)
			if err := b.backOff(ctx); err != nil {
				return err
			}
			continue
		}
		b.add(res)
		if !res.BatchAdvised {
			b.state.BatchDisarmed = false
		}
		switch {
		case res.Finished:
			b.phase = BackfillFinished
			b.publish(ctx)
			b.logger.Info("event disabled or gone, or AI off on this worker; backfill finished")
			return nil
		case res.Paused:
			b.phase = BackfillPaused
			err = b.waitForWake(ctx, b.s.PausePoll)
		case res.BudgetSpent:
			b.phase = BackfillBudgetSpent
			err = b.waitForWake(ctx, b.s.IdlePoll)
		case res.EndpointDown:
			b.state.LastError = fmt.Sprintf("model calls failed (%s)", res.FailureReason)
			err = b.backOff(ctx)
		case res.Selected == 0:
			b.state.FailuresInARow = 0
			b.phase = BackfillIdle
			err = b.waitForWake(ctx, b.s.IdlePoll)
		case res.Upgraded+res.Refused == 0:
			// Everything read was fenced out (lists rewritten meanwhile):
			// the event is busy; give its commits a moment.
			b.state.FailuresInARow = 0
			b.phase = BackfillIdle
			err = b.waitForWake(ctx, b.s.BackoffBase)
		default:
			b.state.FailuresInARow = 0
			b.publish(ctx)
			if batchAPI && res.BatchAdvised && !b.state.BatchDisarmed {
				b.submitBatch(ctx)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (b *backfill) continueAsNew(ctx workflow.Context, steps int) error {
	b.logger.Info("continuing as new", "rounds_and_polls", steps)
	return workflow.NewContinueAsNewError(ctx, AIBackfill, BackfillInput{EventID: b.eventID, Settings: b.s, State: b.state})
}

// submitBatch sends the backlog through the provider's Batch API, or
// resumes the event's open batch. A failure leaves the live rounds to it.
func (b *backfill) submitBatch(ctx workflow.Context) {
	var a *activities.Activities
	b.state.BatchDisarmed = true
	var res activities.SubmitAIBatchResult
	err := workflow.ExecuteActivity(b.activityOptions(ctx, "send the backlog through the Batch API"), a.SubmitAIBatch,
		activities.BackfillRoundInput{EventID: b.eventID}).Get(ctx, &res)
	switch {
	case err != nil:
		b.state.Errors++
		b.state.LastError = plainError(err)
	case res.BatchID != "":
		b.state.Batch = BatchRef{ID: res.BatchID, Requests: res.Requests, ListsUpTo: res.ListsUpTo}
		b.logger.Info("backlog sent in a batch", "batch_id", res.BatchID, "requests", res.Requests, "resumed", res.Resumed)
	default:
		b.logger.Info("no batch", "why", res.Declined)
	}
}

// awaitBatch polls the open batch, a workflow timer of BatchPoll after
// each poll, until it is done, then collects its answers. A wake meanwhile (lists
// committed) runs a round for the lists written after the batch's, so a
// newcomer does not wait for the batch. It returns the polls and rounds it
// made, or continue-as-new (with the batch in the state) when the run's
// history is long enough. A poll that fails after its retries is counted
// and the polling goes on; a collect that fails backs off and is tried
// again by the caller's next turn, the batch still open.
func (b *backfill) awaitBatch(ctx workflow.Context) (int, error) {
	var a *activities.Activities
	steps := 0
	nextPoll := workflow.Now(ctx).Add(b.s.BatchPoll)
	for {
		b.phase = BackfillAwaitingBatch
		b.publish(ctx)
		if steps >= b.s.MaxRoundsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return steps, b.continueAsNew(ctx, steps)
		}
		if wait := nextPoll.Sub(workflow.Now(ctx)); wait > 0 {
			woke, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return b.wakeCh.Len() > 0 })
			if err != nil {
				return steps, err
			}
			if woke {
				b.drainWakes()
				steps++
				b.roundForNewerLists(ctx)
				continue
			}
		}
		steps++
		b.state.Batch.Polls++
		var p activities.AIBatchPollResult
		err := workflow.ExecuteActivity(b.activityOptions(ctx, "poll the batch"), a.PollAIBatch,
			activities.AIBatchInput{EventID: b.eventID, BatchID: b.state.Batch.ID}).Get(ctx, &p)
		nextPoll = workflow.Now(ctx).Add(b.s.BatchPoll)
		if err != nil {
			b.state.Batch.PollFailures++
			b.state.Errors++
			b.state.LastError = plainError(err)
			continue
		}
		ref := &b.state.Batch
		ref.Status, ref.Completed, ref.Failed = p.Status, p.Completed, p.Failed
		if p.Done {
			break
		}
	}
	var c activities.AIBatchCollectResult
	err := workflow.ExecuteActivity(b.activityOptions(ctx, "collect the batch's answers"), a.CollectAIBatch,
		activities.AIBatchInput{EventID: b.eventID, BatchID: b.state.Batch.ID}).Get(ctx, &c)
	if err != nil {
		b.state.Errors++
		b.state.LastError = plainError(err)
		return steps, b.backOff(ctx)
	}
	st := &b.state
	st.Batches++
	st.BatchCounts.Answered += c.Answered
	st.BatchCounts.Refused += c.Refused
	st.BatchCounts.Failed += c.Failed
	st.BatchCounts.Stale += c.Stale
	st.AICalls += c.Calls
	st.PromptTokens += c.PromptTokens
	st.CompletionTokens += c.CompletionTokens
	b.logger.Info("batch collected", "batch_id", st.Batch.ID, "answered", c.Answered, "refused", c.Refused,
		"failed", c.Failed, "stale", c.Stale)
	st.Batch = BatchRef{}
	st.FailuresInARow = 0
	return steps, nil
}

// roundForNewerLists runs a round for the lists written after the open
// batch's. What it finds (nothing, a paused or disabled event, a dead
// endpoint) changes nothing: the batch is polled on, and the loop after
// it decides.
func (b *backfill) roundForNewerLists(ctx workflow.Context) {
	var a *activities.Activities
	b.phase = BackfillUpgrading
	var res activities.BackfillRoundResult
	err := workflow.ExecuteActivity(b.activityOptions(ctx, "upgrade the lists written since the batch"), a.BackfillRound,
		activities.BackfillRoundInput{EventID: b.eventID, ListsWrittenAfter: b.state.Batch.ListsUpTo}).Get(ctx, &res)
	if err != nil {
		b.state.Errors++
		b.state.LastError = plainError(err)
		return
	}
	if !res.Finished {
		b.add(res)
	}
}

func (b *backfill) activityOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: b.s.RoundTimeout,
		HeartbeatTimeout:    activities.HeartbeatTimeout,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
}

// backfill is one run's state, shared by the loop and the query.
type backfill struct {
	eventID string
	s       BackfillSettings
	state   BackfillState
	phase   BackfillPhase
	wakeCh  workflow.ReceiveChannel
	logger  log.Logger
}

func (b *backfill) add(r activities.BackfillRoundResult) {
	st := &b.state
	st.Rounds++
	st.BackfillCounts.Add(r.BackfillCounts)
	st.Budget, st.BudgetSpent = r.Budget, r.BudgetSpent
	st.SpendLimitReached = r.SpendLimitReached
	if !r.Finished {
		st.Progress = r.Progress
		st.SpendLimitUSD, st.SpentUSD = r.SpendLimitUSD, r.SpentUSD
	}
}

// drainWakes takes the wakes delivered so far: the round about to run
// reads every list they announced.
func (b *backfill) drainWakes() {
	for b.wakeCh.ReceiveAsync(nil) {
	}
}

// waitForWake waits until a wake arrives (new fallbacks were committed) or
// d has passed.
func (b *backfill) waitForWake(ctx workflow.Context, d time.Duration) error {
	b.publish(ctx)
	_, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return b.wakeCh.Len() > 0 })
	return err
}

// backOff waits after a round whose calls all failed, or that failed
// itself: BackoffBase doubled per failure in a row, at most BackoffCeiling.
// Wakes do not cut it short: new lists do not revive an endpoint.
func (b *backfill) backOff(ctx workflow.Context) error {
	b.state.FailuresInARow++
	b.state.Backoffs++
	b.phase = BackfillBackingOff
	b.publish(ctx)
	return workflow.Sleep(ctx, backoffDelay(b.s, b.state.FailuresInARow))
}

// backoffDelay is the wait after the n-th failure in a row.
func backoffDelay(s BackfillSettings, n int) time.Duration {
	d := s.BackoffBase
	for i := 1; i < n && d < s.BackoffCeiling; i++ {
		d *= 2
	}
	return min(d, s.BackoffCeiling)
}

func (b *backfill) status() BackfillStatus {
	return BackfillStatus{EventID: b.eventID, BackfillState: b.state, Phase: b.phase, Line: backfillLine(b.state)}
}

// backfillLine says where the event's AI insights stand, in one line.
func backfillLine(st BackfillState) string {
	p := st.Progress
	keep := p.Matches - p.AI
	if b := st.Batch; b.ID != "" {
		status := b.Status
		if status == "" {
			status = "submitted"
		}
		return fmt.Sprintf("batch %s %s: %d of %d requests done, %d failed; %s",
			b.ID, status, b.Completed+b.Failed, b.Requests, b.Failed, p.Summary())
	}
	if st.SpendLimitReached {
		return fmt.Sprintf("stopped: spend limit $%.2f reached ($%.2f spent); %d matches keep the fallback",
			st.SpendLimitUSD, st.SpentUSD, keep)
	}
	if st.BudgetSpent {
		return fmt.Sprintf("AI budget of %d calls spent; %d matches keep the fallback", st.Budget, keep)
	}
	line := p.Summary()
	if st.Budget > 0 {
		line += fmt.Sprintf(", budget %d calls", st.Budget)
	}
	if st.SpendLimitUSD > 0 {
		line += fmt.Sprintf(", $%.2f spent of $%.2f", st.SpentUSD, st.SpendLimitUSD)
	}
	return line
}

// publish shows the backfill in the Web UI's details.
func (b *backfill) publish(ctx workflow.Context) {
	st := b.status()
	var sb strings.Builder
	sb.WriteString(fmt.Sprintf("**AI backfill:** %s · %s\n\n", strings.ToUpper(string(st.Phase[:1]))+string(st.Phase[1:]), st.Line))
	sb.WriteString(fmt.Sprintf("Event `%s` · %d rounds · %d upgraded · %d fenced out · %d backoffs",
		st.EventID, st.Rounds, st.Upgraded, st.Fenced, st.Backoffs))
	if st.SpentUSD > 0 {
		sb.WriteString(fmt.Sprintf(" · $%.2f spent", st.SpentUSD))
	}
	if st.Batches > 0 {
		sb.WriteString(fmt.Sprintf(" · %d batches (%d answers, %d failed)", st.Batches, st.BatchCounts.Answered, st.BatchCounts.Failed))
	}
	sb.WriteString("\n")
	if st.LastError != "" {
		sb.WriteString(fmt.Sprintf("\nLast error: `%s`\n", strings.ReplaceAll(st.LastError, "`", "'")))
	}
	workflow.SetCurrentDetails(ctx, sb.String())
}
