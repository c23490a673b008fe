package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/matching"
)

// lowerBound is what no implementation can avoid: scoring every pair once
// on one core, and writing every member's list once.
type lowerBound struct {
	pairs    int64
	kernel   time.Duration // Pool.ScoreRun over all N·(N−1)/2 pairs, one goroutine
	rows     int
	copyTime time.Duration // COPY of N·TOP_N match-shaped rows, committed
}

func (l lowerBound) total() time.Duration { return l.kernel + l.copyTime }

// measureLowerBound times the scoring kernel over every pair of the run's
// event, then a COPY of N·topN rows shaped like matches rows, with
// realistic reasons and insights, into a scratch table with the matches
// table's indexes and checks, in the run's database.
func measureLowerBound(ctx context.Context, db *pgxpool.Pool, eventID string, members []attendee.Profile, topN int) (lowerBound, error) {
	n := len(members)
	pool := matching.NewPool(members)

	// Each member against those after it, through the fastest kernel
	// this machine has: the one the engine's passes use.
	scores := make([]float32, n)
	runtime.GC()
	start := time.Now()
	var sum float32
	for i := 0; i < n; i++ {
		run := scores[:n-i-1]
		pool.ScoreRun(i, i+1, run)
		if len(run) > 0 {
			sum += run[len(run)-1]
		}
	}
	lb := lowerBound{pairs: int64(n) * int64(n-1) / 2, kernel: time.Since(start)}
	runtime.KeepAlive(sum) // the loop's result is used, so it is never dropped

	// Every member "listed" with the next topN members: real reasons and
	// fallback insights, so rows have the size the engine writes.
	rows := make([][]any, 0, n*topN)
	for i := range n {
		for rank := 1; rank <= topN; rank++ {
			j := (i + rank) % n
			reasons := pool.Reasons(i, j)
			js, err := json.Marshal(reasons)
			if err != nil {
				return lb, err
			}
			rows = append(rows, []any{eventID, members[i].UserID, members[j].UserID, int16(rank), reasons.Score,
				string(js), matching.FallbackInsight(members[j].DisplayName, reasons), "fallback"})
		}
	}
	if _, err := db.Exec(ctx, `CREATE TABLE bench_lower_bound (LIKE matches INCLUDING ALL)`); err != nil {
		return lb, fmt.Errorf("scratch table: %w", err)
	}
	start = time.Now()
	copied, err := db.CopyFrom(ctx, pgx.Identifier{"bench_lower_bound"},
		[]string{"event_id", "user_id", "matched_user_id", "rank", "score", "reasons", "insight", "insight_source"},
		pgx.CopyFromRows(rows))
	lb.copyTime = time.Since(start)
	if err != nil {
		return lb, fmt.Errorf("COPY into the scratch table: %w", err)
	}
	lb.rows = int(copied)
	_, err = db.Exec(ctx, `DROP TABLE bench_lower_bound`)
	return lb, err
}
