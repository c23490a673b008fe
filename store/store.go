// Package store is the only place that talks SQL. Each method is one query or
// one transaction, with the SQL written out as SQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers branch on.
var (
	ErrEventNotFound = errors.New("event not found")
	ErrBatchNotFound = errors.New("batch not found")
	// ErrLeaseLost means another claim took some of the batch's rows after
	// its lease ran out; the batch must not write anything.
	ErrLeaseLost = errors.New("batch lease lost to another claim")
	// ErrBatchStale means the event's matches changed since the batch was
	// scored in a way the commit cannot work around (another commit; member
	// departures it can), so the batch must be scored again before it can
	// commit.
	ErrBatchStale = errors.New("event changed since the batch was scored")
)

// Store wraps a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Describe names the database the store talks to (host:port/database), for
// messages that must say which one; it never includes credentials.
func (s *Store) Describe() string { return describeTarget(s.pool.Config().ConnConfig) }

// Pool exposes the pool for callers that need a raw connection (the
// listener's LISTEN).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Connect opens a pool and checks that the database answers. The
// application name labels its sessions in pg_stat_activity unless
// DATABASE_URL names one.
func Connect(ctx context.Context, databaseURL, applicationName string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %w", redactParseError(err))
	}
	setSessionDefaults(cfg.ConnConfig.RuntimeParams, applicationName)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable at %s: %w", describeTarget(cfg.ConnConfig), rootCause(err))
	}
	return pool, nil
}

// Session settings every connection gets unless DATABASE_URL sets them
// (pgx passes unknown URL parameters, such as ?statement_timeout=60s, to the
// server). They are far below a batch's lease (at least 64 s), so a worker
// frozen inside a transaction, or a statement stuck behind one, releases its
// row locks long before another worker may take the batch over.
var sessionDefaults = map[string]string{
	"statement_timeout":                   "30s",
	"idle_in_transaction_session_timeout": "10s",
	// A lock wait longer than this is a sign of a stuck session elsewhere;
	// the step fails and Temporal retries it instead of hanging.
	"lock_timeout": "20s",
}

func setSessionDefaults(params map[string]string, applicationName string) {
	if _, set := params["application_name"]; !set && applicationName != "" {
		params["application_name"] = applicationName
	}
	for name, value := range sessionDefaults {
		if _, set := params[name]; !set {
			params[name] = value
		}
	}
}

func describeTarget(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// rootCause trims pgconn's nested "failed to connect to ..." wrapping down to
// the part an operator acts on.
func rootCause(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		if inner := errors.Unwrap(connErr); inner != nil {
			return inner
		}
	}
	return err
}

var passwordInURL = regexp.MustCompile(`://([^:/@]+):[^@]*@`)

// redactParseError keeps a password in a malformed URL out of the message.
func redactParseError(err error) error {
	return errors.New(passwordInURL.ReplaceAllString(err.Error(), "://$1:xxxxx@"))
}

// IsUndefinedTable reports whether err is Postgres' "relation does not
// exist", the sign of an unmigrated database.
func IsUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// Event is a row of events.
type Event struct {
	ID                 string
	Code               string
	Name               string
	MatchmakingEnabled bool
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// LooksLikeUUID tells an event UUID from an event code.
func LooksLikeUUID(s string) bool { return uuidPattern.MatchString(s) }

// FindEvent looks an event up by UUID or, failing that, by code.
func (s *Store) FindEvent(ctx context.Context, ref string) (Event, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Event{}, fmt.Errorf("%w: empty event code", ErrEventNotFound)
	}
	const byID = `SELECT id::text, code, name, matchmaking_enabled FROM events WHERE id = $1::uuid`
	const byCode = `SELECT id::text, code, name, matchmaking_enabled FROM events WHERE code = $1`
	query := byCode
	if LooksLikeUUID(ref) {
		query = byID
	}
	var e Event
	err := s.pool.QueryRow(ctx, query, ref).Scan(&e.ID, &e.Code, &e.Name, &e.MatchmakingEnabled)
	if errors.Is(err, pgx.ErrNoRows) && query == byID {
		// A code may itself look like a UUID.
		err = s.pool.QueryRow(ctx, byCode, ref).Scan(&e.ID, &e.Code, &e.Name, &e.MatchmakingEnabled)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, fmt.Errorf("%w: no event with code or id %q", ErrEventNotFound, ref)
	}
	if err != nil {
		return Event{}, fmt.Errorf("look up event %q: %w", ref, err)
	}
	return e, nil
}

// EnableEvent turns matchmaking on. The events trigger enqueues every member
// at priority 3 when the flag goes from false to true; an already enabled
// event is left as it is. It returns the queue size afterwards.
func (s *Store) EnableEvent(ctx context.Context, eventID string) (queued int, err error) {
	const q = `UPDATE events SET matchmaking_enabled = true WHERE id = $1 AND NOT matchmaking_enabled`
	if _, err := s.pool.Exec(ctx, q, eventID); err != nil {
		return 0, fmt.Errorf("enable matchmaking for event %s: %w", eventID, err)
	}
	return s.QueueDepth(ctx, eventID)
}

// Queue priorities, as in the seed.
const (
	PriorityNewMember   = 0
	PriorityRematch     = 1
	PriorityProfile     = 2
	PriorityEventEnable = 3
)

// EnqueueEvent queues every member of the event at the priority (the seed's
// enqueue_event_matchmaking) and returns the queue size afterwards.
func (s *Store) EnqueueEvent(ctx context.Context, eventID string, priority int) (int, error) {
	if _, err := s.pool.Exec(ctx, `SELECT enqueue_event_matchmaking($1, $2)`, eventID, priority); err != nil {
		return 0, fmt.Errorf("enqueue every member of event %s: %w", eventID, err)
	}
	return s.QueueDepth(ctx, eventID)
}

// QueueDepth counts the event's queued members, claimed or not.
func (s *Store) QueueDepth(ctx context.Context, eventID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM matchmaking_queue WHERE event_id = $1`, eventID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count queue of event %s: %w", eventID, err)
	}
	return n, nil
}

// EventsWithClaimableWork lists enabled events whose queue has rows nobody
// holds a live lease on: the listener's safety poll wakes their workflows.
func (s *Store) EventsWithClaimableWork(ctx context.Context) ([]string, error) {
	const q = `
		SELECT DISTINCT q.event_id::text
		FROM matchmaking_queue q
		JOIN events e ON e.id = q.event_id AND e.matchmaking_enabled
		WHERE q.claim_token IS NULL OR q.lease_expires_at < now()
		ORDER BY 1`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("find events with queued work: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find events with queued work: %w", err)
	}
	return ids, nil
}
