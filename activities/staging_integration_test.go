package activities

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// TestBatchScoredAgainWhenItsStagingIsLost: the staging table is unlogged,
// so a database crash between a batch's scoring and its commit empties
// it (TRUNCATE is what crash recovery does to an unlogged table). The
// commit must then write nothing and report the batch stale, and the batch
// scored again must commit every list, with the cap on and off.
func TestBatchScoredAgainWhenItsStagingIsLost(t *testing.T) {
	testenv.RequireIntegration(t)
	t.Parallel()
	for _, maxAppearances := range []int{0, 4} {
		t.Run(fmt.Sprintf("max_appearances=%d", maxAppearances), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, eventID := newEnabledEvent(t, "lost", demodata.Generate(41, 120))
			acts := &Activities{Store: st, TopN: 3, MaxAppearances: maxAppearances, Lease: time.Minute}
			ref := BatchRef{EventID: eventID, Token: "lost/1"}
			var claim ClaimResult
			runActivity(t, acts, acts.ClaimBatch, ClaimInput{EventID: eventID, Token: ref.Token, Limit: 1000}, &claim)
			if claim.Claimed != 120 {
				t.Fatalf("claimed %d, want 120", claim.Claimed)
			}

			var score ScoreResult
			runActivity(t, acts, acts.ScoreBatch, ref, &score)
			runActivity(t, acts, acts.WriteInsights, ref, nil)
			if _, err := st.Pool().Exec(ctx, `TRUNCATE matchmaking_staged_matches`); err != nil {
				t.Fatal(err)
			}
			var commit CommitResult
			runActivity(t, acts, acts.CommitBatch, ref, &commit)
			if !commit.Stale {
				t.Fatalf("commit after the staging was lost: %+v, want stale", commit)
			}
			var written, queued int
			if err := st.Pool().QueryRow(ctx, `
				SELECT (SELECT count(*) FROM matches WHERE event_id = $1),
				       (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1)`, eventID).Scan(&written, &queued); err != nil {
				t.Fatal(err)
			}
			if written != 0 || queued != 120 {
				t.Fatalf("after the stale commit: %d matches written, %d members queued; want 0 and 120", written, queued)
			}

			runActivity(t, acts, acts.ScoreBatch, ref, &score)
			runActivity(t, acts, acts.WriteInsights, ref, nil)
			runActivity(t, acts, acts.CommitBatch, ref, &commit)
			if commit.Stale || commit.UsersCommitted != 120 {
				t.Fatalf("commit after scoring again: %+v, want all 120 members committed", commit)
			}
			assertViewIsWholeRead(t, acts, st, ref)
			if maxAppearances > 0 {
				assertCappedAssignment(t, st, eventID, 3, maxAppearances)
				return
			}
			assertTrueTopN(t, st, eventID, 3)
		})
	}
}
