package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
)

// steps are the label values of matchmaking_batch_duration_seconds{step},
// in batch order.
var steps = []string{"claim", "score", "insights", "commit", "release"}

// runSpec is one run: an event of members generated from seed.
type runSpec struct {
	members   int
	seed      int64
	run       int    // 1-based, for messages
	newcomers int    // inserted one at a time once the event is matched
	aiBaseURL string // the fake model's URL for the AI row; empty otherwise
	// workers > 1 runs that many worker processes; oneCore limits each to
	// one core (GOMAXPROCS=1). Scale-out rows skip the lower bound.
	workers int
	oneCore bool
}

func (s runSpec) String() string {
	kind := ""
	if s.aiBaseURL != "" {
		kind = " with AI"
	}
	if s.oneCore {
		kind += fmt.Sprintf(" on %s of one core each", plural(max(1, s.workers), "worker", "workers"))
	}
	return fmt.Sprintf("%d members%s, run %d (seed %d)", s.members, kind, s.run, s.seed)
}

// runResult is what one run measured.
type runResult struct {
	spec           runSpec
	wall           time.Duration      // enable launched → every member matched, queue empty
	enableReturned time.Duration      // enable launched → the starter process exited
	stepSeconds    map[string]float64 // Σ matchmaking_batch_duration_seconds_sum per step during the run
	batches        int                // commit steps during the run
	dispatch       float64            // Σ Temporal schedule-to-start seconds of workflow and activity tasks
	peakRSS        int64              // worker's VmHWM in bytes once the event is matched
	newcomerRSS    int64              // and after the newcomers
	matchRows      int
	aiInsights     int
	fallbacks      int
	aiCalls        float64
	lower          lowerBound

	newcomers        []time.Duration    // INSERT's commit → the newcomer's matches persisted, each
	newcomerSteps    map[string]float64 // Σ step seconds over the newcomer phase
	newcomerBatches  int
	newcomerDispatch float64
}

func (r runResult) stepsTotal() float64 { return sumSteps(r.stepSeconds) }

// sumSteps adds every step label the worker reported, including any added
// after the bench was written, so that the rest stays "outside the steps".
func sumSteps(bySteps map[string]float64) float64 {
	total := 0.0
	for _, v := range bySteps {
		total += v
	}
	return total
}

// measureRun creates a fresh database with a fresh event, measures the
// lower bound on it, starts a fresh worker, enables the event and waits
// until it is fully matched; then the newcomers, if any. Whatever it
// started it stops, and the database is dropped.
func (b *bench) measureRun(ctx context.Context, spec runSpec) (runResult, error) {
	res := runResult{spec: spec}
	b.runs++
	name := fmt.Sprintf("mmbench_%d_%d", os.Getpid(), b.runs)
	url := b.databaseURL(name)
	var extra []string
	if spec.aiBaseURL != "" {
		extra = []string{"OPENAI_API_KEY=bench-not-a-key", "OPENAI_BASE_URL=" + spec.aiBaseURL,
			"AI_CONCURRENCY=" + strconv.Itoa(aiConcurrency), "AI_REQUESTS_PER_MINUTE=" + strconv.Itoa(aiRequestsPerMinute)}
	}
	env := b.runEnv(url, "bench-"+name, extra...)
	fail := func(err error) (runResult, error) { return res, fmt.Errorf("%s: %w", spec, err) }

	progress(fmt.Sprintf("%s: database %s, loading the event", spec, name))
	if _, err := runCommand(ctx, env, "", b.bin("starter"), "migrate", "--create-database"); err != nil {
		return fail(err)
	}
	defer b.dropDatabase(name)
	if _, err := runCommand(ctx, env, "", b.bin("starter"), "load-demo", "--code", eventCode,
		"--members", strconv.Itoa(spec.members), "--seed", strconv.FormatInt(spec.seed, 10)); err != nil {
		return fail(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fail(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var eventID string
	if err := conn.QueryRow(ctx, `SELECT id::text FROM events WHERE code = $1`, eventCode).Scan(&eventID); err != nil {
		return fail(fmt.Errorf("find the loaded event: %w", err))
	}

	if spec.aiBaseURL == "" && !spec.oneCore {
		if res.lower, err = measureLowerBound(ctx, conn, eventID, spec, b.engine.TopN); err != nil {
			return fail(err)
		}
	}

	workerEnv := env
	if spec.oneCore {
		workerEnv = append(slices.Clone(env), "GOMAXPROCS=1")
	}
	worker, metricsURL, err := b.startWorker(ctx, name, workerEnv)
	if err != nil {
		return fail(err)
	}
	defer worker.stop()
	// More workers are measured through the first one's metrics; they
	// share the event's batches, which only the shards spread.
	for k := 2; k <= spec.workers; k++ {
		more, _, err := b.startWorker(ctx, fmt.Sprintf("%s-%d", name, k), workerEnv)
		if err != nil {
			return fail(err)
		}
		defer more.stop()
	}
	keep := func(stage string) string { return filepath.Join(b.workDir, name+"-metrics-"+stage+".txt") }
	before, err := scrape(ctx, metricsURL, keep("before"))
	if err != nil {
		return fail(err)
	}
	if res.wall, res.enableReturned, err = b.enableAndWait(ctx, conn, env, eventID, spec.members, worker); err != nil {
		return fail(err)
	}
	after, err := scrape(ctx, metricsURL, keep("matched"))
	if err != nil {
		return fail(err)
	}
	res.stepSeconds, res.batches = stepsBetween(before, after)
	res.dispatch = dispatchBetween(before, after)
	res.aiCalls = after.sum("matchmaking_ai_calls_total") - before.sum("matchmaking_ai_calls_total")
	if res.peakRSS, err = vmHWM(worker.pid()); err != nil {
		return fail(fmt.Errorf("worker peak RSS: %w", err))
	}
	if err := conn.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE insight_source = 'ai'), count(*) FILTER (WHERE insight_source = 'fallback')
		FROM matches WHERE event_id = $1`, eventID).Scan(&res.matchRows, &res.aiInsights, &res.fallbacks); err != nil {
		return fail(err)
	}
	progress(fmt.Sprintf("%s: fully matched in %.3f s (%s, %d match rows, worker peak RSS %.0f MB)",
		spec, res.wall.Seconds(), plural(res.batches, "batch", "batches"), res.matchRows, float64(res.peakRSS)/1e6))

	if spec.newcomers > 0 {
		progress(fmt.Sprintf("%s: inserting %d newcomers one at a time", spec, spec.newcomers))
		all := demodata.Generate(spec.seed, spec.members+spec.newcomers)
		if res.newcomers, err = b.newcomers(ctx, conn, eventID, all[spec.members:], worker); err != nil {
			return fail(err)
		}
		end, err := scrape(ctx, metricsURL, keep("newcomers"))
		if err != nil {
			return fail(err)
		}
		res.newcomerSteps, res.newcomerBatches = stepsBetween(after, end)
		res.newcomerDispatch = dispatchBetween(after, end)
		if res.newcomerRSS, err = vmHWM(worker.pid()); err != nil {
			return fail(fmt.Errorf("worker peak RSS: %w", err))
		}
	}
	return res, nil
}

// stepsBetween is the time spent in each batch step between two scrapes,
// and the number of batches committed.
func stepsBetween(before, after metrics) (map[string]float64, int) {
	out := map[string]float64{}
	sumsBefore := before.byLabel("matchmaking_batch_duration_seconds_sum", "step")
	for step, v := range after.byLabel("matchmaking_batch_duration_seconds_sum", "step") {
		out[step] = v - sumsBefore[step]
	}
	batches := after.byLabel("matchmaking_batch_duration_seconds_count", "step")["commit"] -
		before.byLabel("matchmaking_batch_duration_seconds_count", "step")["commit"]
	return out, int(batches)
}

// dispatchBetween is how long the worker's workflow and activity tasks
// waited in Temporal between being scheduled and being picked up (the SDK's
// schedule-to-start latencies), summed, between two scrapes.
func dispatchBetween(before, after metrics) float64 {
	total := 0.0
	for _, name := range []string{"temporal_workflow_task_schedule_to_start_latency_seconds_sum", "temporal_activity_schedule_to_start_latency_seconds_sum"} {
		total += after.sum(name) - before.sum(name)
	}
	return total
}

// enableAndWait launches `starter enable` and polls the database until
// every member has matches and the event's queue is empty. wall runs from
// launching the starter to the poll that saw it done.
func (b *bench) enableAndWait(ctx context.Context, conn *pgx.Conn, env []string, eventID string, members int, worker *process) (wall, enableReturned time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.runTimeout)
	defer cancel()
	type enableResult struct {
		after time.Duration
		err   error
	}
	enabled := make(chan enableResult, 1)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()

	start := time.Now()
	go func() {
		_, err := runCommand(ctx, env, "", b.bin("starter"), "enable", eventCode)
		enabled <- enableResult{time.Since(start), err}
	}()
	starterDone := false
	for {
		done, err := fullyMatched(ctx, conn, eventID, members)
		if err == nil && done {
			wall = time.Since(start)
			break
		}
		if err != nil && ctx.Err() == nil {
			return 0, 0, fmt.Errorf("poll the event: %w", err)
		}
		if worker.exited() {
			return 0, 0, fmt.Errorf("the worker exited (%v) while the event was being matched:\n%s", worker.exitErr, worker.logTail(20))
		}
		select {
		case r := <-enabled:
			if r.err != nil {
				return 0, 0, r.err
			}
			starterDone, enableReturned = true, r.after
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return 0, 0, fmt.Errorf("not fully matched within %s (BENCH_TIMEOUT): %s\n  worker log:\n%s",
					b.opts.runTimeout, progressOf(conn, eventID, members), worker.logTail(15))
			}
			return 0, 0, ctx.Err()
		}
	}
	if !starterDone {
		select {
		case r := <-enabled:
			if r.err != nil {
				return 0, 0, r.err
			}
			enableReturned = r.after
		case <-ctx.Done():
			return 0, 0, errors.New("the event was matched but `starter enable` did not return")
		}
	}
	return wall, enableReturned, nil
}

// fullyMatched: the queue is empty and every member has a list. The count
// runs only once the queue is empty, to keep the 20 ms poll cheap.
func fullyMatched(ctx context.Context, conn *pgx.Conn, eventID string, members int) (bool, error) {
	var done bool
	err := conn.QueryRow(ctx, `
		SELECT CASE WHEN EXISTS (SELECT 1 FROM matchmaking_queue WHERE event_id = $1) THEN false
		            ELSE (SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1) = $2 END`,
		eventID, members).Scan(&done)
	return done, err
}

// progressOf describes how far an event got, for a timeout message.
func progressOf(conn *pgx.Conn, eventID string, members int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var queued, matched int
	if err := conn.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1),
		       (SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1)`, eventID).Scan(&queued, &matched); err != nil {
		return "progress unknown: " + err.Error()
	}
	return fmt.Sprintf("%d of %d members matched, %d still queued", matched, members, queued)
}

// newcomers inserts members one at a time into the matched event, as the
// web app does, and times each from its INSERT's commit to its matches
// being persisted; the next one goes in once the queue is empty again.
func (b *bench) newcomers(ctx context.Context, conn *pgx.Conn, eventID string, members []attendee.Profile, worker *process) ([]time.Duration, error) {
	var latencies []time.Duration
	for k, m := range members {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO all_events_members
			    (event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			eventID, m.UserID, m.DisplayName, nullIfEmpty(m.Company), nullIfEmpty(m.JobTitle), nullIfEmpty(m.Industry),
			nonNil(m.Interests), nonNil(m.LookingFor), nonNil(m.Offering), m.Bio); err != nil {
			_ = tx.Rollback(ctx)
			return nil, fmt.Errorf("insert newcomer %d: %w", k+1, err)
		}
		committing := time.Now()
		if err := tx.Commit(ctx); err != nil {
			return nil, fmt.Errorf("insert newcomer %d: %w", k+1, err)
		}
		matched, err := waitUntil(ctx, worker, newcomerTimeout, `SELECT EXISTS (SELECT 1 FROM matches WHERE event_id = $1 AND user_id = $2)`,
			conn, eventID, m.UserID)
		if err != nil {
			return nil, fmt.Errorf("newcomer %d of %d: %w", k+1, len(members), err)
		}
		latencies = append(latencies, matched.Sub(committing))
		if _, err := waitUntil(ctx, worker, newcomerTimeout, `SELECT NOT EXISTS (SELECT 1 FROM matchmaking_queue WHERE event_id = $1)`,
			conn, eventID); err != nil {
			return nil, fmt.Errorf("queue after newcomer %d: %w", k+1, err)
		}
	}
	return latencies, nil
}

// waitUntil polls a boolean query every newcomerPoll and returns when it
// first saw true.
func waitUntil(ctx context.Context, worker *process, timeout time.Duration, query string, conn *pgx.Conn, args ...any) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, query, args...).Scan(&ok); err != nil {
			return time.Time{}, err
		}
		if ok {
			return time.Now(), nil
		}
		if worker.exited() {
			return time.Time{}, fmt.Errorf("the worker exited (%v):\n%s", worker.exitErr, worker.logTail(20))
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not done after %s:\n%s", timeout, worker.logTail(15))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(newcomerPoll):
		}
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}
