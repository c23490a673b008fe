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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/fakeopenai"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// steps are the label values of matchmaking_batch_duration_seconds{step},
// in batch order.
var steps = []string{"claim", "score", "insights", "commit", "release"}

// runSpec is one run: an event of members generated from seed.
type runSpec struct {
	members   int
	seed      int64
	run       int   // 1-based, for messages
	newcomers int   // inserted one at a time once the event is matched
	ai        aiRow // the AI row, against a fake model of the run's own; zero without AI
	// workers > 1 runs that many worker processes; oneCore limits each to
	// one core (GOMAXPROCS=1). Scale-out rows skip the lower bound.
	workers int
	oneCore bool
}

func (s runSpec) String() string {
	kind := ""
	if s.withAI() {
		kind = fmt.Sprintf(" with AI (fake model at %s)", s.ai.latency)
	}
	if s.oneCore {
		kind += fmt.Sprintf(" on %s of one core each", plural(max(1, s.workers), "worker", "workers"))
	}
	return fmt.Sprintf("%d members%s, run %d (seed %d)", s.members, kind, s.run, s.seed)
}

func (s runSpec) withAI() bool { return s.ai.members > 0 }

// runResult is what one run measured.
type runResult struct {
	spec           runSpec
	wall           time.Duration // enable launched → every member matched, queue empty ("listed")
	enableReturned time.Duration // enable launched → the starter process exited
	phase                        // enable launched → every member matched (AI runs: → 100% AI)
	matchRows      int
	aiInsights     int
	fallbacks      int
	lower          lowerBound
	// AI runs only.
	ai99, ai100   time.Duration // enable launched → ≥ 99%, then all, of the event's matches with an AI insight
	backfillCalls int64         // the event's matchmaking_ai_backfill.calls: the backfill's model calls
	metricCalls   float64       // the worker's matchmaking_ai_calls_total during the run (batches and backfill)
	pairsScored   float64       // the worker's matchmaking_pairs_scored_total during the run

	newcomers []time.Duration // the insert's commit → the newcomer's matches persisted, each
	newcomer  phase           // the newcomers, all of them
}

// phase is what the worker's metrics say about one stretch of a run.
type phase struct {
	stepSeconds map[string]float64 // Σ matchmaking_batch_duration_seconds_sum per step
	batches     int                // commit steps
	dispatch    float64            // Σ Temporal schedule-to-start seconds of workflow and activity tasks
	peakRSS     int64              // the worker's VmHWM in bytes at the end
}

// stepsTotal adds every step label the worker reported, including any
// added after the bench was written, so that the rest stays "outside the
// steps".
func (p phase) stepsTotal() float64 {
	total := 0.0
	for _, v := range p.stepSeconds {
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
	fail := func(err error) (runResult, error) { return res, fmt.Errorf("%s: %w", spec, err) }

	progress(fmt.Sprintf("%s: database %s, loading the event", spec, name))
	defer b.dropDatabase(name)
	dbConfig, err := testenv.CreateDatabase(ctx, b.admin, name)
	if err != nil {
		return fail(err)
	}
	url := testenv.URL(dbConfig)
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	st := store.New(db)
	event, err := st.EnsureEvent(ctx, eventCode, "Bench")
	if err != nil {
		return fail(err)
	}
	eventID := event.ID
	// One generation for the event and its newcomers: the generator is
	// prefix-stable, so the event is the same with or without them.
	everyone := demodata.Generate(spec.seed, spec.members+spec.newcomers)
	members := everyone[:spec.members]
	if _, err := st.InsertMembers(ctx, eventID, members); err != nil {
		return fail(err)
	}

	var extra []string
	if spec.withAI() {
		// The fake model answers after the row's latency; it keeps every
		// request it received, and a run of 4,000 members sends about 9,000.
		fake, err := fakeopenai.Listen("127.0.0.1:0", func(call int, req fakeopenai.Request) fakeopenai.Response {
			return fakeopenai.Echo(call, req).After(spec.ai.latency)
		})
		if err != nil {
			return res, fmt.Errorf("start the fake model server: %w", err)
		}
		defer fake.Close()
		extra = []string{"OPENAI_API_KEY=bench-not-a-key", "OPENAI_BASE_URL=" + fake.URL(),
			"AI_CONCURRENCY=" + strconv.Itoa(spec.ai.concurrency), "AI_REQUESTS_PER_MINUTE=" + strconv.Itoa(spec.ai.requestsPerMinute)}
	}
	env := b.runEnv(url, "bench-"+name, extra...)
	if !spec.withAI() && !spec.oneCore {
		if res.lower, err = measureLowerBound(ctx, db, eventID, members, b.engine.TopN); err != nil {
			return fail(err)
		}
	}

	workerEnv := env
	if spec.oneCore {
		// Scale-out rows measure the sharded path, which only per-member
		// top-N lists take: a capped assignment is made whole where the
		// batch is scored (README, "A cap on appearances").
		workerEnv = append(slices.Clone(env), "GOMAXPROCS=1", "MAX_APPEARANCES=0")
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
	// scrapeWorker reads the worker's metrics (keeping a copy in the work
	// directory) and its peak RSS at the end of a stage, and what happened
	// since the scrape at its start.
	scrapeWorker := func(stage string, start metrics) (metrics, phase, error) {
		end, err := scrape(ctx, metricsURL, filepath.Join(b.workDir, name+"-metrics-"+stage+".txt"))
		if err != nil {
			return nil, phase{}, err
		}
		p := phaseBetween(start, end)
		if p.peakRSS, err = vmHWM(worker.pid()); err != nil {
			return nil, phase{}, fmt.Errorf("worker peak RSS: %w", err)
		}
		return end, p, nil
	}
	before, _, err := scrapeWorker("before", nil)
	if err != nil {
		return fail(err)
	}
	reached, enableReturned, err := b.enableAndWait(ctx, db, env, eventID, spec.members, spec.withAI(), worker)
	if err != nil {
		return fail(err)
	}
	res.wall, res.ai99, res.ai100, res.enableReturned = reached.listed, reached.ai99, reached.ai100, enableReturned
	after, matched, err := scrapeWorker("matched", before)
	if err != nil {
		return fail(err)
	}
	// A commit is in the database before the worker's metrics record its
	// step, so the last batch may be missing from the first scrape: with
	// one worker, which runs every commit, scrape until the two agree.
	if spec.workers <= 1 {
		var committed int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM matchmaking_batches WHERE event_id = $1 AND committed_at IS NOT NULL`,
			eventID).Scan(&committed); err != nil {
			return fail(err)
		}
		for deadline := time.Now().Add(10 * time.Second); matched.batches < committed && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			if after, matched, err = scrapeWorker("matched", before); err != nil {
				return fail(err)
			}
		}
	}
	res.phase = matched
	res.metricCalls = after.sum("matchmaking_ai_calls_total") - before.sum("matchmaking_ai_calls_total")
	res.pairsScored = after.sum("matchmaking_pairs_scored_total") - before.sum("matchmaking_pairs_scored_total")
	// Calls are recorded in the same transaction as the answers they
	// bought, so at 100% AI the count is final.
	if err := db.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE insight_source = 'ai'), count(*) FILTER (WHERE insight_source = 'fallback'),
		       coalesce((SELECT calls FROM matchmaking_ai_backfill WHERE event_id = $1), 0)
		FROM matches WHERE event_id = $1`, eventID).Scan(&res.matchRows, &res.aiInsights, &res.fallbacks, &res.backfillCalls); err != nil {
		return fail(err)
	}
	progress(fmt.Sprintf("%s: fully matched (listed) in %.3f s (%s, %d match rows, worker peak RSS %.0f MB)",
		spec, res.wall.Seconds(), plural(res.batches, "batch", "batches"), res.matchRows, float64(res.peakRSS)/1e6))
	if spec.withAI() {
		progress(fmt.Sprintf("%s: ≥ 99%% AI in %.3f s, 100%% AI in %.3f s (%d backfill calls, matchmaking_ai_calls_total +%.0f)",
			spec, res.ai99.Seconds(), res.ai100.Seconds(), res.backfillCalls, res.metricCalls))
	}

	if spec.newcomers > 0 {
		progress(fmt.Sprintf("%s: inserting %d newcomers one at a time", spec, spec.newcomers))
		if res.newcomers, err = newcomers(ctx, st, db, eventID, everyone[spec.members:], worker); err != nil {
			return fail(err)
		}
		if _, res.newcomer, err = scrapeWorker("newcomers", after); err != nil {
			return fail(err)
		}
	}
	return res, nil
}

// phaseBetween is what the worker did between two scrapes: the time spent
// in each batch step, the batches committed, and how long its workflow and
// activity tasks waited in Temporal between being scheduled and being
// picked up (the SDK's schedule-to-start latencies), summed.
func phaseBetween(before, after metrics) phase {
	const durations = "matchmaking_batch_duration_seconds"
	p := phase{stepSeconds: map[string]float64{}}
	sumsBefore := before.byLabel(durations, "step")
	for step, v := range after.byLabel(durations, "step") {
		p.stepSeconds[step] = v - sumsBefore[step]
	}
	p.batches = int(after.countByLabel(durations, "step")["commit"] - before.countByLabel(durations, "step")["commit"])
	for _, name := range []string{"temporal_workflow_task_schedule_to_start_latency_seconds", "temporal_activity_schedule_to_start_latency_seconds"} {
		p.dispatch += after.sum(name) - before.sum(name)
	}
	return p
}

// milestones are the times from launching `starter enable` to the poll
// that first saw each stage.
type milestones struct {
	listed time.Duration // every member has matches and the queue is empty
	ai99   time.Duration // ≥ 99% of the matches have an AI insight (and listed)
	ai100  time.Duration // every match has an AI insight (and listed)
}

// done: every stage the run waits for is reached.
func (m milestones) done(withAI bool) bool {
	return m.listed > 0 && (!withAI || m.ai100 > 0)
}

// enableAndWait launches `starter enable` and polls the database until
// every member has matches and the event's queue is empty and, withAI,
// until every match has an AI insight; each stage's time runs from
// launching the starter to the poll that saw it.
func (b *bench) enableAndWait(ctx context.Context, db *pgxpool.Pool, env []string, eventID string, members int, withAI bool, worker *process) (reached milestones, enableReturned time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.RunTimeout)
	defer cancel()
	type enableResult struct {
		after time.Duration
		err   error
	}
	starter := make(chan enableResult, 1) // nil once the starter has returned
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()

	start := time.Now()
	go func(returned chan<- enableResult) {
		_, err := runCommand(ctx, env, "", b.bin("starter"), "enable", eventCode)
		returned <- enableResult{time.Since(start), err}
	}(starter)
	// Poll until every stage is reached; then, if the starter is still
	// running, wait for it too.
	for !reached.done(withAI) || starter != nil {
		if !reached.done(withAI) {
			err := pollMilestones(ctx, db, eventID, members, withAI, start, &reached)
			if err == nil && reached.done(withAI) {
				continue
			}
			if err != nil && ctx.Err() == nil {
				return reached, 0, fmt.Errorf("poll the event: %w", err)
			}
			if worker.exited() {
				return reached, 0, fmt.Errorf("the worker exited (%v) while the event was being matched:\n%s", worker.exitErr, worker.logTail(20))
			}
		}
		select {
		case r := <-starter:
			if r.err != nil {
				return reached, 0, r.err
			}
			starter, enableReturned = nil, r.after
		case <-tick.C:
		case <-ctx.Done():
			if reached.done(withAI) {
				return reached, 0, errors.New("the event was matched but `starter enable` did not return")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				what := "not fully matched"
				if reached.listed > 0 {
					what = fmt.Sprintf("listed in %.3f s, but not every match has an AI insight", reached.listed.Seconds())
				}
				return reached, 0, fmt.Errorf("%s within %s (BENCH_TIMEOUT): %s\n  worker log:\n%s",
					what, b.opts.RunTimeout, progressOf(db, eventID, members, reached.listed > 0), worker.logTail(15))
			}
			return reached, 0, ctx.Err()
		}
	}
	return reached, enableReturned, nil
}

// pollMilestones records in m each stage the event has newly reached, at
// the time since start when the poll saw it. The AI share counts only once
// the event is listed: before that it is the share of the lists written so
// far.
func pollMilestones(ctx context.Context, db *pgxpool.Pool, eventID string, members int, withAI bool, start time.Time, m *milestones) error {
	if m.listed == 0 {
		// Listed: the queue is empty and every member has a list. The count
		// runs only once the queue is empty, to keep the 20 ms poll cheap.
		var listed bool
		if err := db.QueryRow(ctx, `
			SELECT CASE WHEN EXISTS (SELECT 1 FROM matchmaking_queue WHERE event_id = $1) THEN false
			            ELSE (SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1) = $2 END`,
			eventID, members).Scan(&listed); err != nil || !listed {
			return err
		}
		m.listed = time.Since(start)
	}
	if !withAI {
		return nil
	}
	rows, ai, err := aiShare(ctx, db, eventID)
	if err != nil {
		return err
	}
	now := time.Since(start)
	if m.ai99 == 0 && atLeastShare(ai, rows, 99) {
		m.ai99 = now
	}
	if m.ai100 == 0 && atLeastShare(ai, rows, 100) {
		m.ai100 = now
	}
	return nil
}

// aiShare counts the event's current match rows and those with an AI
// insight.
func aiShare(ctx context.Context, db *pgxpool.Pool, eventID string) (rows, ai int, err error) {
	err = db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE insight_source = 'ai') FROM matches WHERE event_id = $1`,
		eventID).Scan(&rows, &ai)
	return rows, ai, err
}

// atLeastShare: ai of rows is at least percent% (in integers, so 100%
// means every row). No rows is no share.
func atLeastShare(ai, rows, percent int) bool {
	return rows > 0 && 100*ai >= percent*rows
}

// progressOf describes how far an event got, for a timeout message: its
// members matched or, once it is listed, its AI backfill.
func progressOf(db *pgxpool.Pool, eventID string, members int, listed bool) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if listed {
		rows, ai, err := aiShare(ctx, db, eventID)
		var calls int64
		if err == nil {
			err = db.QueryRow(ctx, `SELECT coalesce((SELECT calls FROM matchmaking_ai_backfill WHERE event_id = $1), 0)`, eventID).Scan(&calls)
		}
		if err != nil {
			return "AI progress unknown: " + err.Error()
		}
		return fmt.Sprintf("%d of %d matches with an AI insight, %d backfill model calls so far", ai, rows, calls)
	}
	var queued, matched int
	if err := db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1),
		       (SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1)`, eventID).Scan(&queued, &matched); err != nil {
		return "progress unknown: " + err.Error()
	}
	return fmt.Sprintf("%d of %d members matched, %d still queued", matched, members, queued)
}

// newcomers inserts members one at a time into the matched event, each in
// a transaction of its own as the web app does, and times each from its
// insert's commit to its matches being persisted; the next one goes in once
// the queue is empty again.
func newcomers(ctx context.Context, st *store.Store, db *pgxpool.Pool, eventID string, members []attendee.Profile, worker *process) ([]time.Duration, error) {
	var latencies []time.Duration
	for k := range members {
		if _, err := st.InsertMembers(ctx, eventID, members[k:k+1]); err != nil {
			return nil, fmt.Errorf("insert newcomer %d: %w", k+1, err)
		}
		committed := time.Now()
		matched, err := waitUntil(ctx, worker, newcomerTimeout, `SELECT EXISTS (SELECT 1 FROM matches WHERE event_id = $1 AND user_id = $2)`,
			db, eventID, members[k].UserID)
		if err != nil {
			return nil, fmt.Errorf("newcomer %d of %d: %w", k+1, len(members), err)
		}
		latencies = append(latencies, matched.Sub(committed))
		if _, err := waitUntil(ctx, worker, newcomerTimeout, `SELECT NOT EXISTS (SELECT 1 FROM matchmaking_queue WHERE event_id = $1)`,
			db, eventID); err != nil {
			return nil, fmt.Errorf("queue after newcomer %d: %w", k+1, err)
		}
	}
	return latencies, nil
}

// waitUntil polls a boolean query every newcomerPoll and returns when it
// first saw true.
func waitUntil(ctx context.Context, worker *process, timeout time.Duration, query string, db *pgxpool.Pool, args ...any) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := db.QueryRow(ctx, query, args...).Scan(&ok); err != nil {
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
