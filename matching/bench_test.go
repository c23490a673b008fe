package matching_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// benchPoolSize is a large event; benchListLen a typical top-N.
const (
	benchPoolSize = 5000
	benchListLen  = 20
)

func benchPool(b *testing.B) *matching.Pool {
	b.Helper()
	return matching.NewPool(demoProfiles(1, benchPoolSize))
}

func reportPairsPerSecond(b *testing.B, pairs int) {
	b.ReportMetric(float64(pairs)/b.Elapsed().Seconds(), "pairs/s")
}

func BenchmarkScore(b *testing.B) {
	pool := benchPool(b)
	b.ReportAllocs()
	var sum float32 // keeps the calls from being optimized away
	pairs, i, j := 0, 0, 1
	for b.Loop() {
		sum += pool.Score(i, j)
		pairs++
		if j++; j == pool.Len() {
			i, j = (i+1)%pool.Len(), 0
		}
	}
	reportPairsPerSecond(b, pairs)
	_ = sum
}

// BenchmarkScoreRun scores one member against the whole event per
// iteration, through the kernel the engine's passes use (ScoreRun); its
// pairs/s against BenchmarkScore's is what that kernel buys here.
func BenchmarkScoreRun(b *testing.B) {
	pool := benchPool(b)
	b.ReportAllocs()
	out := make([]float32, pool.Len())
	pairs, i := 0, 0
	for b.Loop() {
		pool.ScoreRun(i, 0, out)
		pairs += pool.Len()
		i = (i + 1) % pool.Len()
	}
	reportPairsPerSecond(b, pairs)
}

// BenchmarkTopN is a full recompute of one viewer's list: every candidate
// scored plus the bounded top-N upkeep.
func BenchmarkTopN(b *testing.B) {
	pool := benchPool(b)
	b.ReportAllocs()
	pairs, viewer := 0, 0
	for b.Loop() {
		pool.TopN(viewer, benchListLen)
		pairs += pool.Len() - 1
		viewer = (viewer + 1) % pool.Len()
	}
	reportPairsPerSecond(b, pairs)
}

// BenchmarkUpdate processes one batch of claimed members against stored
// lists that are all valid: validation of every list, TopN per claimed
// member, and the insert pass over all other lists.
func BenchmarkUpdate(b *testing.B) {
	const batch = 25
	pool := benchPool(b)
	stored := make([][]matching.Entry, pool.Len())
	for v := range stored {
		stored[v] = pool.TopN(v, benchListLen)
	}
	claimed := make([]int, batch)
	lists := make([][]matching.Entry, pool.Len())
	b.ReportAllocs()
	pairs, next := 0, 0
	for b.Loop() {
		copy(lists, stored)
		for k := range claimed {
			claimed[k] = (next + k*197) % pool.Len()
		}
		next++
		pool.Update(lists, claimed, benchListLen)
		pairs += batch * (pool.Len() - 1)
	}
	b.ReportMetric(float64(pairs)/b.Elapsed().Seconds(), "claimed-pairs/s")
}

// BenchmarkApplyNewcomer is the cached pool taking one newcomer, what a
// one-member batch pays instead of rebuilding the pool.
func BenchmarkApplyNewcomer(b *testing.B) {
	for _, size := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			profiles := demodata.Generate(1, size+1)
			pool := matching.NewPool(profiles[:size])
			newcomer := []attendee.Profile{profiles[size]}
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := pool.Apply(context.Background(), newcomer, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
