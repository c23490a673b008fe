package matching_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

const (
	capBenchSize = 10_000
	capBenchN    = 3
	capBenchCap  = 2 * capBenchN
)

// fullUpdate is the first batch of an event: every member scored against
// everyone, with the reserves the engine keeps.
func fullUpdate(b *testing.B, pool *matching.Pool) ([][]matching.Entry, []matching.Reserve) {
	b.Helper()
	lists := make([][]matching.Entry, pool.Len())
	reserves := make([]matching.Reserve, pool.Len())
	all := make([]int, pool.Len())
	for v := range all {
		all[v] = v
	}
	if _, _, err := pool.UpdateReserved(context.Background(), lists, reserves, all, capBenchN, matching.ReserveDepth); err != nil {
		b.Fatal(err)
	}
	return lists, reserves
}

// BenchmarkCappedLists is what the cap adds to a full match of 10,000
// members: the assignment, starting from the reserves the full update left
// (its scoring is not counted). It reports the quality of the result
// against the uncapped top-N too.
func BenchmarkCappedLists(b *testing.B) {
	pool := matching.NewPool(demodata.Generate(1, capBenchSize))
	uncapped, reserves := fullUpdate(b, pool)
	// A cap of everyone is no cap: the uncapped top N, for comparison.
	for _, maxAppearances := range []int{capBenchSize, capBenchCap, capBenchN + 1, capBenchN} {
		b.Run(fmt.Sprintf("cap=%d", maxAppearances), func(b *testing.B) {
			var lists [][]matching.Entry
			var stats matching.CapStats
			for b.Loop() {
				var err error
				if lists, stats, err = pool.CappedLists(context.Background(), capBenchN, maxAppearances, reserves); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(stats.Scans), "scans/op")
			b.ReportMetric(float64(stats.Proposals), "proposals/op")
			reportQuality(b, pool, lists, uncapped)
		})
	}
}

// BenchmarkRepairCappedNewcomer is RepairFairShare after one member joins
// a capped event of 10,000 members (a different one each time, from 32),
// from the lists alone: every viewer it wakes is ranked anew. The engine
// repairs through Assign, from the rankings it kept
// (BenchmarkAssignCappedNewcomer).
func BenchmarkRepairCappedNewcomer(b *testing.B) {
	const newcomers = 32
	profiles := demodata.Generate(1, capBenchSize+newcomers)
	pool := matching.NewPool(profiles[:capBenchSize])
	_, reserves := fullUpdate(b, pool)
	lists, _, err := pool.CappedLists(context.Background(), capBenchN, capBenchCap, reserves)
	if err != nil {
		b.Fatal(err)
	}
	type step struct {
		pool  *matching.Pool
		lists [][]matching.Entry
		added int
	}
	steps := make([]step, newcomers)
	for k := range steps {
		next, _, err := pool.Apply(context.Background(), profiles[capBenchSize+k:capBenchSize+k+1], nil)
		if err != nil {
			b.Fatal(err)
		}
		moved := append(slices.Clone(lists), nil)
		steps[k] = step{pool: next, lists: moved, added: next.Len() - 1}
	}
	scans, proposals, rewritten := 0, 0, 0
	b.ResetTimer()
	k := 0
	for b.Loop() {
		s := steps[k%newcomers]
		k++
		lists := slices.Clone(s.lists)
		changed, stats, err := s.pool.RepairFairShare(context.Background(), lists, matching.CapChanges{Changed: []int{s.added}}, capBenchN, nil)
		if err != nil {
			b.Fatal(err)
		}
		scans += stats.Scans
		proposals += stats.Proposals
		rewritten += len(changed)
	}
	b.ReportMetric(float64(scans)/float64(k), "scans/op")
	b.ReportMetric(float64(proposals)/float64(k), "proposals/op")
	b.ReportMetric(float64(rewritten)/float64(k), "lists-rewritten/op")
}

// BenchmarkAssignCappedNewcomer is the engine's path for a newcomer's
// batch in a capped event of 10,000 members: Assign repairing the state
// it kept (fair share, rankings and fill) after one member joins. "first"
// repairs the state of the full match for one of 32 newcomers each time;
// "chained" lets 32 newcomers join one after another, each repair
// starting from the state the previous one left, as a worker does, and
// reports the time per newcomer.
func BenchmarkAssignCappedNewcomer(b *testing.B) {
	const newcomers = 32
	ctx := context.Background()
	profiles := demodata.Generate(1, capBenchSize+newcomers)
	base := matching.NewPool(profiles[:capBenchSize])
	state, _, _, err := base.Assign(ctx, nil, capBenchN, capBenchCap)
	if err != nil {
		b.Fatal(err)
	}
	// pools[k] is the event once newcomers 0..k joined, with what each
	// Apply moved (nobody leaves, so nothing does).
	pools := make([]*matching.Pool, newcomers)
	moves := make([][]int, newcomers)
	firsts := make([]*matching.Pool, newcomers)
	firstMoves := make([][]int, newcomers)
	for k := range newcomers {
		joining := profiles[capBenchSize+k : capBenchSize+k+1]
		if firsts[k], firstMoves[k], err = base.Apply(ctx, joining, nil); err != nil {
			b.Fatal(err)
		}
		from := base
		if k > 0 {
			from = pools[k-1]
		}
		if pools[k], moves[k], err = from.Apply(ctx, joining, nil); err != nil {
			b.Fatal(err)
		}
	}
	assign := func(pool *matching.Pool, prev *matching.CapState) (*matching.CapState, matching.CapStats) {
		next, repaired, stats, err := pool.Assign(ctx, prev, capBenchN, capBenchCap)
		if err != nil || !repaired {
			b.Fatalf("repaired %v, %v", repaired, err)
		}
		return next, stats
	}
	b.Run("first", func(b *testing.B) {
		scans, proposals, k := 0, 0, 0
		for b.Loop() {
			_, stats := assign(firsts[k%newcomers], state.Moved(firstMoves[k%newcomers], firsts[k%newcomers].Len()))
			scans, proposals, k = scans+stats.Scans, proposals+stats.Proposals, k+1
		}
		b.ReportMetric(float64(scans)/float64(k), "scans/op")
		b.ReportMetric(float64(proposals)/float64(k), "proposals/op")
	})
	b.Run("chained", func(b *testing.B) {
		scans, proposals, k := 0, 0, 0
		var last *matching.CapState
		for b.Loop() {
			s := state
			for j, pool := range pools {
				var stats matching.CapStats
				s, stats = assign(pool, s.Moved(moves[j], pool.Len()))
				scans, proposals, k = scans+stats.Scans, proposals+stats.Proposals, k+1
			}
			last = s
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(k), "ns/newcomer")
		b.ReportMetric(float64(state.RankedEntries())/float64(len(state.Lists())), "ranked/member-before")
		b.ReportMetric(float64(last.RankedEntries())/float64(len(last.Lists())), "ranked/member-after")
		b.ReportMetric(float64(scans)/float64(k), "scans/newcomer")
		b.ReportMetric(float64(proposals)/float64(k), "proposals/newcomer")
	})
}

// reportQuality reports what issue 11 measures: the share of members in at
// least one list, the most-listed member, the Gini of appearances, the
// share of full lists, and the total score kept against uncapped top-N.
func reportQuality(b *testing.B, pool *matching.Pool, lists, uncapped [][]matching.Entry) {
	appearances := make([]float64, pool.Len())
	full := 0
	var score, uncappedScore float64
	for v, list := range lists {
		if len(list) == capBenchN {
			full++
		}
		for _, e := range list {
			appearances[e.Other]++
			score += float64(e.Score)
		}
		for _, e := range uncapped[v] {
			uncappedScore += float64(e.Score)
		}
	}
	listed, most := 0, 0.0
	for _, a := range appearances {
		if a > 0 {
			listed++
		}
		most = max(most, a)
	}
	slices.Sort(appearances)
	var weighted, total float64
	for i, a := range appearances {
		weighted += float64(i+1) * a
		total += a
	}
	size := float64(len(appearances))
	gini := (2*weighted)/(size*total) - (size+1)/size
	b.ReportMetric(100*float64(listed)/size, "%listed")
	b.ReportMetric(most, "most-listed")
	b.ReportMetric(gini, "gini")
	b.ReportMetric(100*float64(full)/size, "%full")
	b.ReportMetric(100*score/uncappedScore, "%score-kept")
}

// BenchmarkFullMatch is a first full match of 10,000 members: every
// member's top N with reserves (the uncapped path), against the capped
// assignment from scratch (ranking everyone as deep as the reserves in
// the same one pass, then assigning).
func BenchmarkFullMatch(b *testing.B) {
	pool := matching.NewPool(demodata.Generate(1, capBenchSize))
	b.Run("uncapped", func(b *testing.B) {
		for b.Loop() {
			fullUpdate(b, pool)
		}
	})
	b.Run(fmt.Sprintf("cap=%d", capBenchCap), func(b *testing.B) {
		var stats matching.CapStats
		for b.Loop() {
			var err error
			if _, stats, err = pool.CappedLists(context.Background(), capBenchN, capBenchCap, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(stats.Scans), "scans/op")
		b.ReportMetric(float64(stats.Proposals), "proposals/op")
	})
}
