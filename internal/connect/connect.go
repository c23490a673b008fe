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
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/telemetry"
	"github.com/eventmatch/matchmaker/store"
)

// Database opens the pool. Its sessions are named after the binary
// ("matchmaker-worker", "matchmaker-starter") in pg_stat_activity. With
// tracing on, the queries of a traced operation are spans of it.
func Database(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	const variable = "DATABASE_URL"
	poolCfg, err := store.ParsePoolConfig(variable, cfg.DatabaseURL, "matchmaker-"+filepath.Base(os.Args[0]))
	if err != nil {
		return nil, err
	}
	poolCfg.ConnConfig.Tracer = telemetry.QueryTracer()
	return store.Open(ctx, variable, poolCfg)
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

// Temporal dials the Temporal frontend with the settings ClientOptions
// builds (address, namespace, TLS, mTLS, API key, profile), checks that it
// answers and that the namespace has attrs, the workflow's search
// attributes (see EnsureSearchAttributes). With tracing on, the client
// and the workers built from it trace workflows and activities.
// Every failure is one line naming the address, namespace and how the
// client connected, never the API key.
func Temporal(ctx context.Context, cfg config.Config, logger *slog.Logger, attrs []temporal.SearchAttributeKey) (client.Client, error) {
	opts, sec, err := ClientOptions(cfg, envconfig.EnvLookupOS)
	if err != nil {
		return nil, fmt.Errorf("Temporal connection settings: %w", err)
	}
	if opts.Interceptors, err = telemetry.TemporalInterceptors(); err != nil {
		return nil, err
	}
	if logger != nil {
		opts.Logger = tlog.NewStructuredLogger(logger)
		logger.Info("connecting to Temporal", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
			"security", sec.String())
	} else {
		opts.Logger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, dialError(cfg, sec, err)
	}
	// The dial checks the server, not the namespace: a wrong one would
	// otherwise surface as a search-attribute failure.
	if err := RequireNamespace(dialCtx, c, cfg.TemporalAddress, cfg.TemporalNamespace); err != nil {
		c.Close()
		return nil, err
	}
	// The workflow upserts these; a namespace without them would fail its
	// workflow tasks, so they must exist before anything starts.
	if err := EnsureSearchAttributes(dialCtx, c, cfg.TemporalNamespace, attrs); err != nil {
		c.Close()
		return nil, fmt.Errorf("search attributes: %w", err)
	}
	return c, nil
}

// dialError says whether the server refused the client's credentials or
// could not be reached, with how the client connected, which is what an
// operator checks first (a TLS handshake refused for want of a client
// certificate reaches the SDK as Unavailable: the description shows
// "client certificate none").
func dialError(cfg config.Config, sec Security, err error) error {
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("Temporal at %s refused this client's credentials (namespace %s; %s): %w; check TEMPORAL_API_KEY or the client certificate",
			cfg.TemporalAddress, cfg.TemporalNamespace, sec, err)
	default:
		return fmt.Errorf("Temporal unreachable at %s (namespace %s; %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, sec, err)
	}
}
