// Command worker runs the Temporal worker of the matchmaking engine and the
// queue listener that wakes event workflows.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/connect"
	"github.com/eventmatch/matchmaker/internal/logging"
	"github.com/eventmatch/matchmaker/internal/metrics"
	"github.com/eventmatch/matchmaker/internal/telemetry"
	"github.com/eventmatch/matchmaker/listener"
	"github.com/eventmatch/matchmaker/matching"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

// shardsAtOnce is how many shards of large batches one worker process
// scores at a time.
const shardsAtOnce = 1

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// runWorker is the worker's command: it runs until SIGINT or SIGTERM.
func runWorker(cfg config.Config, stderr io.Writer) error {
	logger, err := logging.New(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil { // config.Load has checked both already
		return err
	}
	if err := run(cfg, logger); err != nil {
		logger.Error("worker stopped", "error", err)
		return err
	}
	return nil
}

func run(cfg config.Config, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The endpoint outlives the signal: during the drain /metrics still
	// answers and /readyz says the worker is stopping.
	ready := newReadiness(checkTimeout, checkDatabase, checkTemporal, checkListener)
	obs, err := startEndpoint(cfg, ready, logger)
	if err != nil {
		return err
	}
	defer obs.stop(logger)

	// Before the pool and the clients it traces; stopped after the drain,
	// so the last batch steps' spans are exported.
	stopTracing, err := telemetry.Start(ctx, "matchmaker-worker")
	if err != nil {
		return err
	}
	defer func() {
		if err := stopTracing(); err != nil {
			logger.Warn("tracing", "error", err)
		}
	}()
	pool, err := connect.Database(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	ready.set(checkDatabase, func(ctx context.Context) error { return pool.Ping(ctx) })
	if err := connect.RequireSchema(ctx, pool); err != nil {
		return err
	}
	if err := checkPooledSession(ctx, cfg, pool, logger); err != nil {
		return err
	}
	// The LISTEN connection needs a session of its own; DATABASE_URL may be
	// a transaction-mode pooler, which cannot give one.
	listenPool := pool
	if cfg.ListenURL() != cfg.DatabaseURL {
		if listenPool, err = store.ConnectEnv(ctx, cfg.ListenVar(), cfg.ListenURL(), "matchmaker-worker-listener"); err != nil {
			return err
		}
		defer listenPool.Close()
	}
	temporalClient, err := connect.Temporal(ctx, cfg, logger, workflows.SearchAttributes)
	if err != nil {
		return err
	}
	defer temporalClient.Close()
	if obs.sdk != nil {
		// connect.Temporal sets no MetricsHandler; a client sharing its
		// connection carries ours, for the worker and the listener alike,
		// and the tracing interceptors, which a client does not inherit.
		interceptors, err := telemetry.TemporalInterceptors()
		if err != nil {
			return err
		}
		metricsClient, err := client.NewClientFromExistingWithContext(ctx, temporalClient, client.Options{
			Namespace:      cfg.TemporalNamespace,
			Logger:         tlog.NewStructuredLogger(logger),
			MetricsHandler: obs.sdk,
			Interceptors:   interceptors,
		})
		if err != nil {
			return fmt.Errorf("a Temporal client with metrics: %w", err)
		}
		defer metricsClient.Close()
		temporalClient = metricsClient
	}
	ready.set(checkTemporal, func(ctx context.Context) error {
		_, err := temporalClient.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})

	st := store.New(pool)
	backfillSettings := workflows.NewBackfillSettings(cfg.MaxRuntime(), cfg.IdlePoll)
	backfillSettings.BatchPoll = cfg.AIBatchPoll
	writer, insightsMode, err := insightWriter(cfg, st, logger)
	if err != nil {
		return err
	}
	acts := &activities.Activities{
		Store:    st,
		Insights: writer,
		TopN:     cfg.TopN,
		// 0 keeps per-member top-N lists.
		MaxAppearances: cfg.MaxAppearances,
		BatchSize:      activities.BatchSizeFor(cfg.BatchSize, cfg.MaxAppearances),
		MaxRuntime:     cfg.MaxRuntime(),
		Lease:          leaseFor(cfg),
		Logger:         logger,
		Metrics:        obs.app,
		FanOutMinPairs: cfg.FanOutMinPairs,
		ShardWorkers: func(ctx context.Context) (int, error) {
			return shardWorkers(ctx, temporalClient, workflows.ShardTaskQueue(cfg.TaskQueue))
		},
		AIMaxCallsPerEvent: cfg.AIMaxCallsPerEvent,
		AISpendLimitUSD:    cfg.AIMaxSpendUSDPerEvent,
		AIBatch:            cfg.AIBatchAPI,
		AIBatchMinBacklog:  cfg.AIBatchMinBacklog,
		StartBackfill: func(ctx context.Context, eventID string) error {
			return workflows.WakeBackfill(ctx, temporalClient, cfg.TaskQueue, eventID, backfillSettings)
		},
		EventPaused: func(ctx context.Context, eventID string) (bool, error) {
			return workflows.EventPaused(ctx, temporalClient, eventID)
		},
	}
	// Validation refused a spend limit with an unpriced model; without a
	// limit an unpriced model's spend shows as $0.
	acts.AIPrice, _ = cfg.ModelPrice()
	// Without WorkerStopTimeout the SDK cancels running activities the
	// moment Stop is called; with it, they have that long to finish.
	workerOpts := worker.Options{WorkerStopTimeout: cfg.WorkerStopTimeout}
	if obs.app != nil {
		workerOpts.Interceptors = append(workerOpts.Interceptors, obs.app.ActivityInterceptor(activitySteps))
	}
	drain := activities.NewDrain(acts)
	workerOpts.Interceptors = append(workerOpts.Interceptors, drain.Interceptor())
	w := worker.New(temporalClient, cfg.TaskQueue, workerOpts)
	w.RegisterWorkflow(workflows.EventMatchmaking)
	w.RegisterWorkflow(workflows.AIBackfill)
	w.RegisterActivity(acts)
	// The shards of large batches have a queue of their own, taken one at a
	// time: a shard keeps every core busy, so a second one would only wait
	// here while another worker process idles. The same Activities serve
	// both queues, so shards and batches share the worker's cached events.
	shardOpts := workerOpts
	shardOpts.MaxConcurrentActivityExecutionSize = shardsAtOnce
	shardWorker := worker.New(temporalClient, workflows.ShardTaskQueue(cfg.TaskQueue), shardOpts)
	shardWorker.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	if err := shardWorker.Start(); err != nil {
		w.Stop()
		return fmt.Errorf("start worker on task queue %s: %w", workflows.ShardTaskQueue(cfg.TaskQueue), err)
	}
	// Every way out of run from here drains: a signal, or a listener error.
	defer stopGracefully(cfg.WorkerStopTimeout, drain, ready, logger, w, shardWorker)
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress,
		"namespace", cfg.TemporalNamespace, "batch_size", acts.BatchSize, "max_runtime_ms", cfg.MaxRuntimeMS,
		"top_n", cfg.TopN, "max_appearances", cfg.MaxAppearances, "insights", insightsMode, "stop_timeout", cfg.WorkerStopTimeout,
		"metrics", obs.describe(), "health", obs.describeHealth(), "scoring_kernel", matching.Kernel())

	settings := workflows.NewSettings(acts.BatchSize, cfg.MaxRuntime(), cfg.IdlePoll)
	l := &listener.Listener{
		Pool:    listenPool,
		Store:   st,
		Metrics: obs.app,
		Wake: func(ctx context.Context, eventID string) error {
			ref := workflows.EventRef{ID: eventID}
			// The code and name only label a workflow this call starts.
			if ev, err := st.FindEvent(ctx, eventID); err == nil {
				ref.Code, ref.Name = ev.Code, ev.Name
			}
			_, err := workflows.Wake(ctx, temporalClient, cfg.TaskQueue, ref, settings)
			return err
		},
		Debounce:   cfg.WakeDebounce,
		SafetyPoll: cfg.SafetyPoll,
		Logger:     logger,
	}
	ready.set(checkListener, func(context.Context) error {
		if !l.Listening() {
			return errNotListening
		}
		return nil
	})
	if obs.app != nil {
		go every(ctx, cfg.SafetyPoll, func(ctx context.Context) { retainEnabledEvents(ctx, st, obs.app, logger) })
	}
	if writer != nil {
		ensure := func(ctx context.Context, eventID string) error {
			return workflows.EnsureBackfill(ctx, temporalClient, cfg.TaskQueue, eventID, backfillSettings)
		}
		go every(ctx, cfg.SafetyPoll, func(ctx context.Context) { ensureBackfills(ctx, st, logger, ensure) })
	}
	if err := l.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// errNotListening is the listener's readiness while it holds no LISTEN.
var errNotListening = errors.New("holds no LISTEN: connecting or reconnecting to the database")

// releaseWait bounds how long a stopped worker waits for the steps it
// cancelled to release their batches (activities.releaseTimeout each).
const releaseWait = 6 * time.Second

// stopGracefully stops the Temporal workers, giving the running batch
// steps stopTimeout (WORKER_STOP_TIMEOUT) to finish, and says what became
// of them. Steps still running at activities.StopDeadline are cancelled
// and their batches released, so the next claim takes their members at
// once rather than after their lease.
func stopGracefully(stopTimeout time.Duration, drain *activities.Drain, ready *readiness, logger *slog.Logger, workers ...worker.Worker) {
	start := time.Now()
	ready.setStopping()
	running, deadline := drain.StartStopping(stopTimeout)
	if running == 0 {
		logger.Info("shutting down: no batch step is running; stopping the Temporal workers", "stop_timeout", stopTimeout)
	} else {
		logger.Info(fmt.Sprintf("shutting down: letting %d running batch steps finish; a step still running after %s is cancelled and its batch released to the queue",
			running, deadline), "stop_timeout", stopTimeout)
	}
	// Each worker waits up to stopTimeout; stopped together, they take
	// that long at most, not that long each.
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(w.Stop)
	}
	wg.Wait()
	waitCtx, cancel := context.WithTimeout(context.Background(), releaseWait)
	defer cancel()
	sum := drain.WaitStopped(waitCtx)
	logger.Info("worker stopped", "steps_finished", sum.Finished, "batches_released", sum.Released,
		"steps_handed_back", sum.HandedBack, "took", time.Since(start).Round(time.Millisecond))
	if sum.Running > 0 {
		logger.Warn("exiting with batch steps still running: Temporal retries them on another worker after their start-to-close timeout",
			"steps", sum.Running)
	}
}

// checkPooledSession says how DATABASE_URL is reached and, through a
// transaction-mode pooler, whether the session timeouts still hold: there
// they cannot be startup parameters and come from the role's settings,
// which `starter grant-worker` makes.
func checkPooledSession(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, logger *slog.Logger) error {
	p, err := store.DetectPooler(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	listen := "DATABASE_URL"
	if cfg.DatabaseListenURL != "" {
		listen = "DATABASE_LISTEN_URL"
	}
	if !p.Transaction {
		logger.Info("database", "queries", "direct or session pooler", "listen", listen)
		return nil
	}
	logger.Info("database", "queries", "transaction-mode pooler ("+p.Reason+"): unnamed statements, no statement cache",
		"listen", listen)
	var timeout string
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout')`).Scan(&timeout); err != nil {
		return fmt.Errorf("read statement_timeout: %w", err)
	}
	if timeout == "0" {
		logger.Warn("through the pooler this role has no statement_timeout, lock_timeout or idle_in_transaction_session_timeout: " +
			"run `starter grant-worker <this role>`, which sets them on the role, so that a stuck session cannot hold a batch's locks")
	}
	return nil
}

// activitySteps names the batch step each activity is timed as in
// matchmaking_batch_duration_seconds{step}.
var activitySteps = map[string]string{
	"ClaimBatch":    "claim",
	"ScoreBatch":    "score",
	"WriteInsights": "insights",
	"CommitBatch":   "commit",
	"ReleaseBatch":  "release",
}

// observability is the worker's HTTP endpoint (metrics and health) and
// metrics: all nil when METRICS_ADDR is empty or its port could not be had.
type observability struct {
	endpoint *endpoint
	app      *metrics.App
	sdk      client.MetricsHandler
}

// startEndpoint serves /metrics, /healthz and /readyz on METRICS_ADDR
// until stop is called. A port that cannot be had is logged, not fatal:
// matching goes on without metrics or health endpoints (as when a second
// worker runs on the same host with the default port).
func startEndpoint(cfg config.Config, ready *readiness, logger *slog.Logger) (*observability, error) {
	if cfg.MetricsAddr == "" {
		return &observability{}, nil
	}
	reg := metrics.NewRegistry()
	app, err := metrics.NewApp(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	sdk, err := metrics.NewSDKHandler(reg, logger)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := metrics.RegisterPairsScored(reg, matching.PairsScored); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ep, err := serveEndpoint(cfg.MetricsAddr, endpointMux(reg, ready), logger)
	if err != nil {
		logger.Error("running without metrics and health endpoints: set METRICS_ADDR to a free host:port, or to empty to silence this",
			"metrics_addr", cfg.MetricsAddr, "error", err)
		return &observability{}, nil
	}
	return &observability{endpoint: ep, app: app, sdk: sdk}, nil
}

func (o *observability) describe() string {
	if o.endpoint == nil {
		return "off"
	}
	return "http://" + o.endpoint.addr() + metrics.Path
}

func (o *observability) describeHealth() string {
	if o.endpoint == nil {
		return "off"
	}
	return "http://" + o.endpoint.addr() + pathReadyz
}

// stop shuts the endpoint down, letting a request in flight finish.
func (o *observability) stop(logger *slog.Logger) {
	if o.endpoint == nil {
		return
	}
	if err := o.endpoint.shutdown(); err != nil {
		logger.Warn("metrics and health endpoint", "error", err)
	}
}

// insightWriter picks the AI writer when an API key is set, and says which
// one it picked (never the key itself).
func insightWriter(cfg config.Config, st *store.Store, logger *slog.Logger) (activities.InsightWriter, string, error) {
	if !cfg.AIEnabled() {
		return nil, "fallback only (OPENAI_API_KEY is not set)", nil
	}
	client, err := insight.New(insight.Config{
		APIKey:            cfg.OpenAIAPIKey,
		Model:             cfg.OpenAIModel,
		BaseURL:           cfg.OpenAIBaseURL,
		RequestsPerMinute: cfg.AIRequestsPerMinute,
		RequestTimeout:    cfg.AIRequestTimeout,
	})
	if err != nil {
		return nil, "", fmt.Errorf("AI insights: %w", err)
	}
	endpoint := "OpenAI"
	if u, err := url.Parse(cfg.OpenAIBaseURL); err == nil && u.Host != "" {
		endpoint = u.Host // never the whole URL: some providers put keys in it
	}
	mode := fmt.Sprintf("AI (%s at %s, fallback on failure)", cfg.OpenAIModel, endpoint)
	return &activities.AIWriter{
		Client:      client,
		Store:       st,
		Model:       cfg.OpenAIModel,
		Concurrency: cfg.AIConcurrency,
		Logger:      logger,
	}, mode, nil
}

// leaseFor sizes a claim's lease so it outlives a batch's four steps with
// their retries; a crashed worker's rows come back after it.
func leaseFor(cfg config.Config) time.Duration {
	return 4*cfg.MaxRuntime() + time.Minute
}

// shardPollerHorizon is how recently a worker must have polled the shard
// queue to count; Temporal remembers pollers for some minutes after they
// stop.
const shardPollerHorizon = time.Minute

// shardWorkers counts the worker processes that polled the shard queue
// within shardPollerHorizon.
func shardWorkers(ctx context.Context, c client.Client, queue string) (int, error) {
	resp, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return 0, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	workers := map[string]bool{}
	for _, p := range resp.GetPollers() {
		if time.Since(p.GetLastAccessTime().AsTime()) <= shardPollerHorizon {
			workers[p.GetIdentity()] = true
		}
	}
	return len(workers), nil
}

// ensureBackfills starts the AI backfill of each enabled event that still
// has fallback insights to upgrade and no backfill running. Commits start
// backfills; this, run every safety poll, catches the ones they could not
// (Temporal unreachable at that moment, a worker without AI that ended a
// backfill, an event re-enabled with its lists unchanged), so no event's
// fallbacks wait for a commit that may never come. A failed read or start
// is tried again at the next round.
func ensureBackfills(ctx context.Context, st *store.Store, logger *slog.Logger, ensure func(context.Context, string) error) {
	events, err := st.EventsAwaitingAI(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("could not list the events awaiting AI insights; trying again at the next safety poll", "error", err)
		}
		return
	}
	for _, eventID := range events {
		if err := ensure(ctx, eventID); err != nil && ctx.Err() == nil {
			logger.Warn("could not start the AI backfill; trying again at the next safety poll", "event_id", eventID, "error", err)
		}
	}
}

// every runs fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		fn(ctx)
	}
}

// retainEnabledEvents drops the per-event series of events that are no
// longer enabled (disabled, or deleted), so the endpoint shows only events
// being matched; it runs every safety poll. A failed read keeps every
// series until the next round.
func retainEnabledEvents(ctx context.Context, st *store.Store, app *metrics.App, logger *slog.Logger) {
	events, err := st.EnabledEvents(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Debug("could not read the enabled events for the metrics", "error", err)
		}
		return
	}
	keep := make(map[string]bool, len(events))
	for _, ev := range events {
		keep[ev.ID] = true
	}
	if n := app.RetainEvents(keep); n > 0 {
		logger.Info("dropped the metrics of events no longer enabled", "events", n)
	}
}
