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
// member matched and the queue empty.
//
//	make bench                                  # the default run (see defaultSizes)
//	BENCH_SIZES=500,2000,10000 BENCH_AI=1 make bench   # the full run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// defaultAI is whether the default run has the AI row; a variable, so that
// comparing a run's setting with it reads as the comparison it is.
var defaultAI = true

// Defaults of the bench. The default run must stay around five minutes on
// a 2-core machine; docs/PERFORMANCE.md says what it covers.
const (
	defaultSizes     = "500,2000,10000"
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

// The AI row: the size, the fake model's latency and the limits the worker
// is given, all stated in the report.
const (
	aiMembers           = 500
	aiLatency           = 300 * time.Millisecond
	aiConcurrency       = 32
	aiRequestsPerMinute = 6000
)

// options are the bench's settings, from flags whose defaults come from the
// BENCH_* environment variables.
type options struct {
	sizes      []int
	runs       int
	ai         bool
	newcomers  int
	scaleOut   int
	runTimeout time.Duration
	adminURL   string
	doc        string
	binDir     string
	goCmd      string
	keepLogs   bool
}

func main() {
	opts, err := parseOptions(os.Args[1:])
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

func parseOptions(args []string) (options, error) {
	var env envReader
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := fs.String("sizes", env.str("BENCH_SIZES", defaultSizes), "comma-separated event sizes (BENCH_SIZES)")
	runs := fs.Int("runs", env.int("BENCH_RUNS", defaultRuns), "runs per size; the report quotes medians (BENCH_RUNS)")
	ai := fs.Bool("ai", env.bool("BENCH_AI", defaultAI), "also run the AI row: 500 members, fake model at 300 ms (BENCH_AI)")
	newcomers := fs.Int("newcomers", env.int("BENCH_NEWCOMERS", defaultNewcomers), "newcomers inserted one at a time into the largest event (BENCH_NEWCOMERS)")
	scaleOut := fs.Int("scale-out", env.int("BENCH_SCALEOUT", defaultScaleOut), "members of the scale-out rows (one worker vs two, one core each); 0 skips them (BENCH_SCALEOUT)")
	timeout := fs.Duration("timeout", env.duration("BENCH_TIMEOUT", defaultTimeout), "a run not fully matched after this long fails the bench (BENCH_TIMEOUT)")
	adminURL := fs.String("db", env.str("BENCH_DATABASE_URL", defaultAdminURL), "PostgreSQL server to create the run databases on (BENCH_DATABASE_URL)")
	doc := fs.String("doc", env.str("BENCH_DOC", defaultDoc), "file to write the report into; - for none (BENCH_DOC)")
	binDir := fs.String("bin", "bin", "directory holding worker, starter and temporal")
	keepLogs := fs.Bool("keep-logs", env.bool("BENCH_KEEP_LOGS", false), "keep the processes' logs even when the bench succeeds (BENCH_KEEP_LOGS)")
	if env.err != nil {
		return options{}, env.err
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{runs: *runs, ai: *ai, newcomers: *newcomers, scaleOut: *scaleOut, runTimeout: *timeout,
		adminURL: *adminURL, doc: *doc, binDir: *binDir, goCmd: env.str("GO", "go"), keepLogs: *keepLogs}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < minMembers {
			return options{}, fmt.Errorf("BENCH_SIZES: %q is not a member count of at least %d", f, minMembers)
		}
		if !slices.Contains(o.sizes, n) {
			o.sizes = append(o.sizes, n)
		}
	}
	slices.Sort(o.sizes)
	switch {
	case o.runs < 1:
		return options{}, fmt.Errorf("BENCH_RUNS must be at least 1, got %d", o.runs)
	case o.newcomers < 0:
		return options{}, fmt.Errorf("BENCH_NEWCOMERS must not be negative, got %d", o.newcomers)
	case o.scaleOut != 0 && o.scaleOut < minMembers:
		return options{}, fmt.Errorf("BENCH_SCALEOUT must be 0 or at least %d members, got %d", minMembers, o.scaleOut)
	case o.runTimeout <= 0:
		return options{}, fmt.Errorf("BENCH_TIMEOUT must be positive, got %s", o.runTimeout)
	}
	return o, nil
}

// envReader reads BENCH_* variables, remembering the first bad value.
type envReader struct{ err error }

func (e *envReader) str(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func (e *envReader) int(name string, fallback int) int {
	return envParse(e, name, fallback, strconv.Atoi)
}

func (e *envReader) bool(name string, fallback bool) bool {
	return envParse(e, name, fallback, strconv.ParseBool)
}

func (e *envReader) duration(name string, fallback time.Duration) time.Duration {
	return envParse(e, name, fallback, time.ParseDuration)
}

func envParse[T any](e *envReader, name string, fallback T, parse func(string) (T, error)) T {
	v := os.Getenv(name)
	if v == "" {
		return fallback
	}
	parsed, err := parse(v)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("%s: %q is not valid", name, v)
		}
		return fallback
	}
	return parsed
}

// command is how this bench was invoked, for the report: the BENCH_*
// variables set in the environment and `make bench` when make ran it.
func command() string {
	var parts []string
	for _, name := range []string{"BENCH_SIZES", "BENCH_RUNS", "BENCH_AI", "BENCH_NEWCOMERS", "BENCH_TIMEOUT", "BENCH_DATABASE_URL"} {
		if v := os.Getenv(name); v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	if os.Getenv("MAKELEVEL") != "" {
		parts = append(parts, "make bench")
	} else {
		parts = append(parts, "go run ./internal/bench")
		parts = append(parts, os.Args[1:]...)
	}
	return strings.Join(parts, " ")
}
