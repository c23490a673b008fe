// Package store is the only place that talks SQL. Each method is one query or
// one transaction, with the SQL written out as SQL.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	// departures it can), or its staged rows are gone (a crash of the
	// database empties the unlogged staging table), so the batch must be scored
	// again before it can commit.
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

// Pool exposes the pool for tests and checks that run their own SQL; the
// engine's queries all go through Store's methods.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Connect opens a pool on DATABASE_URL and checks that the database
// answers. The application name labels its sessions in pg_stat_activity
// unless the URL names one. See ConnectEnv for poolers.
func Connect(ctx context.Context, databaseURL, applicationName string) (*pgxpool.Pool, error) {
	return ConnectEnv(ctx, "DATABASE_URL", databaseURL, applicationName)
}

// ConnectEnv is Connect for the URL read from the environment variable
// variable, which its errors name.
//
// The URL may point at a transaction-mode pooler (pgbouncer with
// pool_mode = transaction, Supabase's pooler on port 6543); see
// DetectPooler for how it is recognised. Through one, consecutive
// transactions of a client may run on different server sessions, so the
// pool then runs every query as an unnamed statement
// (pgx.QueryExecModeExec) instead of caching prepared statements per
// session, which fails there with `prepared statement "stmtcache_..."
// already exists`. A default_query_exec_mode in the URL is used as given.
// Session settings cannot travel with such a connection either (a pooler
// refuses unknown startup parameters, and a SET would stay on a server
// session other clients share), so the session defaults below are not sent:
// `starter grant-worker` sets them on the worker's role instead.
func ConnectEnv(ctx context.Context, variable, databaseURL, applicationName string) (*pgxpool.Pool, error) {
	cfg, err := ParsePoolConfig(variable, databaseURL, applicationName)
	if err != nil {
		return nil, err
	}
	return Open(ctx, variable, cfg)
}

// Open opens a pool with cfg (from ParsePoolConfig, for the URL read from
// the environment variable variable) and checks that the database answers.
func Open(ctx context.Context, variable string, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		cause := rootCause(err)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateProtocolViolation {
			// pgbouncer's answer to the session defaults ("unsupported
			// startup parameter"), SQLSTATE 08P01.
			return nil, fmt.Errorf("database at %s refused the connection: %w; this looks like a pooler such as pgbouncer, "+
				"which refuses session settings at connect: add pgbouncer=true to %s (the role then carries them: starter grant-worker)",
				describeTarget(cfg.ConnConfig), cause, variable)
		}
		return nil, fmt.Errorf("database unreachable at %s: %w", describeTarget(cfg.ConnConfig), cause)
	}
	return pool, nil
}

// sqlstateProtocolViolation is what pgbouncer answers a startup parameter
// it does not know with.
const sqlstateProtocolViolation = "08P01"

// ParsePoolConfig is the pool configuration ConnectEnv uses for a URL.
func ParsePoolConfig(variable, databaseURL, applicationName string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid PostgreSQL URL: %w", variable, redactParseError(err))
	}
	pooler, err := detectPooler(cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	if pooler.Transaction {
		if !strings.Contains(databaseURL, "default_query_exec_mode") {
			cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		}
		setApplicationName(cfg.ConnConfig.RuntimeParams, applicationName)
	} else {
		setSessionDefaults(cfg.ConnConfig.RuntimeParams, applicationName)
	}
	return cfg, nil
}

// Pooler says what DetectPooler found.
type Pooler struct {
	// Transaction is true for a transaction-mode pooler.
	Transaction bool
	// Reason says how it was recognised, for logs.
	Reason string
}

// SupabaseTransactionPoolerPort is the port of Supabase's transaction-mode
// pooler (its session-mode pooler listens on 5432).
const SupabaseTransactionPoolerPort = 6543

// DetectPooler reports whether a URL goes through a transaction-mode
// pooler: it says so with pgbouncer=true (the parameter Supabase documents
// for its pooler; pgbouncer=false says it does not), or else it uses port
// 6543, Supabase's transaction pooler. Anything else is taken for a direct
// connection or a session-mode pooler, both of which keep a client's
// session.
func DetectPooler(databaseURL string) (Pooler, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return Pooler{}, fmt.Errorf("not a valid PostgreSQL URL: %w", redactParseError(err))
	}
	return detectPooler(cfg)
}

// detectPooler also removes the pgbouncer parameter from the startup
// parameters: pgx would send it to the server, and a pooler refuses it.
func detectPooler(cfg *pgx.ConnConfig) (Pooler, error) {
	if v, set := cfg.RuntimeParams["pgbouncer"]; set {
		delete(cfg.RuntimeParams, "pgbouncer")
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on":
			return Pooler{Transaction: true, Reason: "pgbouncer=true in the URL"}, nil
		case "false", "0", "no", "off":
			return Pooler{Reason: "pgbouncer=false in the URL"}, nil
		default:
			return Pooler{}, fmt.Errorf("pgbouncer=%q: want true (a transaction-mode pooler) or false", v)
		}
	}
	if cfg.Port == SupabaseTransactionPoolerPort {
		return Pooler{Transaction: true, Reason: fmt.Sprintf("port %d, Supabase's transaction pooler (add pgbouncer=false if it is not)",
			SupabaseTransactionPoolerPort)}, nil
	}
	return Pooler{}, nil
}

// Session settings every connection gets unless DATABASE_URL sets them
// (pgx passes unknown URL parameters, such as ?statement_timeout=60s, to the
// server). They are far below a batch's lease (at least 64 s), so a worker
// frozen inside a transaction, or a statement stuck behind one, releases its
// row locks long before another worker may take the batch over. Through a
// transaction-mode pooler they come from the role (RoleSettings) instead.
var sessionDefaults = map[string]string{
	"statement_timeout":                   "30s",
	"idle_in_transaction_session_timeout": "10s",
	// A lock wait longer than this is a sign of a stuck session elsewhere;
	// the step fails and Temporal retries it instead of hanging.
	"lock_timeout": "20s",
}

// RoleSettings are the session defaults as `ALTER ROLE ... SET` clauses,
// in a fixed order, for a role whose sessions come through a pooler.
func RoleSettings() [][2]string {
	names := make([]string, 0, len(sessionDefaults))
	for name := range sessionDefaults {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([][2]string, len(names))
	for i, name := range names {
		out[i] = [2]string{name, sessionDefaults[name]}
	}
	return out
}

func setApplicationName(params map[string]string, applicationName string) {
	if _, set := params["application_name"]; !set && applicationName != "" {
		params["application_name"] = applicationName
	}
}

func setSessionDefaults(params map[string]string, applicationName string) {
	setApplicationName(params, applicationName)
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

// workerTables is what the worker's SQL (ClaimBatch to CommitBatch, the
// quarantine, the insight cache, the AI backfill's fenced UPDATE of matches,
// the listener's poll) needs of each table,
// and no more. An engine table missing here makes GrantWorker stop: it
// means the schema is newer than this build. "" means none.
var workerTables = []struct{ table, privileges string }{
	{"events", "SELECT"},
	{"all_events_members", "SELECT"},
	{"match_exclusions", "SELECT"},
	{"match_rules", "SELECT"},
	{"matches", "SELECT, INSERT, UPDATE, DELETE"},
	{"matchmaking_queue", "SELECT, INSERT, UPDATE, DELETE"},
	{"matchmaking_event_state", "SELECT, INSERT, UPDATE"},
	{"matchmaking_batches", "SELECT, INSERT, UPDATE"},
	{"matchmaking_staged_matches", "SELECT, INSERT, UPDATE, DELETE"},
	{"matchmaking_departures", "SELECT, DELETE"},
	{"matchmaking_quarantine", "SELECT, INSERT, UPDATE"},
	{"matchmaking_insight_cache", "SELECT, INSERT"},
	{"matchmaking_change_log", "SELECT, INSERT, DELETE"},
	{"matchmaking_batch_shards", "SELECT, INSERT, UPDATE, DELETE"},
	{"matchmaking_ai_backfill", "SELECT, INSERT, UPDATE"},
	{"matchmaking_ai_skips", "SELECT, INSERT, UPDATE, DELETE"},
	{"matchmaking_ai_batches", "SELECT, INSERT, UPDATE"},
	{"matchmaking_schema_version", ""}, // the migrator's
}

// workerFunctions are the functions the worker's SQL calls.
var workerFunctions = []string{
	"matchmaking_enqueue_rows(uuid,uuid[],integer)",
	"matchmaking_clean_tags(text[],integer,integer)",
}

// appTables are the web app's tables: the worker only reads them, and
// GrantWorker adds to what a role has there without taking anything away.
var appTables = []string{"events", "all_events_members", "match_exclusions", "match_rules"}

// WorkerGrant is what GrantWorker did, read back from the catalog.
type WorkerGrant struct {
	Role string
	// Tables maps each table in public the role may use to its privileges.
	Tables map[string][]string
	// Functions the role may execute in public.
	Functions []string
	// Policies are the row level security policies that name the role, as
	// "name for COMMAND on table, table...".
	Policies []string
	// Settings are the role's session defaults in this database.
	Settings []string
	// Notes are things the operator should know (none is an error).
	Notes []string
}

// ErrRoleNotFound means GrantWorker was given a role that does not exist.
var ErrRoleNotFound = errors.New("role does not exist")

// GrantWorker gives an existing role exactly what the worker needs in the
// current database, in one transaction, run as the role that migrated (the
// owner of the engine's tables): USAGE on public; on each table the
// privileges of workerTables and on the engine's functions EXECUTE where the
// worker calls them, anything else it had on the engine's objects revoked;
// a policy per table that lets it through row level security (the engine's
// tables have RLS without policies); and the session defaults as the role's
// settings in this database, so that they hold through a transaction-mode
// pooler. Nothing lets it create or drop objects. Running it again gives the
// same result.
func GrantWorker(ctx context.Context, conn *pgx.Conn, role string) (WorkerGrant, error) {
	out := WorkerGrant{Role: role, Tables: map[string][]string{}}
	var (
		me                      string
		super, bypass, canLogin bool
		exists                  bool
	)
	err := conn.QueryRow(ctx, `
		SELECT current_user::text, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false),
		       coalesce((SELECT rolbypassrls FROM pg_roles WHERE rolname = $1), false),
		       coalesce((SELECT rolcanlogin FROM pg_roles WHERE rolname = $1), false)`, role).
		Scan(&me, &exists, &super, &bypass, &canLogin)
	if err != nil {
		return out, fmt.Errorf("look up role %q: %w", role, err)
	}
	if !exists {
		return out, fmt.Errorf("%w: %q (create it first, for example CREATE ROLE %s LOGIN PASSWORD '...')",
			ErrRoleNotFound, role, pgx.Identifier{role}.Sanitize())
	}
	if role == me {
		return out, fmt.Errorf("%q is the role running this command, which owns the engine's tables; the worker needs a role of its own", role)
	}
	if super || bypass {
		out.Notes = append(out.Notes, fmt.Sprintf("%s is a superuser or has BYPASSRLS: it needs neither, and with them it is not least privilege", role))
	}
	if !canLogin {
		out.Notes = append(out.Notes, fmt.Sprintf("%s cannot log in; the worker connects as it: ALTER ROLE %s LOGIN PASSWORD '...'",
			role, pgx.Identifier{role}.Sanitize()))
	}
	r := pgx.Identifier{role}.Sanitize()

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		type table struct {
			name          string
			rls, mine     bool
			engine, known bool
			privileges    string
		}
		rows, err := tx.Query(ctx, `
			SELECT c.relname::text, c.relrowsecurity, pg_has_role(current_user, c.relowner, 'USAGE')
			FROM pg_class c
			WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
			  AND (c.relname LIKE 'matchmaking\_%' OR c.relname = ANY ($1))
			ORDER BY 1`, append([]string{"matches"}, appTables...))
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (table, error) {
			var t table
			err := row.Scan(&t.name, &t.rls, &t.mine)
			t.engine = !slices.Contains(appTables, t.name)
			for _, w := range workerTables {
				if w.table == t.name {
					t.known, t.privileges = true, w.privileges
				}
			}
			return t, err
		})
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(tables, func(t table) bool { return t.name == "matchmaking_queue" }) {
			return errors.New("the database has no matchmaking schema; run `starter migrate` first")
		}
		for _, t := range tables {
			if !t.known {
				return fmt.Errorf("table %s is not one this build knows what the worker needs of; "+
					"run the grant-worker of the release that migrated the database", t.name)
			}
			q := pgx.Identifier{"public", t.name}.Sanitize()
			if t.engine {
				if !t.mine {
					return fmt.Errorf("%s is not owned by %s (or a role it is a member of): run grant-worker as the role that ran `starter migrate`", t.name, me)
				}
				if _, err := tx.Exec(ctx, `REVOKE ALL ON TABLE `+q+` FROM `+r); err != nil {
					return err
				}
			}
			if t.privileges == "" {
				continue
			}
			if _, err := tx.Exec(ctx, `GRANT `+t.privileges+` ON TABLE `+q+` TO `+r); err != nil {
				return err
			}
			policy := pgx.Identifier{workerPolicyName(role)}.Sanitize()
			command := "ALL"
			if !t.engine {
				command = "SELECT"
			}
			create := `CREATE POLICY ` + policy + ` ON ` + q + ` FOR ` + command + ` TO ` + r + ` USING (true)`
			if command == "ALL" {
				create += ` WITH CHECK (true)`
			}
			if !t.mine {
				// A web-app table owned by someone else: only its owner may
				// add a policy, and it is needed only under RLS.
				if t.rls {
					return fmt.Errorf("%s has row level security and is owned by another role, so the worker would read none of its rows: "+
						"ask its owner to run %s", t.name, create)
				}
				out.Notes = append(out.Notes, fmt.Sprintf("%s is owned by another role: if it ever gets row level security, its owner must run %s", t.name, create))
				continue
			}
			if _, err := tx.Exec(ctx, `DROP POLICY IF EXISTS `+policy+` ON `+q); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, create); err != nil {
				return err
			}
		}

		if _, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA public TO `+r); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT p.oid::regprocedure::text FROM pg_proc p
			WHERE p.pronamespace = 'public'::regnamespace
			  AND (p.proname LIKE 'matchmaking\_%'
			       OR p.proname IN ('enqueue_event_matchmaking', 'get_matchmaking_queue_stats', 'get_detailed_queue_info'))
			ORDER BY 1`)
		if err != nil {
			return err
		}
		functions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, fn := range functions {
			if _, err := tx.Exec(ctx, `REVOKE ALL ON FUNCTION public.`+fn+` FROM `+r); err != nil {
				return err
			}
			if slices.Contains(workerFunctions, fn) {
				if _, err := tx.Exec(ctx, `GRANT EXECUTE ON FUNCTION public.`+fn+` TO `+r); err != nil {
					return err
				}
			}
		}

		// The session defaults, for sessions that cannot carry them (a
		// transaction-mode pooler). Changing another role's settings takes
		// CREATEROLE (and, from PostgreSQL 16, ADMIN on it): without that,
		// say what to run.
		var database string
		if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
			return err
		}
		for _, s := range RoleSettings() {
			set := fmt.Sprintf(`ALTER ROLE %s IN DATABASE %s SET %s = '%s'`, r, pgx.Identifier{database}.Sanitize(), s[0], s[1])
			if _, err := tx.Exec(ctx, `SAVEPOINT role_setting`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, set); err != nil {
				if _, rbErr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT role_setting`); rbErr != nil {
					return rbErr
				}
				out.Notes = append(out.Notes, fmt.Sprintf("could not set %s on %s (%s); through a transaction-mode pooler it matters: have an administrator run %s",
					s[0], role, rootCause(err), set))
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("grant the worker's privileges to %s: %w", role, err)
	}
	return readWorkerGrant(ctx, conn, out)
}

// workerPolicyName names the policies GrantWorker makes for role. Names are
// at most 63 bytes, and roles may be as long: a long role's policies are
// named by a hash of it.
func workerPolicyName(role string) string {
	const prefix = "matchmaking_worker_"
	if len(prefix)+len(role) <= 63 {
		return prefix + role
	}
	sum := sha256.Sum256([]byte(role))
	return prefix + hex.EncodeToString(sum[:8])
}

// readWorkerGrant reads what role may do in public, from the catalog.
func readWorkerGrant(ctx context.Context, conn *pgx.Conn, out WorkerGrant) (WorkerGrant, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.relname::text, p.privilege
		FROM pg_class c
		CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p (privilege)
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
		  AND has_table_privilege($1, c.oid, p.privilege)
		ORDER BY 1, array_position(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'], p.privilege)`, out.Role)
	if err != nil {
		return out, fmt.Errorf("read %s's privileges: %w", out.Role, err)
	}
	var table, privilege string
	if _, err := pgx.ForEachRow(rows, []any{&table, &privilege}, func() error {
		out.Tables[table] = append(out.Tables[table], privilege)
		return nil
	}); err != nil {
		return out, fmt.Errorf("read %s's privileges: %w", out.Role, err)
	}
	queries := []struct {
		into *[]string
		sql  string
	}{
		{&out.Functions, `SELECT p.oid::regprocedure::text FROM pg_proc p
			WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege($1, p.oid, 'EXECUTE')
			ORDER BY 1`},
		{&out.Policies, `SELECT policyname || ' for ' || cmd || ' on ' || string_agg(tablename, ', ' ORDER BY tablename)
			FROM pg_policies WHERE schemaname = 'public' AND $1 = ANY (roles)
			GROUP BY policyname, cmd ORDER BY 1`},
		{&out.Settings, `SELECT unnest(s.setconfig) FROM pg_db_role_setting s
			WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)
			  AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
			ORDER BY 1`},
	}
	for _, q := range queries {
		rows, err := conn.Query(ctx, q.sql, out.Role)
		if err != nil {
			return out, fmt.Errorf("read %s's grants: %w", out.Role, err)
		}
		if *q.into, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return out, fmt.Errorf("read %s's grants: %w", out.Role, err)
		}
	}
	return out, nil
}
