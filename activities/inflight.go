package activities

// A stopping worker (SIGTERM) gives its running batch steps until the stop
// deadline to finish. A step still running then is cancelled and its batch
// released (store.ReleaseBatch), so its members are back in the queue at
// once rather than when their lease ends; a shard still running is handed
// back to Temporal for another worker.
//
// A commit is let run past the deadline: it is one short transaction, and
// the one that makes the batch's work count.
//
// The deadline comes a little before WORKER_STOP_TIMEOUT (see
// StopDeadline), because the SDK cancels every activity itself when
// WorkerStopTimeout ends and then returns from Stop without waiting for
// anyone to report: a step cancelled only then would release its batch, but
// its result might never reach the server, which would then wait for the
// step's start-to-close timeout before retrying it.
//
// Local activities matter here. The SDK lets the workflow task that runs
// them go on while the worker drains, so a workflow held by this worker may
// chain claim → score → insights → commit, and claim its next batch, during
// the drain. After the deadline this worker therefore claims nothing new
// (ErrTypeWorkerStopping, retryable): the workflow task is left unfinished
// and the workflow goes on with another worker after Temporal's workflow
// task timeout, instead of claiming batches here only to release them.
//
// A released batch is not an error. The step that released it, and any
// later step of the same batch, succeeds with Released set and does
// nothing; the commit of a released batch says so too, and the workflow's
// next claim takes its members again (store.ClaimBatch of the same token
// reports it finished, ClaimResult.Finished). The steps are written so that
// a workflow that does not read Released still behaves: insights of a
// released batch find nothing staged, and its commit reports Released
// instead of failing with LeaseLost.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/store"
)

// ErrTypeWorkerStopping is a step this worker would not run or finish
// because it is stopping. It is retryable: Temporal gives the retry to
// another worker.
const ErrTypeWorkerStopping = "WorkerStopping"

// Activity names the drain treats as batch steps.
const (
	activityClaimBatch    = "ClaimBatch"
	activityScoreBatch    = "ScoreBatch"
	activityWriteInsights = "WriteInsights"
	activityCommitBatch   = "CommitBatch"
	activityScoreShard    = "ScoreShard"
)

// releaseReason is recorded on the batch and its queue rows.
const releaseReason = "released by a stopping worker before the batch finished; claimed again by the next batch"

// releaseTimeout bounds the release of one batch after its step was
// cancelled; it runs on a context of its own, since the step's is done.
const releaseTimeout = 5 * time.Second

// errStopDeadline is the cause of a step's cancellation at the stop
// deadline.
var errStopDeadline = errors.New("the worker is stopping and its stop deadline has passed")

// StopDeadline is how long after SIGTERM a running step may go on before
// it is cancelled, for a WORKER_STOP_TIMEOUT of timeout: a fifth of it,
// at most 5 s, is kept for cancelling, releasing and reporting before the
// SDK's own cancellation at timeout.
func StopDeadline(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 0
	}
	return timeout - min(timeout/5, 5*time.Second)
}

// DrainSummary counts what a stopping worker did with its batch steps.
type DrainSummary struct {
	// Finished: steps running at SIGTERM, or started after it, that ended
	// on their own (succeeded, or failed for a reason of their own).
	Finished int
	// Released: batches given back to the queue because their step could
	// not finish by the deadline.
	Released int
	// HandedBack: shards (and steps whose release failed) failed with
	// ErrTypeWorkerStopping for Temporal to retry on another worker.
	HandedBack int
	// Running: steps still running when WaitStopped gave up waiting.
	Running int
}

// Drain tracks a worker's running batch steps and stops them when the
// worker stops. It is not a method set of Activities: every exported
// method there is registered as an activity.
type Drain struct {
	a        *Activities
	mu       sync.Mutex
	running  map[*runningStep]struct{}
	stopping bool
	expired  bool
	summary  DrainSummary
	changed  chan struct{} // gets a value whenever a step ends
}

type runningStep struct {
	activity string
	eventID  string
	token    string
	cancel   context.CancelCauseFunc
}

// NewDrain makes the Drain of the worker running a's steps.
func NewDrain(a *Activities) *Drain {
	return &Drain{a: a, running: map[*runningStep]struct{}{}, changed: make(chan struct{}, 1)}
}

// StartStopping tells the steps that the worker is stopping: those still
// running StopDeadline(timeout) from now are cancelled, their batches
// released. It returns how many steps are running now and the deadline.
// Call it before stopping the Temporal workers; later calls change nothing.
func (d *Drain) StartStopping(timeout time.Duration) (running int, deadline time.Duration) {
	deadline = StopDeadline(timeout)
	d.mu.Lock()
	running, already := len(d.running), d.stopping
	d.stopping = true
	d.mu.Unlock()
	switch {
	case already:
	case deadline <= 0:
		d.expire() // at once, so no step starts after this returns
	default:
		time.AfterFunc(deadline, d.expire)
	}
	return running, deadline
}

// expire cancels the steps still running at the stop deadline.
func (d *Drain) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expired = true
	for st := range d.running {
		if st.activity == activityCommitBatch {
			continue // see track
		}
		d.a.log(context.Background()).Warn("stop deadline reached: cancelling a step still running",
			"step", st.activity, "event_id", st.eventID, "batch", st.token)
		st.cancel(errStopDeadline)
	}
}

// WaitStopped waits, until ctx ends, for the running steps to return (and
// release their batches), and says what the drain did.
func (d *Drain) WaitStopped(ctx context.Context) DrainSummary {
	for {
		d.mu.Lock()
		s := d.summary
		s.Running = len(d.running)
		d.mu.Unlock()
		if s.Running == 0 {
			return s
		}
		select {
		case <-d.changed:
		case <-ctx.Done():
			return s
		}
	}
}

// pastDeadline reports whether the worker is stopping and its deadline
// has passed.
func (d *Drain) pastDeadline() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// track registers a step; its context is cancelled at the stop deadline.
// ok is false when the deadline has passed already: the step must not
// start. A commit is the exception: one short transaction that makes the
// batch's work count, so it may start, and run, past the deadline (the
// SDK still cancels it when WorkerStopTimeout ends).
func (d *Drain) track(ctx context.Context, act, eventID, token string) (stepCtx context.Context, st *runningStep, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired && act != activityCommitBatch {
		return ctx, nil, false
	}
	stepCtx, cancel := context.WithCancelCause(ctx)
	st = &runningStep{activity: act, eventID: eventID, token: token, cancel: cancel}
	d.running[st] = struct{}{}
	return stepCtx, st, true
}

// outcome is how a tracked step ended, for the summary.
type outcome int

const (
	outcomeNormal outcome = iota // ended before the worker stopped, either way
	outcomeFinished
	outcomeReleased
	outcomeHandedBack
)

// count records an outcome that came without a tracked step (a step the
// deadline kept from starting).
func (d *Drain) count(o outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.add(o)
}

func (d *Drain) add(o outcome) {
	switch o {
	case outcomeFinished:
		d.summary.Finished++
	case outcomeReleased:
		d.summary.Released++
	case outcomeHandedBack:
		d.summary.HandedBack++
	}
}

// done removes a step, counting how it ended.
func (d *Drain) done(st *runningStep, o outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st.cancel(nil)
	delete(d.running, st)
	if o == outcomeNormal && d.stopping {
		o = outcomeFinished
	}
	d.add(o)
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// stoppedBy reports whether ctx ended because the worker is stopping: at
// the drain's deadline, or by the SDK's own cancellation when
// WorkerStopTimeout ran out.
func stoppedBy(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, errStopDeadline) || errors.Is(cause, worker.ErrWorkerShutdown)
}

// Interceptor puts the drain around the batch steps; it belongs in the
// worker.Options.Interceptors of every worker the Activities are
// registered on. It applies to local activities too.
func (d *Drain) Interceptor() interceptor.WorkerInterceptor {
	return &stopInterceptor{d: d}
}

type stopInterceptor struct {
	interceptor.WorkerInterceptorBase
	d *Drain
}

func (w *stopInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &stopActivityInterceptor{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, d: w.d}
}

type stopActivityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	d *Drain
}

func (i *stopActivityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	d, a := i.d, i.d.a
	act := activity.GetInfo(ctx).ActivityType.Name
	var eventID, token string
	switch act {
	case activityClaimBatch:
		if d.pastDeadline() {
			return nil, temporal.NewApplicationError(
				"this worker is stopping and claims no new batch; the workflow goes on with another worker", ErrTypeWorkerStopping)
		}
		return i.Next.ExecuteActivity(ctx, in)
	case activityScoreBatch, activityWriteInsights, activityCommitBatch:
		ref, ok := firstArg[BatchRef](in.Args)
		if !ok {
			return i.Next.ExecuteActivity(ctx, in)
		}
		eventID, token = ref.EventID, ref.Token
	case activityScoreShard:
		ref, ok := firstArg[ShardRef](in.Args)
		if !ok {
			return i.Next.ExecuteActivity(ctx, in)
		}
		eventID, token = ref.EventID, ref.Token
	default:
		return i.Next.ExecuteActivity(ctx, in)
	}

	stepCtx, st, ok := d.track(ctx, act, eventID, token)
	if !ok {
		// Started after the deadline (the next step of a workflow task
		// this worker still runs): give it back without starting it.
		res, o, err := a.giveBack(ctx, act, eventID, token, errStopDeadline)
		d.count(o)
		return res, err
	}
	res, err := i.Next.ExecuteActivity(stepCtx, in)
	o := outcomeNormal
	switch {
	case err == nil:
	case stoppedBy(stepCtx):
		res, o, err = a.giveBack(ctx, act, eventID, token, err)
	case act == activityScoreBatch && a.scoredReleasedBatch(ctx, eventID, token, err):
		res, err = ScoreResult{Released: true}, nil
	}
	d.done(st, o)
	return res, err
}

// firstArg is an activity's first argument as T.
func firstArg[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	switch v := args[0].(type) {
	case T:
		return v, true
	case *T:
		if v != nil {
			return *v, true
		}
	}
	return zero, false
}

// giveBack ends a step the stopping worker could not finish: a batch step
// releases its batch and succeeds with Released; a shard (or a step whose
// release failed) fails retryably, for Temporal to run it on another
// worker. cause is why the step ended.
func (a *Activities) giveBack(ctx context.Context, act, eventID, token string, cause error) (any, outcome, error) {
	log := a.log(ctx).With("event_id", eventID, "batch", token, "step", act)
	handBack := func(msg string) (any, outcome, error) {
		return nil, outcomeHandedBack, temporal.NewApplicationErrorWithCause(msg, ErrTypeWorkerStopping, cause)
	}
	if act == activityScoreShard {
		log.Info("worker stopping: shard could not finish by the stop deadline; Temporal retries it on another worker")
		return handBack("this worker stopped before the shard finished")
	}
	// The step's context is done; the release gets one of its own.
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	n, err := a.Store.ReleaseBatch(relCtx, token, releaseReason)
	if err != nil {
		// The token still holds its rows: a retry elsewhere goes on with them.
		log.Error("worker stopping: step could not finish by the stop deadline, and releasing its batch failed; "+
			"Temporal retries the step on another worker", "error", err)
		return handBack(fmt.Sprintf("this worker stopped before the step finished, and could not release the batch: %v", err))
	}
	log.Warn("worker stopping: step could not finish by the stop deadline; released its batch, whose members the next claim takes",
		"users", n)
	res, err := a.releasedResult(relCtx, act, eventID)
	if err != nil {
		return nil, outcomeReleased, err
	}
	return res, outcomeReleased, nil
}

// releasedResult is the result of a step of a released batch.
func (a *Activities) releasedResult(ctx context.Context, act, eventID string) (any, error) {
	switch act {
	case activityScoreBatch:
		return ScoreResult{Released: true}, nil
	case activityWriteInsights:
		return InsightResult{Released: true}, nil
	case activityCommitBatch:
		return a.releasedCommit(ctx, eventID), nil
	}
	return nil, fmt.Errorf("no released result for activity %s", act)
}

// releasedCommit is the commit result of a released batch. The queue depth
// is best effort: a workflow that does not read Released shows it.
func (a *Activities) releasedCommit(ctx context.Context, eventID string) CommitResult {
	depth, err := a.Store.QueueDepth(ctx, eventID)
	if err != nil {
		a.log(ctx).Warn("could not count the queue after a released batch", "event_id", eventID, "error", err)
	}
	return CommitResult{Released: true, QueueDepth: depth}
}

// scoredReleasedBatch reports whether ScoreBatch failed because its batch
// had been released (or committed) meanwhile: staging found no open batch
// although loading found the batch. That happens when a step of the batch
// was released by a stopping worker whose report did not reach Temporal,
// which then retried the step here.
func (a *Activities) scoredReleasedBatch(ctx context.Context, eventID, token string, err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrTypeBatchNotFound {
		return false // missing altogether: another database (batchNotFound)
	}
	if !errors.Is(err, store.ErrBatchNotFound) {
		return false
	}
	finished, probeErr := a.Store.BatchFinished(ctx, token)
	if probeErr != nil || !finished {
		return false
	}
	a.log(ctx).Info("batch was released (or committed) while it was scored; nothing staged, the next claim takes its members",
		"event_id", eventID, "batch", token)
	return true
}
