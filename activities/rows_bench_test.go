package activities

import (
	"context"
	"testing"

	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/matching"
)

// BenchmarkStagedRows builds the staged rows (reasons, their JSON, the
// fallback insight) of every list of a 10,000-member event, on one core,
// as the merging worker of a sharded batch does:
//
//	go test -run '^$' -bench StagedRows -cpu 1 ./activities/
func BenchmarkStagedRows(b *testing.B) {
	const size, topN = 10_000, 3
	pool, err := matching.NewPoolContext(context.Background(), demodata.Generate(1, size))
	if err != nil {
		b.Fatal(err)
	}
	plan := &batchPlan{pool: pool, lists: make([][]matching.Entry, size)}
	for v := range size {
		plan.lists[v] = pool.TopN(v, topN)
		plan.viewers = append(plan.viewers, v)
	}
	b.ResetTimer()
	rows := 0
	for b.Loop() {
		built, err := plan.rowsOf(plan.viewers)
		if err != nil {
			b.Fatal(err)
		}
		rows = len(built)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
