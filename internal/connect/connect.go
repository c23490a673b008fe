// Package connect opens the two connections both binaries need, with errors
// that name what is unreachable.
package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/store"
)

// Database opens the pool. Its sessions are named after the binary
// ("matchmaker-worker", "matchmaker-starter") in pg_stat_activity.
func Database(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pool, err := store.Connect(ctx, cfg.DatabaseURL, "matchmaker-"+filepath.Base(os.Args[0]))
	if err != nil {
		return nil, err
	}
	return pool, nil
}

// RequireSchema fails with a hint when the migrations have not been applied.
func RequireSchema(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `SELECT 1 FROM matchmaking_queue LIMIT 0`)
	if store.IsUndefinedTable(err) {
		return errors.New("the database has no matchmaking schema; run `starter migrate` first")
	}
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	return nil
}

// Temporal dials the Temporal frontend and checks that it answers.
func Temporal(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
	}
	if logger != nil {
		opts.Logger = tlog.NewStructuredLogger(logger)
	} else {
		opts.Logger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	}
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, fmt.Errorf("Temporal unreachable at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	// The dial checks the server, not the namespace: a wrong one would
	// otherwise surface as a search-attribute failure.
	if err := RequireNamespace(dialCtx, c, cfg.TemporalAddress, cfg.TemporalNamespace); err != nil {
		c.Close()
		return nil, err
	}
	// The workflow upserts these; a namespace without them would fail its
	// workflow tasks, so register them before anything starts.
	if err := EnsureSearchAttributes(dialCtx, c, cfg.TemporalNamespace); err != nil {
		c.Close()
		return nil, fmt.Errorf("search attributes: %w (register them once with `temporal operator search-attribute create`, see README)", err)
	}
	return c, nil
}
