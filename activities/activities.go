// Package activities holds the batch steps of an event's matchmaking: claim,
// score, insight, commit (and release when a batch is given up). Each step
// reads and writes PostgreSQL through the store; Temporal payloads carry IDs
// and counts only, never profile text or insights.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/eventmatch/matchmaker/internal/aiprice"
	"github.com/eventmatch/matchmaker/internal/metrics"
	"github.com/eventmatch/matchmaker/store"
)

// Application error types the workflow's retry policy treats as final.
const (
	ErrTypeLeaseLost     = "LeaseLost"
	ErrTypeBatchNotFound = "BatchNotFound"
	// ErrTypeRowsRefused: the database refuses the batch's rows for a
	// reason no single member explains; retrying the same rows cannot help.
	ErrTypeRowsRefused = "RowsRefused"
)

// Activities are registered on the worker as one struct so they share the
// pool, the insight writer and the settings.
type Activities struct {
	Store *store.Store
	// Insights writes AI insights; nil means the deterministic fallback
	// only, applied in SQL from what scoring staged.
	Insights InsightWriter
	TopN     int
	// MaxAppearances is MAX_APPEARANCES: when above 0, batches commit the
	// event's capped assignment (matching.CappedLists) instead of
	// per-member top-N lists.
	MaxAppearances int
	// BatchSize and MaxRuntime are this worker's claim size (BatchSizeFor)
	// and MAX_RUNTIME_MS. The worker owns them: claims take BatchSize members
	// whatever the workflow asks, and DescribeEvent hands both to the
	// workflow for its activity timeouts, so whoever ran `starter enable`
	// with another environment changes nothing. Zero leaves the workflow's.
	BatchSize  int
	MaxRuntime time.Duration
	// Lease is how long a claim holds its rows; it must outlast a batch's
	// whole claim→commit path, retries included.
	Lease  time.Duration
	Logger *slog.Logger
	// Metrics records batches, queue depth and AI usage; nil records
	// nothing (and skips the queue count after a commit).
	Metrics *metrics.App
	// FanOutMinPairs is the fewest pairs (claimed × the event's members)
	// a batch is scored in shards for (config.Config.FanOutMinPairs); 0
	// shards every batch the workflow would.
	FanOutMinPairs int64
	// ShardWorkers counts the worker processes polling the shard queue;
	// nil counts none, so no batch is scored in shards.
	ShardWorkers func(ctx context.Context) (int, error)
	// AIMaxCallsPerEvent is AI_MAX_CALLS_PER_EVENT: model calls the
	// backfill may spend on one event, all runs together (0: unlimited).
	AIMaxCallsPerEvent int
	// AISpendLimitUSD is AI_MAX_SPEND_USD_PER_EVENT (0: unlimited), and
	// AIPrice the model's price it is counted at.
	AISpendLimitUSD float64
	AIPrice         aiprice.Price
	// AIBatch is AI_BATCH_API: a backlog of at least AIBatchMinBacklog
	// (AI_BATCH_MIN_BACKLOG) fallback insights goes through the
	// provider's Batch API (see ai_batch.go).
	AIBatch           bool
	AIBatchMinBacklog int
	// StartBackfill starts the event's AI backfill workflow, or wakes the
	// running one; CommitBatch calls it after committing fallback insights
	// while AI is on. nil starts none (tests of the batch steps alone).
	StartBackfill func(ctx context.Context, eventID string) error
	// EventPaused reports whether the event's workflow is paused, so the
	// backfill pauses with it; nil reports never.
	EventPaused func(ctx context.Context, eventID string) (bool, error)

	events      eventCache
	assignments assignments
}

// ClaimInput names a batch to claim.
type ClaimInput struct {
	EventID string
	Token   string
	Limit   int
	// FanOutMin: a claim of at least this many members (0: never) also
	// counts the worker processes polling the shard queue, for the
	// workflow to decide whether to score the batch in shards.
	FanOutMin int
}

// BatchRef names a claimed batch.
type BatchRef struct {
	EventID string
	Token   string
	// Shards is, for ScoreBatch, how many ScoreShard results to merge;
	// 0 scores the whole batch in ScoreBatch itself.
	Shards int
}

// ShardRef names one shard of a batch scored across workers.
type ShardRef struct {
	EventID string
	Token   string
	Shard   int
	Shards  int
}

// ShardResult counts what a shard left for the merge.
type ShardResult struct {
	Scored int // the shard's fresh members, scored against the event
	Offers int // offers staged for the merge
}

// ClaimResult reports how many members the batch holds.
type ClaimResult struct {
	Claimed int
	// Finished: the token's batch was committed or released by an earlier
	// attempt whose progress the workflow's history did not keep (its
	// worker died inside a chain of local activities); the run goes on to
	// its next batch.
	Finished bool
	// ShardWorkers is how many worker processes poll the shard queue, when
	// the claim reached ClaimInput.FanOutMin, its pairs reached the
	// worker's FanOutMinPairs and the cap is off; 0 otherwise. Shards only
	// pay off with more than one.
	ShardWorkers int
}

// ScoreResult reports what scoring staged.
type ScoreResult struct {
	Members      int // members in the event
	Scored       int // claimed members still in the event, scored against everyone
	ListsChanged int // lists the batch rewrites
	Rows         int // staged match rows
	// ReadWholeEvent: the worker read every member and list rather than
	// what changed since its cached copy of the event.
	ReadWholeEvent bool
	// ShardsMerged: the shards' offers were merged; false with Shards set
	// means they were scored on another version of the event and the
	// batch was scored here instead.
	ShardsMerged bool
	// ListsRescored counts the lists scored against the whole event: the
	// claimed members' and those that could not be repaired from the
	// spares this worker kept (see matching.Reserve).
	ListsRescored int
	// Released: the batch went back to the queue before it was scored (its
	// worker stopped, see inflight.go); nothing was staged, and the
	// workflow's next claim takes its members again. False in every result
	// recorded before the field existed, which is what it meant then.
	Released bool
}

// InsightResult counts insights by source, and what the AI step cost.
type InsightResult struct {
	AI               int
	Fallback         int
	FallbackReasons  []ReasonCount
	AICalls          int // model calls made (each serves both directions of a pair)
	CacheHits        int // pairs answered from the insight cache
	PromptTokens     int
	CompletionTokens int
	AILatencyMS      int64 // summed over calls
	// Released: the batch went back to the queue before its insights were
	// written (its worker stopped); see ScoreResult.Released.
	Released bool
}

// CommitResult reports a commit. Stale means nothing was written and the
// batch must be scored again: the event changed after scoring in a way the
// commit cannot work around, or members whose rows the database refused
// were just quarantined (Quarantined > 0) and scoring must leave them out.
type CommitResult struct {
	Stale          bool
	QueueDepth     int // the event's queue size after the commit
	UsersCommitted int
	UsersRequeued  int
	ListsWritten   int
	// ListsDeferred are lists not written because they named a member who
	// left meanwhile; their owners were enqueued again.
	ListsDeferred int
	// Quarantined is how many members this commit quarantined, and
	// QuarantinedTotal how many the event has in quarantine now (also
	// after a successful commit, so a retry shows in the Web UI).
	Quarantined      int
	QuarantinedTotal int
	// Released: the batch went back to the queue before it could commit
	// (its worker stopped, see inflight.go): nothing was written, and the
	// workflow's next claim takes its members again. A workflow that does
	// not read it counts a batch of no users.
	Released bool
}

// startBackfillTimeout bounds CommitBatch's start of the AI backfill.
const startBackfillTimeout = 5 * time.Second

// ReleaseInput names a batch to give up and why.
type ReleaseInput struct {
	Token  string
	Reason string
}

// CappedBatchSize is how many queued members a batch claims with the cap
// on, whatever BATCH_SIZE says: in practice all of them. The capped
// assignment is made for the whole event, queued members included, and
// every list it changes is written by the batch that makes it; a batch of
// BATCH_SIZE left the rest of the queue to batches that wrote again the
// lists naming their members, nothing else (50,000 members: five batches
// writing 168,000 lists, against one writing 50,000).
const CappedBatchSize = 1_000_000

// BatchSizeFor is the claim size of a worker with BATCH_SIZE batchSize and
// MAX_APPEARANCES maxAppearances: batchSize, or CappedBatchSize with the
// cap on.
func BatchSizeFor(batchSize, maxAppearances int) int {
	if maxAppearances > 0 {
		return CappedBatchSize
	}
	return batchSize
}

// ClaimBatch leases the next members of the event's queue to the batch.
func (a *Activities) ClaimBatch(ctx context.Context, in ClaimInput) (ClaimResult, error) {
	limit := in.Limit
	if a.BatchSize > 0 {
		limit = a.BatchSize
	}
	if limit < 1 {
		return ClaimResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("batch limit must be positive, got %d", limit), "BadInput", nil)
	}
	n, err := a.Store.ClaimBatch(ctx, in.EventID, in.Token, limit, a.Lease)
	if errors.Is(err, store.ErrBatchFinished) {
		a.log(ctx).Info("batch already committed or released (by an earlier attempt of this run, or by a stopping worker); going on to the next",
			"event_id", in.EventID, "batch", in.Token)
		return ClaimResult{Claimed: n, Finished: true}, nil
	}
	if err != nil {
		return ClaimResult{}, err
	}
	res := ClaimResult{Claimed: n}
	// With the cap on, ScoreBatch makes the assignment whole and reads no
	// shard: shards would only make every worker read the event first.
	if in.FanOutMin > 0 && n >= in.FanOutMin && a.ShardWorkers != nil && a.MaxAppearances <= 0 && a.shardsPay(ctx, in.EventID, n) {
		// A failed count only means no fan-out: the batch is scored whole.
		if res.ShardWorkers, err = a.ShardWorkers(ctx); err != nil {
			a.log(ctx).Warn("could not count the workers on the shard queue; scoring the batch whole", "error", err)
			res.ShardWorkers = 0
		}
	}
	if n > 0 {
		a.log(ctx).Info("claimed batch", "event_id", in.EventID, "batch", in.Token, "users", n, "shard_workers", res.ShardWorkers)
	}
	return res, nil
}

// shardsPay reports whether a batch of claimed members has pairs enough
// (claimed × the event's members, FanOutMinPairs) for shards on several
// workers to finish it sooner than one worker scoring it whole. A failed
// count means no: the batch is scored whole.
func (a *Activities) shardsPay(ctx context.Context, eventID string, claimed int) bool {
	if a.FanOutMinPairs <= 0 {
		return true
	}
	members, err := a.Store.EventMembers(ctx, eventID)
	if err != nil {
		a.log(ctx).Warn("could not count the event's members; scoring the batch whole", "error", err)
		return false
	}
	return int64(claimed)*int64(members) >= a.FanOutMinPairs
}

// WriteInsights gives every staged match of the batch an insight.
func (a *Activities) WriteInsights(ctx context.Context, in BatchRef) (InsightResult, error) {
	defer keepAlive(ctx)()
	if a.Insights == nil {
		// ScoreBatch staged the fallbacks as insights already (and
		// counted them); only rows staged otherwise are set here.
		applied, total, err := a.Store.ApplyFallbackInsights(ctx, in.Token)
		if err != nil {
			return InsightResult{}, err
		}
		res := InsightResult{Fallback: total}
		res.addFallbacks(FallbackNoAI, total)
		a.Metrics.InsightFallbacks(FallbackNoAI, applied)
		return res, nil
	}
	pending, err := a.Store.PendingInsights(ctx, in.EventID, in.Token)
	if err != nil {
		return InsightResult{}, err
	}
	insights, res, err := a.Insights.WriteInsights(ctx, pending)
	if err != nil {
		return InsightResult{}, fmt.Errorf("write insights for batch %s: %w", in.Token, err)
	}
	// Counted as soon as made: the calls cost the same if saving fails.
	a.Metrics.AIUsage(in.EventID, res.AICalls, res.CacheHits, res.PromptTokens, res.CompletionTokens)
	for _, rc := range res.FallbackReasons {
		a.Metrics.InsightFallbacks(rc.Reason, rc.Count)
	}
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, len(insights))
	}
	if err := a.Store.SaveInsights(ctx, in.Token, insights); err != nil {
		return InsightResult{}, err
	}
	a.log(ctx).Info("wrote insights", "event_id", in.EventID, "batch", in.Token,
		"ai", res.AI, "fallback", res.Fallback, "fallback_reasons", res.FallbackReasons,
		"ai_calls", res.AICalls, "cache_hits", res.CacheHits,
		"prompt_tokens", res.PromptTokens, "completion_tokens", res.CompletionTokens, "ai_latency_ms", res.AILatencyMS)
	return res, nil
}

// CommitBatch writes the batch's lists and removes its queue rows, fenced.
// When the database refuses some members' rows, it quarantines them and
// reports the batch stale, so that it is scored again without them and the
// rest of the batch commits.
func (a *Activities) CommitBatch(ctx context.Context, in BatchRef) (CommitResult, error) {
	res, err := a.Store.CommitBatch(ctx, in.EventID, in.Token)
	switch {
	case errors.Is(err, store.ErrBatchStale):
		a.log(ctx).Info("batch is stale, scoring again", "event_id", in.EventID, "batch", in.Token, "reason", err)
		return CommitResult{Stale: true}, nil
	case errors.Is(err, store.ErrRowsRefused):
		return a.quarantineRefused(ctx, in, err)
	case errors.Is(err, store.ErrLeaseLost):
		// A released batch loses its lease too; only its own worker, when
		// stopping, releases a batch that is still to commit.
		if finished, probeErr := a.Store.BatchFinished(ctx, in.Token); probeErr == nil && finished {
			a.log(ctx).Info("batch was released before its commit (its worker stopped); nothing written, the next claim takes its members",
				"event_id", in.EventID, "batch", in.Token)
			return a.releasedCommit(ctx, in.EventID), nil
		}
		return CommitResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeLeaseLost, err)
	case errors.Is(err, store.ErrBatchNotFound):
		return CommitResult{}, a.batchNotFound(ctx, in, err)
	case err != nil:
		return CommitResult{}, err
	}
	a.events.committed(in.EventID, res)
	a.log(ctx).Info("committed batch", "event_id", in.EventID, "batch", in.Token,
		"users", res.UsersCommitted, "requeued", res.UsersRequeued, "lists", res.ListsWritten,
		"lists_deferred", res.ListsDeferred, "ai_insights", res.AIInsights, "fallback_insights", res.FallbackInsights)
	a.Metrics.BatchCommitted(in.EventID, res.UsersCommitted)
	a.Metrics.SetQueueDepth(in.EventID, res.QueueDepth)
	a.Metrics.ListsDeferred(in.EventID, res.ListsDeferred)
	a.Metrics.SetQuarantined(in.EventID, res.Quarantined)
	if a.Insights != nil && res.FallbackInsights > 0 && a.StartBackfill != nil {
		// The lists are committed whatever happens here; a backfill not
		// started now is started by the event's next commit. Bounded, so
		// an unreachable Temporal frontend does not hold up the batch.
		startCtx, cancel := context.WithTimeout(ctx, startBackfillTimeout)
		err := a.StartBackfill(startCtx, in.EventID)
		cancel()
		if err != nil {
			a.log(ctx).Warn("could not start the AI backfill; the next commit tries again", "event_id", in.EventID, "error", err)
		}
	}
	return CommitResult{
		QueueDepth:       res.QueueDepth,
		UsersCommitted:   res.UsersCommitted,
		UsersRequeued:    res.UsersRequeued,
		ListsWritten:     res.ListsWritten,
		ListsDeferred:    res.ListsDeferred,
		QuarantinedTotal: res.Quarantined,
	}, nil
}

// quarantineRefused finds the members behind a refused commit and
// quarantines them. A refusal that no member explains (every list refused
// on its own: a missing privilege, a constraint nobody's rows meet) fails
// the batch for good, so the workflow releases it and backs off.
func (a *Activities) quarantineRefused(ctx context.Context, in BatchRef, refusal error) (CommitResult, error) {
	refused, err := a.Store.FindRefusedMembers(ctx, in.EventID, in.Token)
	if err != nil {
		return CommitResult{}, err
	}
	if len(refused) == 0 {
		return CommitResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the database refuses every list of the batch, so it is not about one member: %v", refusal),
			ErrTypeRowsRefused, refusal)
	}
	total, err := a.Store.QuarantineMembers(ctx, in.EventID, refused)
	if err != nil {
		return CommitResult{}, err
	}
	for _, m := range refused {
		a.log(ctx).Warn("quarantined a member whose rows the database refuses; the rest of the batch is scored again without them",
			"event_id", in.EventID, "batch", in.Token, "user_id", m.UserID, "reason", m.Reason)
	}
	a.Metrics.SetQuarantined(in.EventID, total)
	return CommitResult{Stale: true, Quarantined: len(refused), QuarantinedTotal: total}, nil
}

// batchNotFound explains the one way a batch the workflow claimed can be
// missing: this worker reads another database than the worker that claimed
// it.
func (a *Activities) batchNotFound(ctx context.Context, in BatchRef, err error) error {
	msg := fmt.Sprintf("batch %s of event %s is not in this worker's database (%s): "+
		"every worker on the task queue must use the same DATABASE_URL", in.Token, in.EventID, a.Store.Describe())
	a.log(ctx).Error(msg)
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeBatchNotFound, err)
}

// ReleaseBatch returns a batch's rows to the queue after the workflow gave
// up on it.
func (a *Activities) ReleaseBatch(ctx context.Context, in ReleaseInput) (int, error) {
	n, err := a.Store.ReleaseBatch(ctx, in.Token, in.Reason)
	if err != nil {
		return 0, err
	}
	a.log(ctx).Warn("released batch", "batch", in.Token, "users", n, "reason", in.Reason)
	return n, nil
}

func (a *Activities) log(ctx context.Context) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("workflow_id", info.WorkflowExecution.ID, "activity", info.ActivityType.Name, "attempt", info.Attempt)
	}
	return l
}
