package activities

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// TestShardedBatchMatchesTrueTopN scores a batch in three shards, each on
// its own Activities (as on three workers, with three caches), merges them
// on a fourth and checks every list against a fresh top-N. A second batch
// has a member join between its shards and the merge: the merge must see
// that and score the batch itself.
func TestShardedBatchMatchesTrueTopN(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	ctx := context.Background()
	everyone := demodata.Generate(31, 260)
	st, eventID := newEnabledEvent(t, "shards", everyone[:200])
	workers := make([]*Activities, 4)
	for k := range workers {
		workers[k] = &Activities{Store: st, TopN: 3, Lease: time.Minute}
	}
	run := func(acts *Activities, fn, arg, out any) {
		t.Helper()
		runActivity(t, acts, fn, arg, out)
	}
	batch := func(token string, between func()) ScoreResult {
		t.Helper()
		merger := workers[3]
		var claim ClaimResult
		run(merger, merger.ClaimBatch, ClaimInput{EventID: eventID, Token: token, Limit: 1000}, &claim)
		if claim.Claimed == 0 {
			t.Fatalf("%s claimed nobody", token)
		}
		scored := 0
		for k := range 3 {
			var res ShardResult
			run(workers[k], workers[k].ScoreShard, ShardRef{EventID: eventID, Token: token, Shard: k, Shards: 3}, &res)
			scored += res.Scored
		}
		if scored < claim.Claimed {
			t.Errorf("%s: shards scored %d members, the batch claimed %d", token, scored, claim.Claimed)
		}
		between()
		ref := BatchRef{EventID: eventID, Token: token, Shards: 3}
		var score ScoreResult
		run(merger, merger.ScoreBatch, ref, &score)
		run(merger, merger.WriteInsights, ref, nil)
		var commit CommitResult
		run(merger, merger.CommitBatch, ref, &commit)
		if commit.Stale {
			t.Fatalf("%s stale", token)
		}
		return score
	}

	if res := batch("shards/1", func() {}); !res.ShardsMerged {
		t.Errorf("the first batch's shards were not merged")
	}
	assertTrueTopN(t, st, eventID, 3)

	if _, err := st.InsertMembers(ctx, eventID, everyone[200:240]); err != nil {
		t.Fatal(err)
	}
	res := batch("shards/2", func() {
		if _, err := st.InsertMembers(ctx, eventID, everyone[240:241]); err != nil {
			t.Fatal(err)
		}
	})
	if res.ShardsMerged {
		t.Errorf("shards scored before a member joined were merged after it")
	}
	for k := 3; ; k++ { // the late member's own batch
		var claim ClaimResult
		token := fmt.Sprintf("shards/%d", k)
		run(workers[3], workers[3].ClaimBatch, ClaimInput{EventID: eventID, Token: token, Limit: 1000}, &claim)
		if claim.Claimed == 0 {
			break
		}
		ref := BatchRef{EventID: eventID, Token: token}
		run(workers[3], workers[3].ScoreBatch, ref, nil)
		run(workers[3], workers[3].WriteInsights, ref, nil)
		run(workers[3], workers[3].CommitBatch, ref, nil)
	}
	assertTrueTopN(t, st, eventID, 3)
	if n := countRows(t, st, `SELECT count(*) FROM matchmaking_batch_shards`); n != 0 {
		t.Errorf("%d shards left after the commits", n)
	}
}

func countRows(t *testing.T, st *store.Store, query string) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A large claim counts the workers on the shard queue, so the workflow
// fans the batch out, only without the cap (with it, ScoreBatch makes the
// assignment whole and shards would only read the event on every worker)
// and only when the batch has pairs enough for shards to pay.
func TestClaimFansOutOnlyWithoutTheCap(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	// 20 claimed members of an event of 20: 400 pairs.
	for _, tc := range []struct {
		maxAppearances   int
		minPairs         int64
		wantShardWorkers int
	}{
		{maxAppearances: 0, wantShardWorkers: 3},
		{maxAppearances: 6, wantShardWorkers: 0},
		{maxAppearances: 0, minPairs: 400, wantShardWorkers: 3},
		{maxAppearances: 0, minPairs: 401, wantShardWorkers: 0},
	} {
		t.Run(fmt.Sprint("max appearances ", tc.maxAppearances, ", min pairs ", tc.minPairs), func(t *testing.T) {
			t.Parallel()
			st, eventID := newEnabledEvent(t, "fan-out", demodata.Generate(37, 20))
			acts := &Activities{Store: st, TopN: 3, MaxAppearances: tc.maxAppearances, Lease: time.Minute, FanOutMinPairs: tc.minPairs,
				ShardWorkers: func(context.Context) (int, error) { return 3, nil }}
			var claim ClaimResult
			runActivity(t, acts, acts.ClaimBatch, ClaimInput{EventID: eventID, Token: "fan-out/1", Limit: 100, FanOutMin: 10}, &claim)
			if claim.Claimed != 20 || claim.ShardWorkers != tc.wantShardWorkers {
				t.Errorf("claimed %d with %d shard workers, want 20 with %d", claim.Claimed, claim.ShardWorkers, tc.wantShardWorkers)
			}
		})
	}
}
