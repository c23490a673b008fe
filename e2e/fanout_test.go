package e2e

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/workflows"
)

// TestOneEventAcrossThreeWorkers runs three worker processes on one event
// whose single batch is large enough to fan out: its shards must run on
// more than one worker, the merge must use them, and every list must equal
// what one worker computes from scratch.
func TestOneEventAcrossThreeWorkers(t *testing.T) {
	t.Parallel()
	// FAN_OUT_MIN_PAIRS=0: 3,000 × 3,000 pairs are far fewer than the
	// default asks of a batch before it is worth shards.
	e := newEnv(t, map[string]string{"BATCH_SIZE": "3000", "MAX_RUNTIME_MS": "45000", "FAN_OUT_MIN_PAIRS": "0"})
	pool := openPool(t, e.dbURL)
	eventID := loadEvent(t, pool, "fanout", demodata.Generate(41, 3000))
	for range 3 {
		e.startWorker()
	}
	// The claim counts the workers polling the shard queue when it runs:
	// enabled before the workers poll, the batch is scored whole.
	waitForShardPollers(t, workflows.ShardTaskQueue(e.taskQueue), 3)
	if out, errOut, code := e.starter("enable", "fanout", "--wait", "--timeout", "5m"); code != 0 {
		t.Fatalf("starter enable --wait exited %d: %s %s", code, out, errOut)
	}

	shardWorkers, merged := shardHistory(t, workflows.WorkflowID(eventID))
	t.Logf("shards per worker: %v; batches merged from shards: %d", shardWorkers, merged)
	if len(shardWorkers) < 2 {
		t.Errorf("shards ran on %d worker(s) %v, want more than one of three", len(shardWorkers), shardWorkers)
	}
	if merged == 0 {
		t.Errorf("no ScoreBatch merged its shards")
	}
	checkFromScratch(t, pool, eventID, nil, nil)
}

// waitForShardPollers waits until want worker processes poll queue.
func waitForShardPollers(t *testing.T, queue string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := suite.temporal.DescribeTaskQueue(context.Background(), queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			t.Fatalf("describe task queue %s: %v", queue, err)
		}
		identities := map[string]bool{}
		for _, p := range resp.GetPollers() {
			identities[p.GetIdentity()] = true
		}
		if len(identities) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d worker(s) poll %s after a minute, want %d", len(identities), queue, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shardHistory reads the workflow's history: the identities of the workers
// that ran ScoreShard activities, and how many ScoreBatch results say they
// merged shards.
func shardHistory(t *testing.T, workflowID string) (workers map[string]int, merged int) {
	t.Helper()
	ctx := context.Background()
	iter := suite.temporal.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	activityType := map[int64]string{}
	workers = map[string]int{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatalf("read history: %v", err)
		}
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			activityType[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			a := ev.GetActivityTaskStartedEventAttributes()
			if activityType[a.GetScheduledEventId()] == "ScoreShard" {
				workers[a.GetIdentity()]++
			}
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			a := ev.GetActivityTaskCompletedEventAttributes()
			if activityType[a.GetScheduledEventId()] != "ScoreBatch" {
				continue
			}
			var res activities.ScoreResult
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetResult(), &res); err != nil {
				t.Fatalf("decode a ScoreBatch result: %v", err)
			}
			if res.ShardsMerged {
				merged++
			}
		}
	}
	return workers, merged
}
