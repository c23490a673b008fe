// Command bench measures the matchmaking engine end to end on this machine
// and writes the figures into docs/PERFORMANCE.md (between the
// <!-- bench:begin --> and <!-- bench:end --> markers; the rest of the file
// is left as written by hand).
//
// It runs the real thing: the local PostgreSQL, the Temporal dev server of
// bin/temporal (started with the SDK's testsuite.StartDevServer on a free
// port), and the real bin/worker and bin/starter processes. Every run gets
// a fresh database (internal/testenv creates and migrates it), a fresh
// generated event and a fresh worker; the clock starts when `starter
// enable` is launched and stops when the bench's own 20 ms poll sees every
// member matched and the queue empty. An AI row (see aiRows) runs the
// worker against a fake model and also times the AI backfill: from the same
// launch until 99% and then 100% of the event's matches have an AI insight.
//
//	make bench                                  # the default run (see defaultSizes)
//	BENCH_SIZES=500,2000,10000 BENCH_AI=1 make bench   # the full run
//	BENCH_AI_SIZES=500 make bench               # only the 500-member AI row
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v10"
)

var (
	// defaultAI is whether the default run has the AI row; a variable, so
	// that comparing a run's setting with it reads as the comparison it is.
	defaultAI      = true
	defaultSizes   = []int{500, 2000, 10000} // the default run's event sizes
	defaultAISizes = []int{500, 4000}        // the default run's AI rows
)

// Defaults of the bench. The default run takes about five minutes on a
// 2-core machine, more than half of it the 4,000-member AI row, which issue
// 13 wants in every `make bench`; docs/PERFORMANCE.md says what it covers.
const (
	defaultRuns      = 3
	defaultNewcomers = 50
	// defaultScaleOut is the event of the scale-out rows: one worker, then
	// two, each limited to one core.
	defaultScaleOut = 20000
	defaultTimeout  = 5 * time.Minute
	defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultDoc      = "docs/PERFORMANCE.md"
	// minMembers keeps every member's list fillable.
	minMembers = 10
)

// aiRow is one AI row: the event's size, the fake model's latency and the
// limits the worker is given, all stated in the report.
type aiRow struct {
	members           int
	latency           time.Duration
	concurrency       int // AI_CONCURRENCY
	requestsPerMinute int // AI_REQUESTS_PER_MINUTE
}

// aiRows are the AI rows BENCH_AI_SIZES chooses from, by members: the
// 500-member row the bench has always had, and issue 13's 4,000 members at
// 200 ms with the limits raised.
var aiRows = []aiRow{
	{members: 500, latency: 300 * time.Millisecond, concurrency: 32, requestsPerMinute: 6000},
	{members: 4000, latency: 200 * time.Millisecond, concurrency: 32, requestsPerMinute: 20000},
}

// callsPerSecond is the most model calls per second the worker's limits
// allow: AI_CONCURRENCY calls in flight, each taking the model's latency,
// and no more than AI_REQUESTS_PER_MINUTE.
func (r aiRow) callsPerSecond() float64 {
	return min(float64(r.concurrency)/r.latency.Seconds(), float64(r.requestsPerMinute)/60)
}

// floor is the least time calls model calls can take under the row's
// limits, in seconds.
func (r aiRow) floor(calls float64) float64 { return calls / r.callsPerSecond() }

// aiRowOf is the AI row of members.
func aiRowOf(members int) (aiRow, bool) {
	for _, r := range aiRows {
		if r.members == members {
			return r, true
		}
	}
	return aiRow{}, false
}

// options are the bench's settings, from the environment; a variable left
// unset keeps the default above.
type options struct {
	Sizes      []int         `env:"BENCH_SIZES"`        // comma-separated event sizes
	Runs       int           `env:"BENCH_RUNS"`         // runs per size; the report quotes medians
	AI         bool          `env:"BENCH_AI"`           // also run the AI rows (fake model); 0 runs none
	AISizes    []int         `env:"BENCH_AI_SIZES"`     // which AI rows run, by members (see aiRows)
	Newcomers  int           `env:"BENCH_NEWCOMERS"`    // newcomers inserted one at a time into the largest event
	ScaleOut   int           `env:"BENCH_SCALEOUT"`     // members of the scale-out rows (one worker vs two, one core each); 0 skips them
	RunTimeout time.Duration `env:"BENCH_TIMEOUT"`      // a run not fully matched (AI rows: not 100% AI) this long after enable fails the bench
	AdminURL   string        `env:"BENCH_DATABASE_URL"` // PostgreSQL server to create the run databases on
	Doc        string        `env:"BENCH_DOC"`          // file to write the report into; - for none
	KeepLogs   bool          `env:"BENCH_KEEP_LOGS"`    // keep the processes' logs even when the bench succeeds
	BinDir     string        `env:"BENCH_BIN"`          // directory holding worker, starter and temporal
	GoCmd      string        `env:"GO"`
}

func main() {
	opts, err := parseOptions()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; every process the bench started has been stopped")
		}
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

func parseOptions() (options, error) {
	o := options{Sizes: defaultSizes, Runs: defaultRuns, AI: defaultAI, AISizes: defaultAISizes, Newcomers: defaultNewcomers,
		ScaleOut: defaultScaleOut, RunTimeout: defaultTimeout, AdminURL: defaultAdminURL, Doc: defaultDoc,
		BinDir: "bin", GoCmd: "go"}
	if err := env.Parse(&o); err != nil {
		return options{}, err
	}
	o.Sizes = slices.Compact(slices.Sorted(slices.Values(o.Sizes)))
	if len(o.Sizes) > 0 && o.Sizes[0] < minMembers { // the smallest size
		return options{}, fmt.Errorf("BENCH_SIZES: %d is not a member count of at least %d", o.Sizes[0], minMembers)
	}
	for _, n := range o.AISizes {
		if _, ok := aiRowOf(n); !ok {
			return options{}, fmt.Errorf("BENCH_AI_SIZES: no AI row of %d members; the rows are %s", n, joinInts(aiRowSizes()))
		}
	}
	o.AISizes = slices.Compact(slices.Sorted(slices.Values(o.AISizes)))
	if !o.AI {
		o.AISizes = nil
	}
	switch {
	case o.Runs < 1:
		return options{}, fmt.Errorf("BENCH_RUNS must be at least 1, got %d", o.Runs)
	case o.Newcomers < 0:
		return options{}, fmt.Errorf("BENCH_NEWCOMERS must not be negative, got %d", o.Newcomers)
	case o.ScaleOut != 0 && o.ScaleOut < minMembers:
		return options{}, fmt.Errorf("BENCH_SCALEOUT must be 0 or at least %d members, got %d", minMembers, o.ScaleOut)
	case o.RunTimeout <= 0:
		return options{}, fmt.Errorf("BENCH_TIMEOUT must be positive, got %s", o.RunTimeout)
	}
	return o, nil
}

// aiRowSizes are the members of every AI row.
func aiRowSizes() []int {
	sizes := make([]int, len(aiRows))
	for i, r := range aiRows {
		sizes[i] = r.members
	}
	return sizes
}

// command is how this bench was invoked, for the report: the BENCH_*
// variables set in the environment and `make bench` when make ran it.
func command() string {
	parts := fromEnv("BENCH_SIZES", "BENCH_RUNS", "BENCH_AI", "BENCH_AI_SIZES", "BENCH_NEWCOMERS", "BENCH_SCALEOUT", "BENCH_TIMEOUT", "BENCH_DATABASE_URL")
	return strings.Join(append(parts, onOff(os.Getenv("MAKELEVEL") != "", "make bench", "go run ./internal/bench")), " ")
}

// fromEnv is NAME=value for each of names set in the environment.
func fromEnv(names ...string) []string {
	var set []string
	for _, name := range names {
		if v := os.Getenv(name); v != "" {
			set = append(set, name+"="+v)
		}
	}
	return set
}
