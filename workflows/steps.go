package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/eventmatch/matchmaker/activities"
)

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
			HeartbeatTimeout:    activities.HeartbeatTimeout,
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

// longOptions are for steps that heartbeat (keepAlive): a frozen worker's
// attempt is retried elsewhere after HeartbeatTimeout, not after the whole
// budget. Timeouts are not part of what replay compares, so runs recorded
// without it replay unchanged.
func (r *run) longOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: r.s.MaxRuntime,
		HeartbeatTimeout:    activities.HeartbeatTimeout,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
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

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
