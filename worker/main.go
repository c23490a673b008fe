// Command worker runs the Temporal worker of the matchmaking engine and the
// queue listener that wakes event workflows.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/insight"
	"github.com/eventmatch/matchmaker/internal/connect"
	"github.com/eventmatch/matchmaker/listener"
	"github.com/eventmatch/matchmaker/store"
	"github.com/eventmatch/matchmaker/workflows"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(logger); err != nil {
		logger.Error("worker stopped", "error", err)
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pool, err := connect.Database(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := connect.RequireSchema(ctx, pool); err != nil {
		return err
	}
	temporalClient, err := connect.Temporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer temporalClient.Close()

	st := store.New(pool)
	writer, insightsMode, err := insightWriter(cfg, st, logger)
	if err != nil {
		return err
	}
	w := worker.New(temporalClient, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.EventMatchmaking)
	w.RegisterActivity(&activities.Activities{
		Store:    st,
		Insights: writer,
		TopN:     cfg.TopN,
		Lease:    leaseFor(cfg),
		Logger:   logger,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	defer w.Stop()
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress,
		"namespace", cfg.TemporalNamespace, "batch_size", cfg.BatchSize, "max_runtime_ms", cfg.MaxRuntimeMS,
		"top_n", cfg.TopN, "insights", insightsMode)

	settings := workflows.SettingsFromConfig(cfg)
	l := &listener.Listener{
		Pool:  pool,
		Store: st,
		Wake: func(ctx context.Context, eventID string) error {
			_, err := workflows.Wake(ctx, temporalClient, cfg.TaskQueue, eventID, settings)
			return err
		},
		Debounce:   cfg.WakeDebounce,
		SafetyPoll: cfg.SafetyPoll,
		Logger:     logger,
	}
	if err := l.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("shutting down: finishing running activities")
	return nil
}

// insightWriter picks the AI writer when an API key is set, and says which
// one it picked (never the key itself).
func insightWriter(cfg config.Config, st *store.Store, logger *slog.Logger) (activities.InsightWriter, string, error) {
	if !cfg.AIEnabled() {
		return activities.FallbackWriter{}, "fallback only (OPENAI_API_KEY is not set)", nil
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
