package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

// eventCode is the code of the one event each run database holds.
const eventCode = "bench"

// pollInterval is how often the bench looks at the database while an event
// is being matched; newcomerPoll while it waits for one newcomer.
const (
	pollInterval = 20 * time.Millisecond
	newcomerPoll = 5 * time.Millisecond
	// newcomerTimeout bounds the wait for one newcomer's matches.
	newcomerTimeout = time.Minute
)

// bench is what the runs share: settings, the work directory for logs and
// the Temporal dev server.
type bench struct {
	opts            options
	engine          config.Config
	workDir         string
	admin           *pgx.ConnConfig
	temporalAddress string
	runs            int // databases created so far, for unique names
}

func (b *bench) bin(name string) string { return filepath.Join(b.opts.BinDir, name) }

func run(ctx context.Context, opts options) error {
	began := time.Now()
	b, err := newBench(ctx, opts)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if ok && !opts.KeepLogs {
			os.RemoveAll(b.workDir)
		} else {
			fmt.Fprintln(os.Stderr, "bench: logs kept in", b.workDir)
		}
	}()

	rep := &report{opts: opts, command: command(), engine: b.engine,
		postgresAt: fmt.Sprintf("%s:%d", b.admin.Host, b.admin.Port)}
	if rep.machine, err = b.describeMachine(ctx); err != nil {
		return err
	}
	progress("scoring kernel: go test -run '^$' -bench . -benchmem ./matching/")
	if rep.kernel, err = runKernelBenchmarks(ctx, opts.GoCmd); err != nil {
		return err
	}

	progress("starting the Temporal dev server")
	temporal, err := b.startTemporal(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = temporal.Stop() }()
	b.temporalAddress = temporal.FrontendHostPort()

	largest := slices.Max(opts.Sizes)
	for _, n := range opts.Sizes {
		for r := 1; r <= opts.Runs; r++ {
			spec := runSpec{members: n, seed: int64(r), run: r}
			if n == largest && r == opts.Runs {
				spec.newcomers = opts.Newcomers
			}
			res, err := b.measureRun(ctx, spec)
			if err != nil {
				return err
			}
			rep.runs = append(rep.runs, res)
		}
	}

	if opts.ScaleOut > 0 {
		for r := 1; r <= opts.Runs; r++ {
			for _, workers := range []int{1, 2} {
				res, err := b.measureRun(ctx, runSpec{members: opts.ScaleOut, seed: int64(r), run: r, workers: workers, oneCore: true})
				if err != nil {
					return err
				}
				rep.scaleRuns = append(rep.scaleRuns, res)
			}
		}
	}

	for _, n := range opts.AISizes {
		row, _ := aiRowOf(n) // parseOptions accepted only sizes of rows
		for r := 1; r <= opts.Runs; r++ {
			res, err := b.measureRun(ctx, runSpec{members: n, seed: int64(r), run: r, ai: row})
			if err != nil {
				return err
			}
			rep.aiRuns = append(rep.aiRuns, res)
		}
	}

	rep.elapsed = time.Since(began)
	generated := rep.markdown()
	fmt.Println()
	fmt.Println(generated)
	if opts.Doc != "-" {
		if err := writeDoc(opts.Doc, generated); err != nil {
			return err
		}
		progress("wrote " + opts.Doc)
	}
	ok = true
	return nil
}

func newBench(ctx context.Context, opts options) (*bench, error) {
	for _, name := range []string{"worker", "starter", "temporal"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, name)); err != nil {
			return nil, fmt.Errorf("%s/%s is missing: run `make build temporal-cli` (make bench does)", opts.BinDir, name)
		}
	}
	admin, err := pgx.ParseConfig(opts.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("BENCH_DATABASE_URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL is not reachable at %s:%d (see README): %w", admin.Host, admin.Port, err)
	}
	conn.Close(ctx)
	engine, err := config.Load()
	if err != nil {
		return nil, err
	}
	workDir, err := os.MkdirTemp("", "matchmaker-bench-")
	if err != nil {
		return nil, err
	}
	return &bench{opts: opts, engine: engine, workDir: workDir, admin: admin}, nil
}

func progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", time.Now().Format("15:04:05"), msg)
}

// runEnv is the environment of the run's starter and worker: the bench's
// own, minus the settings every run sets itself (and any model settings,
// so that only the AI row calls a model), plus the run's.
func (b *bench) runEnv(databaseURL, taskQueue string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL", name == "METRICS_ADDR", strings.HasPrefix(name, "TEMPORAL_"),
			strings.HasPrefix(name, "OPENAI_"), strings.HasPrefix(name, "AI_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"DATABASE_URL="+databaseURL,
		"TEMPORAL_ADDRESS="+b.temporalAddress,
		"TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TASK_QUEUE="+taskQueue,
		"METRICS_ADDR=127.0.0.1:0",
	)
	return append(env, extra...)
}

// dropDatabase drops a run's database, even when the bench is being
// interrupted.
func (b *bench) dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.DropDatabase(ctx, b.admin, name); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}
