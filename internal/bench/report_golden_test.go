package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current code")

// sec is s seconds as a duration.
func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// goldenRun is a plain run of members with every figure the report quotes
// derived from members and seed, so that the sizes and seeds differ.
func goldenRun(members int, seed int64, wall float64) runResult {
	n := float64(members) / 1000
	f := 1 + float64(seed)/10
	return runResult{
		spec:           runSpec{members: members, seed: seed, run: int(seed)},
		wall:           sec(wall),
		enableReturned: sec(0.0125 * f),
		phase: phase{
			stepSeconds: map[string]float64{"claim": 0.01 * n * f, "score": 0.05 * n * n * f, "insights": 0.012 * n, "commit": 0.03 * n * f, "release": 0.0004 * n},
			batches:     1 + members/2500,
			dispatch:    0.0031 * n * f,
			peakRSS:     int64(48e6 + 7.5e6*n*f),
		},
		matchRows:   members * 3,
		pairsScored: float64(members) * float64(members-1) / 2 * (1 + 0.05*f),
		lower: lowerBound{
			pairs:    int64(members) * int64(members-1) / 2,
			kernel:   sec(0.024 * n * n * f),
			rows:     members * 3,
			copyTime: sec(0.0057 * n * f),
		},
	}
}

// goldenReport is a default run with everything: three sizes of three
// seeds, the newcomers on the last largest run, the scale-out rows, both AI
// rows and the kernel's benchmarks.
func goldenReport() *report {
	small, _ := aiRowOf(500)
	big, _ := aiRowOf(4000)
	r := &report{
		opts:       options{Sizes: []int{500, 2000, 10000}, Runs: 3, AI: true, AISizes: []int{500, 4000}, Newcomers: 50, ScaleOut: 20000},
		command:    "make bench",
		postgresAt: "127.0.0.1:5432",
		engine:     config.Config{BatchSize: 10000, TopN: 3, WakeDebounce: 50 * time.Millisecond, MaxRuntimeMS: 45000},
		machine: machine{cpu: "AMD EPYC", cores: "2", memory: "23.5 GiB", goVersion: "go1.26.8 linux/amd64",
			postgres: "15.20 (Debian 15.20-0+deb12u1)", temporal: "0.0.0-DEV (Server 1.29.1, UI 2.42.1)", commit: "6393d9e",
			date: time.Date(2026, 12, 2, 8, 34, 29, 0, time.UTC), loadAvg: "6.91 6.18 6.45"},
		kernel: kernelResults{cpu: "AMD EPYC 7B13", benchmarks: []benchmark{
			{name: "BenchmarkScore", iterations: 34463154, values: map[string]float64{"ns/op": 32.4, "pairs/s": 30867779, "B/op": 0, "allocs/op": 0}},
			{name: "BenchmarkScoreRun", iterations: 83214, values: map[string]float64{"ns/op": 14312, "pairs/s": 349357178, "B/op": 0, "allocs/op": 0}},
			{name: "BenchmarkUpdate", iterations: 94, values: map[string]float64{"ns/op": 12911890, "claimed-pairs/s": 9679063, "B/op": 35289, "allocs/op": 45}},
			{name: "BenchmarkPool", iterations: 1200, values: map[string]float64{"ns/op": 987654.5, "B/op": 1234.5, "allocs/op": 7}},
		}},
		elapsed: 8*time.Minute + 26*time.Second + 400*time.Millisecond,
	}
	for _, c := range []struct {
		members int
		walls   []float64
	}{{500, []float64{0.322, 0.3105, 0.41}}, {2000, []float64{0.752, 0.8, 0.7}}, {10000, []float64{6.34, 6.1, 12.5}}} {
		for k, wall := range c.walls {
			r.runs = append(r.runs, goldenRun(c.members, int64(k+1), wall))
		}
	}
	last := &r.runs[len(r.runs)-1]
	last.spec.newcomers = 50
	for k := range 50 {
		last.newcomers = append(last.newcomers, time.Duration(3000+k*k*40)*time.Microsecond)
	}
	last.newcomer = phase{stepSeconds: map[string]float64{"claim": 0.041, "score": 0.2, "insights": 0.0, "commit": 0.33, "release": 0.0125},
		batches: 50, dispatch: 0.52, peakRSS: 131e6}
	for k, walls := range [][2]float64{{31.2, 17.1}, {30.4, 17.9}, {32.8, 16.8}} {
		for w, wall := range walls {
			run := goldenRun(20000, int64(k+1), wall)
			run.spec.workers, run.spec.oneCore, run.lower = w+1, true, lowerBound{}
			r.scaleRuns = append(r.scaleRuns, run)
		}
	}
	for k, t := range [][4]float64{{0.43, 11.5, 12, 1125}, {0.5, 11, 11.5, 1100}, {0.7, 13.5, 14, 1150}} {
		r.aiRuns = append(r.aiRuns, goldenAIRun(small, int64(k+1), t))
	}
	for k, t := range [][4]float64{{2.27, 290.5, 301, 9000}, {2.4, 310, 320, 9050}, {2.1, 280, 299.5, 8990}} {
		r.aiRuns = append(r.aiRuns, goldenAIRun(big, int64(k+1), t))
	}
	return r
}

// goldenAIRun is an AI run of row: listed, ≥ 99% AI and 100% AI in
// seconds, and the backfill's calls.
func goldenAIRun(row aiRow, seed int64, t [4]float64) runResult {
	run := goldenRun(row.members, seed, t[0])
	run.spec.ai, run.lower = row, lowerBound{}
	run.ai99, run.ai100, run.backfillCalls, run.metricCalls = sec(t[1]), sec(t[2]), int64(t[3]), t[3]+7
	run.stepSeconds["insights"] = 0.1 * float64(row.members) / 1000
	return run
}

// quickReport is a small run with other settings: one size of one seed,
// newcomers in an event below 10,000, no scale-out, no AI, no kernel
// result with a pairs rate.
func quickReport() *report {
	r := goldenReport()
	r.opts = options{Sizes: []int{2000}, Runs: 1, AI: false, Newcomers: 5}
	r.command = "BENCH_SIZES=2000 BENCH_RUNS=1 BENCH_AI=0 BENCH_NEWCOMERS=5 BENCH_SCALEOUT=0 go run ./internal/bench"
	r.engine.TopN, r.engine.WakeDebounce = 5, 200*time.Millisecond
	r.elapsed = 41*time.Second + 600*time.Millisecond
	r.kernel.benchmarks = r.kernel.benchmarks[3:]
	run := goldenRun(2000, 1, 0.5)
	run.spec.newcomers = 5
	run.newcomers = []time.Duration{4 * time.Millisecond, 7250 * time.Microsecond, 12 * time.Millisecond, 9 * time.Millisecond, 130 * time.Millisecond}
	run.newcomer = phase{stepSeconds: map[string]float64{"claim": 0.002, "score": 0.011, "commit": 0.02}, batches: 5, dispatch: 0.004, peakRSS: 61e6}
	r.runs, r.scaleRuns, r.aiRuns = []runResult{run}, nil, nil
	return r
}

// partialReport has the sizes but not 10,000, a single seed, only the
// 4,000-member AI row, one pair of scale-out runs and no newcomers.
func partialReport() *report {
	r := goldenReport()
	r.opts = options{Sizes: []int{500, 2000}, Runs: 1, AI: true, AISizes: []int{4000}, ScaleOut: 2000}
	r.command = "BENCH_SIZES=500,2000 BENCH_RUNS=1 BENCH_AI_SIZES=4000 BENCH_NEWCOMERS=0 BENCH_SCALEOUT=2000 make bench"
	r.elapsed = 59*time.Second + 700*time.Millisecond
	r.runs = []runResult{goldenRun(500, 1, 2.5), goldenRun(2000, 1, 10.25)}
	r.scaleRuns = r.scaleRuns[:2]
	r.aiRuns = r.aiRuns[4:5]
	return r
}

// TestReportGolden pins the report's every byte: the markdown and the
// targets of fixed inputs. go test -run TestReportGolden -update rewrites
// testdata/ from the current code.
func TestReportGolden(t *testing.T) {
	for _, name := range []string{"BATCH_SIZE", "TOP_N", "WAKE_DEBOUNCE", "MAX_RUNTIME_MS", "IDLE_POLL", "SAFETY_POLL", "LOG_LEVEL"} {
		t.Setenv(name, "")
	}
	for name, r := range map[string]*report{"full": goldenReport(), "quick": quickReport(), "partial": partialReport()} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(r.markdown())
			b.WriteString("\n\n---- targets ----\n")
			for _, tg := range r.targets() {
				fmt.Fprintf(&b, "%q %q %q\n", tg.target, tg.measured, tg.status)
			}
			got := b.String()
			path := filepath.Join("testdata", "report-"+name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestReportGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("report %s differs from %s (go test -run TestReportGolden -update rewrites it after a deliberate change):\n%s",
					name, path, firstDifference(string(want), got))
			}
		})
	}
}

// firstDifference quotes the first line where got departs from want.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}
