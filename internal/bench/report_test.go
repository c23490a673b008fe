package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAIRowLowerBound(t *testing.T) {
	small, _ := aiRowOf(500)
	big, _ := aiRowOf(4000)
	// 500: 32 calls in flight at 300 ms allow 106.7/s, 6000/min only 100/s.
	// 4,000: 32 at 200 ms allow 160/s, 20000/min 333/s.
	for _, c := range []struct {
		row        aiRow
		calls      float64
		perSecond  float64
		floorAfter float64
	}{{small, 1125, 100, 11.25}, {big, 9000, 160, 56.25}} {
		if got := c.row.callsPerSecond(); math.Abs(got-c.perSecond) > 1e-9 {
			t.Errorf("%d-member row: %v calls/s, want %v", c.row.members, got, c.perSecond)
		}
		if got := c.row.floor(c.calls); math.Abs(got-c.floorAfter) > 1e-9 {
			t.Errorf("%d-member row: %v calls take at least %v s, want %v", c.row.members, c.calls, got, c.floorAfter)
		}
	}
}

func TestAtLeastShare(t *testing.T) {
	for _, c := range []struct {
		ai, rows, percent int
		want              bool
	}{
		{1485, 1500, 99, true}, {1484, 1500, 99, false},
		{1499, 1500, 100, false}, {1500, 1500, 100, true},
		{0, 0, 99, false}, {0, 0, 100, false},
	} {
		if got := atLeastShare(c.ai, c.rows, c.percent); got != c.want {
			t.Errorf("%d of %d at least %d%%: %v, want %v", c.ai, c.rows, c.percent, got, c.want)
		}
	}
}

// aiRun is an AI run of row with the given times in seconds and backfill
// calls.
func aiRun(row aiRow, seed int64, listed, ai99, ai100 float64, calls int64) runResult {
	d := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return runResult{spec: runSpec{members: row.members, seed: seed, run: int(seed), ai: row},
		wall: d(listed), ai99: d(ai99), ai100: d(ai100), backfillCalls: calls, metricCalls: float64(calls),
		phase: phase{stepSeconds: map[string]float64{"commit": 0.1}}}
}

func TestAIReportRowsAndTargets(t *testing.T) {
	small, _ := aiRowOf(500)
	big, _ := aiRowOf(4000)
	r := &report{opts: options{Runs: 3, AI: true, AISizes: []int{500, 4000}}, aiRuns: []runResult{
		// Floors 11.25, 11 and 11.5 s; 100% AI ÷ floor 1.0667, 1.0455, 1.2174.
		aiRun(small, 1, 0.6, 11.5, 12, 1125),
		aiRun(small, 2, 0.5, 11, 11.5, 1100),
		aiRun(small, 3, 0.7, 13.5, 14, 1150),
		// Floor 56.25 s.
		aiRun(big, 1, 8, 301, 320, 9000),
	}}

	sums := summarize(r.aiRuns)
	if len(sums) != 2 || sums[0].row != small || sums[1].row != big || len(sums[0].runs) != 3 {
		t.Fatalf("summarized into %+v", sums)
	}
	s := sums[0]
	if s.wall != 0.6 || s.ai99 != 11.5 || s.ai100 != 12 || s.calls != 1125 || s.floor != 11.25 || math.Abs(s.ratio-12/11.25) > 1e-9 {
		t.Errorf("500-member medians %+v", s)
	}

	doc := r.markdown()
	for _, want := range []string{
		"| 500 | 300 ms | 32 | 6000 | 600 ms | 11.5 s | 12.0 s | 1,125 | 11.2 s | 1.07× |",
		"| 4,000 | 200 ms | 32 | 20000 | 8.00 s | 301.0 s | 320.0 s | 9,000 | 56.2 s | 5.69× |",
		"| 500 | 3 | 700 ms | 13.5 s | 14.0 s | 1,150 | 1,150 | 11.5 s | 1.22× |",
		"AI rows: 500 members at 300 ms per call and 4,000 at 200 ms, 3 runs each",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}

	statuses := map[string]string{}
	for _, tg := range r.targets() {
		statuses[tg.target] = tg.status
	}
	for target, want := range map[string]string{
		"4,000 members with AI at 200 ms per call: every member listed ≤ 10 s":                        "met",
		"4,000 members with AI at 200 ms per call: ≥ 99% of matches with an AI insight ≤ 5 min":       "**not met**",
		"500 members with AI at 300 ms per call: 100% AI no slower than before the backfill (12.2 s)": "met",
		"500 members with AI at 300 ms per call: 100% AI ≤ 20 s":                                      "met",
	} {
		if got, ok := statuses[target]; !ok || got != want {
			t.Errorf("target %q: %q, want %q (targets %v)", target, got, want, statuses)
		}
	}

	r.aiRuns = r.aiRuns[3:]
	for _, tg := range r.targets() {
		if strings.HasPrefix(tg.target, "500 members with AI") && tg.status != notMeasured {
			t.Errorf("target %q without a 500-member AI row: %q", tg.target, tg.status)
		}
	}
}

func TestParseAISizes(t *testing.T) {
	for _, name := range []string{"BENCH_SIZES", "BENCH_RUNS", "BENCH_AI", "BENCH_AI_SIZES", "BENCH_NEWCOMERS", "BENCH_SCALEOUT", "BENCH_TIMEOUT"} {
		t.Setenv(name, "")
	}
	if o, err := parseOptions(); err != nil || !slices.Equal(o.AISizes, []int{500, 4000}) {
		t.Fatalf("default AI rows: %v, %v", o.AISizes, err)
	}
	t.Setenv("BENCH_AI_SIZES", "4000,4000")
	if o, err := parseOptions(); err != nil || !slices.Equal(o.AISizes, []int{4000}) {
		t.Errorf("BENCH_AI_SIZES=4000,4000: %v, %v", o.AISizes, err)
	}
	t.Setenv("BENCH_AI", "0")
	if o, err := parseOptions(); err != nil || len(o.AISizes) != 0 {
		t.Errorf("BENCH_AI=0 still runs AI rows %v (%v)", o.AISizes, err)
	}
	t.Setenv("BENCH_AI", "")
	t.Setenv("BENCH_AI_SIZES", "700")
	if _, err := parseOptions(); err == nil {
		t.Error("BENCH_AI_SIZES=700, a size with no AI row, accepted")
	}
}
