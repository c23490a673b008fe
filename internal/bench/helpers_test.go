package main

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestMedianAndPercentile(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values = %v, want 2.5", got)
	}
	values := make([]float64, 50)
	for i := range values {
		values[i] = float64(50 - i) // 50 … 1
	}
	for p, want := range map[float64]float64{50: 25, 95: 48, 100: 50, 1: 1} {
		if got := percentile(values, p); got != want {
			t.Errorf("p%v of 1…50 = %v, want %v", p, got, want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics([]byte(`# HELP matchmaking_batch_duration_seconds Duration.
# TYPE matchmaking_batch_duration_seconds histogram
matchmaking_batch_duration_seconds_bucket{step="claim",le="0.005"} 1
matchmaking_batch_duration_seconds_bucket{step="claim",le="+Inf"} 2
matchmaking_batch_duration_seconds_sum{step="claim"} 0.25
matchmaking_batch_duration_seconds_count{step="claim"} 2
matchmaking_batch_duration_seconds_bucket{step="score",le="+Inf"} 4
matchmaking_batch_duration_seconds_sum{step="score"} 1.5e+00
matchmaking_batch_duration_seconds_count{step="score"} 4
# TYPE matchmaking_ai_calls_total counter
matchmaking_ai_calls_total{event_id="a"} 10
matchmaking_ai_calls_total{event_id="b"} 5 1700000000000
# TYPE matchmaking_insight_fallbacks_total counter
matchmaking_insight_fallbacks_total{reason="odd \"quoted\", with spaces"} 2
go_goroutines 42
`))
	if err != nil {
		t.Fatal(err)
	}
	sums := m.byLabel("matchmaking_batch_duration_seconds", "step")
	if sums["claim"] != 0.25 || sums["score"] != 1.5 {
		t.Errorf("step sums %v", sums)
	}
	if counts := m.countByLabel("matchmaking_batch_duration_seconds", "step"); counts["claim"] != 2 || counts["score"] != 4 {
		t.Errorf("step counts %v", counts)
	}
	if got := m.sum("matchmaking_ai_calls_total"); got != 15 {
		t.Errorf("ai calls %v, want 15", got)
	}
	if got := m.byLabel("matchmaking_insight_fallbacks_total", "reason")[`odd "quoted", with spaces`]; got != 2 {
		t.Errorf("escaped label value not parsed: %v", m.byLabel("matchmaking_insight_fallbacks_total", "reason"))
	}
	if got := m.sum("go_goroutines"); got != 42 {
		t.Errorf("unlabelled sample %v, want 42", got)
	}
	if _, err := parseMetrics([]byte(`broken{step="claim" 1`)); err == nil {
		t.Error("an unterminated label set parsed")
	}
}

func TestParseBenchOutput(t *testing.T) {
	k, err := parseBenchOutput(`goos: linux
cpu: Intel(R) Xeon(R) Processor
BenchmarkScore-2    	34463154	        32.40 ns/op	  30867779 pairs/s	       0 B/op	       0 allocs/op
BenchmarkUpdate-2   	      94	  12911890 ns/op	   9679063 claimed-pairs/s	   35289 B/op	      45 allocs/op
PASS
`)
	if err != nil {
		t.Fatal(err)
	}
	if k.cpu != "Intel(R) Xeon(R) Processor" || len(k.benchmarks) != 2 {
		t.Fatalf("parsed %+v", k)
	}
	score := k.benchmarks[0]
	if rate, unit, _ := score.pairsPerSecond(); score.name != "BenchmarkScore" || rate != 30867779 || unit != "pairs/s" || score.values["allocs/op"] != 0 {
		t.Errorf("BenchmarkScore parsed as %+v", score)
	}
	if _, unit, _ := k.benchmarks[1].pairsPerSecond(); unit != "claimed-pairs/s" {
		t.Errorf("BenchmarkUpdate rate unit %q", unit)
	}
}

func TestSpliceGeneratedKeepsHandWrittenText(t *testing.T) {
	doc := "# Performance\n\nintro\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## Notes\n\nby hand\n"
	got, err := spliceGenerated(doc, "new figures\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Performance\n\nintro\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\n## Notes\n\nby hand\n"
	if got != want {
		t.Errorf("spliced:\n%s\nwant:\n%s", got, want)
	}
	if _, err := spliceGenerated(strings.ReplaceAll(doc, endMarker, ""), "x"); err == nil {
		t.Error("a document without the end marker was accepted")
	}
}

func TestVmHWMOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is read from Linux's /proc")
	}
	got, err := vmHWM(os.Getpid())
	if err != nil || got < 1<<20 {
		t.Errorf("vmHWM of the test process = %d, %v; want at least a megabyte", got, err)
	}
}

func TestParseOptions(t *testing.T) {
	for _, name := range []string{"BENCH_SIZES", "BENCH_RUNS", "BENCH_AI", "BENCH_NEWCOMERS", "BENCH_SCALEOUT", "BENCH_TIMEOUT"} {
		t.Setenv(name, "")
	}
	o, err := parseOptions()
	if err != nil || !slices.Equal(o.Sizes, defaultSizes) || o.Runs != defaultRuns || o.AI != defaultAI || o.ScaleOut != defaultScaleOut {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	t.Setenv("BENCH_SIZES", "2000,500,2000")
	t.Setenv("BENCH_AI", "0")
	t.Setenv("BENCH_SCALEOUT", "0")
	if o, err = parseOptions(); err != nil || !slices.Equal(o.Sizes, []int{500, 2000}) || o.AI || o.ScaleOut != 0 {
		t.Errorf("BENCH_SIZES=2000,500,2000 BENCH_AI=0 BENCH_SCALEOUT=0: %+v, %v", o, err)
	}
	for name, bad := range map[string]string{"BENCH_SIZES": "500,5", "BENCH_RUNS": "0", "BENCH_AI": "maybe", "BENCH_TIMEOUT": "-1s"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, bad)
			if _, err := parseOptions(); err == nil {
				t.Errorf("%s=%s accepted", name, bad)
			}
		})
	}
}
