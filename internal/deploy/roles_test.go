package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/migrations"
	"github.com/eventmatch/matchmaker/store"
)

const (
	rolesFile     = "deploy/postgres/roles.sql"
	appGrantsFile = "deploy/postgres/app-grants.sql"
)

// composeRoles reads the roles deploy/postgres/roles.sql creates.
func composeRoles(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`ARRAY\[([^\]]*)\]`).FindStringSubmatch(string(repoFile(t, rolesFile)))
	if m == nil {
		t.Fatalf("%s creates no roles from an ARRAY[...]", rolesFile)
	}
	var roles []string
	for _, q := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(m[1], -1) {
		roles = append(roles, q[1])
	}
	return roles
}

// userOf is a service's DATABASE_URL user and password.
func userOf(t *testing.T, c compose, name string) (user, password string) {
	t.Helper()
	u, err := url.Parse(c.service(t, name).env(t)["DATABASE_URL"])
	if err != nil || u.User == nil {
		t.Fatalf("service %s: DATABASE_URL without a user: %v", name, err)
	}
	password, _ = u.User.Password()
	return u.User.Username(), password
}

// TestComposeRoles: the stack runs one role per job. The owner migrates,
// grants and operates; the worker is a role of its own that grant-worker,
// run before the worker starts, gives what it needs; the web app's role gets
// its grants from app-grants; every role comes from the init script that
// the postgres service runs.
func TestComposeRoles(t *testing.T) {
	c := loadCompose(t)
	roles := composeRoles(t)
	if len(roles) != 3 {
		t.Fatalf("%s creates %v, want three roles (owner, worker, web app)", rolesFile, roles)
	}
	if !strings.Contains(string(repoFile(t, rolesFile)), "PASSWORD %L', r, r)") {
		t.Fatalf("%s no longer sets each role's password to its name; update this test with it", rolesFile)
	}

	owner, ownerPassword := userOf(t, c, svcMigrate)
	for _, name := range []string{svcGrantWorker, svcStarter} {
		if u, p := userOf(t, c, name); u != owner || p != ownerPassword {
			t.Errorf("service %s runs as %s, want the owner %s, who migrated", name, u, owner)
		}
	}
	worker, workerPassword := userOf(t, c, svcWorker)
	if worker == owner || worker == "postgres" {
		t.Errorf("the worker runs as %s: want a role of its own, not the owner (%s) or the superuser", worker, owner)
	}
	for _, r := range [][2]string{{owner, ownerPassword}, {worker, workerPassword}} {
		if !slices.Contains(roles, r[0]) {
			t.Errorf("role %s is not created by %s (roles %v)", r[0], rolesFile, roles)
		}
		if r[1] != r[0] {
			t.Errorf("role %s: password in DATABASE_URL %q, %s sets it to the name", r[0], r[1], rolesFile)
		}
	}
	if ep := words(c.service(t, svcGrantWorker).Entrypoint); !slices.Equal(ep, []string{"/usr/local/bin/starter", "grant-worker", worker}) {
		t.Errorf("service %s runs %v, want starter grant-worker %s", svcGrantWorker, ep, worker)
	}
	if cond := c.service(t, svcWorker).dependencies(t)[svcGrantWorker]; cond != "service_completed_successfully" {
		t.Errorf("the worker starts on %q of %s, want service_completed_successfully", cond, svcGrantWorker)
	}

	// The web app's role: the one left, granted by app-grants as the owner.
	app := ""
	for _, r := range roles {
		if r != owner && r != worker {
			app = r
		}
	}
	grants := string(repoFile(t, appGrantsFile))
	for _, want := range []string{
		"ON public.events, public.all_events_members TO " + app,
		"GRANT SELECT ON public.matches TO " + app,
		"FOR SELECT TO " + app,
	} {
		if !strings.Contains(grants, want) {
			t.Errorf("%s lacks %q", appGrantsFile, want)
		}
	}
	ag := c.service(t, svcAppGrants)
	env := ag.env(t)
	if env["PGUSER"] != owner || env["PGPASSWORD"] != ownerPassword || env["PGHOST"] != svcPostgres ||
		"/"+env["PGDATABASE"] != strings.TrimPrefix(databaseOf(t, c.service(t, svcWorker).env(t)["DATABASE_URL"]), svcPostgres+":5432") {
		t.Errorf("service %s connects as %v, want the owner on the app's database", svcAppGrants, env)
	}
	ep := words(ag.Entrypoint)
	if len(ep) == 0 || ep[0] != "psql" || !slices.Contains(ep, "ON_ERROR_STOP=1") {
		t.Errorf("service %s runs %v, want psql stopping at the first error", svcAppGrants, ep)
	} else if host, ok := hostPath(ag, ep[len(ep)-1]); !ok || host != appGrantsFile {
		t.Errorf("service %s runs %s, which is not %s (mounted: %v)", svcAppGrants, ep[len(ep)-1], appGrantsFile, host)
	}

	// The init script is where the postgres image runs it.
	pg := c.service(t, svcPostgres)
	if host, ok := hostPath(pg, "/docker-entrypoint-initdb.d/10-roles.sql"); !ok || host != rolesFile {
		t.Errorf("service %s does not mount %s into /docker-entrypoint-initdb.d", svcPostgres, rolesFile)
	}
}

// TestComposeRolesOnPostgres runs the stack's database setup against the
// local PostgreSQL as Compose would: the init script as the superuser, the
// migration and grant-worker as the owner, app-grants as the owner; then
// each role does its job and no more.
func TestComposeRolesOnPostgres(t *testing.T) {
	testenv.RequireIntegration(t)
	ctx := t.Context()
	roles := composeRoles(t)
	admin := connectAs(t, testenv.AdminURL(), "")
	// The roles are the server's. Those this test creates are dropped when
	// it ends, after the database (this cleanup is registered first).
	var existing []string
	rows, err := admin.Query(ctx, `SELECT rolname::text FROM pg_roles WHERE rolname = ANY ($1)`, roles)
	if err != nil {
		t.Fatal(err)
	}
	if existing, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testenv.AdminURL())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		for _, r := range roles {
			if !slices.Contains(existing, r) {
				if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+r); err != nil {
					t.Logf("drop role %s: %v", r, err)
				}
			}
		}
	})
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	dbName := "mm_test_compose_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, testenv.AdminURL()); err == nil {
			defer conn.Close(ctx)
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		}
	})

	c := loadCompose(t)
	owner, _ := userOf(t, c, svcMigrate)
	worker, _ := userOf(t, c, svcWorker)
	superuser := connectAs(t, testenv.AdminURL(), dbName)
	if _, err := superuser.Exec(ctx, string(repoFile(t, rolesFile))); err != nil {
		t.Fatalf("%s: %v", rolesFile, err)
	}
	if _, err := superuser.Exec(ctx, string(repoFile(t, rolesFile))); err != nil {
		t.Fatalf("%s again: %v", rolesFile, err)
	}
	asOwner := connectAs(t, testenv.AdminURL(), dbName, owner)
	if _, _, err := migrations.Apply(ctx, asOwner); err != nil {
		t.Fatalf("migrate as %s: %v", owner, err)
	}
	if _, err := store.GrantWorker(ctx, asOwner, worker); err != nil {
		t.Fatalf("grant-worker as %s: %v", owner, err)
	}
	if _, err := asOwner.Exec(ctx, string(repoFile(t, appGrantsFile))); err != nil {
		t.Fatalf("%s as %s: %v", appGrantsFile, owner, err)
	}
	app := roles[len(roles)-1]
	for _, r := range roles {
		if r != owner && r != worker {
			app = r
		}
	}

	var notOwned []string
	rows, err = asOwner.Query(ctx, `SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
		AND relkind = 'r' AND relowner <> (SELECT oid FROM pg_roles WHERE rolname = $1)`, owner)
	if err != nil {
		t.Fatal(err)
	}
	if notOwned, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(notOwned) > 0 {
		t.Errorf("tables not owned by %s: %v %v", owner, notOwned, err)
	}

	asApp := connectAs(t, testenv.AdminURL(), dbName, app)
	asWorker := connectAs(t, testenv.AdminURL(), dbName, worker)
	const event = "e0000000-0000-4000-8000-000000000001"
	must := func(conn *pgx.Conn, who, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("as %s: %s: %v", who, sql, err)
		}
	}
	refused := func(conn *pgx.Conn, who, sql string) {
		t.Helper()
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as %s: %s: %v, want permission denied", who, sql, err)
		}
	}
	count := func(sql string) (n int) {
		t.Helper()
		if err := asOwner.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The web app: its tables, which enqueue through the triggers.
	must(asApp, app, `INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, 'ev', 'Event', true)`, event)
	must(asApp, app, `INSERT INTO all_events_members (event_id, user_id, display_name) VALUES
		($1, '00000000-0000-4000-8000-000000000001', 'A'), ($1, '00000000-0000-4000-8000-000000000002', 'B')`, event)
	if n := count(`SELECT count(*) FROM matchmaking_queue`); n != 2 {
		t.Errorf("%d members queued after the web app's inserts, want 2", n)
	}
	must(asOwner, owner, `INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
		VALUES ($1, '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 1, 0.5, 'x', 'fallback')`, event)
	var read int
	if err := asApp.QueryRow(ctx, `SELECT count(*) FROM matches`).Scan(&read); err != nil || read != 1 {
		t.Errorf("the web app reads %d match rows, %v; want 1", read, err)
	}
	refused(asApp, app, `SELECT count(*) FROM matchmaking_queue`)
	refused(asApp, app, `DELETE FROM matches`)
	refused(asApp, app, `CREATE TABLE public.app_table (x int)`)

	// The worker: the engine's tables through RLS, nothing to create.
	var queued int
	if err := asWorker.QueryRow(ctx, `SELECT count(*) FROM matchmaking_queue`).Scan(&queued); err != nil || queued != 2 {
		t.Errorf("the worker reads %d queue rows, %v; want 2", queued, err)
	}
	refused(asWorker, worker, `CREATE TABLE public.worker_table (x int)`)
	refused(asWorker, worker, `UPDATE events SET name = 'x'`)
	refused(asWorker, worker, `SELECT count(*) FROM matchmaking_schema_version`)

	// Declines and organiser rules (migration 009): the web app writes
	// them, the worker reads them through its policies and writes neither.
	must(asApp, app, `INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason)
		VALUES ($1, '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003', 'declined')`, event)
	must(asApp, app, `INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'exhibitor', 'buyer')`, event)
	for _, table := range []string{"match_exclusions", "match_rules"} {
		var n int
		if err := asWorker.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 1 {
			t.Errorf("the worker reads %d rows of %s, %v; want 1", n, table, err)
		}
		refused(asWorker, worker, `DELETE FROM `+table)
	}

	// The web app turns matchmaking off: the queue goes, matches stay.
	must(asApp, app, `UPDATE events SET matchmaking_enabled = false`)
	if n := count(`SELECT count(*) FROM matchmaking_queue`); n != 0 {
		t.Errorf("%d members queued after the web app turned matchmaking off", n)
	}
	if n := count(`SELECT count(*) FROM matches`); n != 1 {
		t.Errorf("%d match rows after turning matchmaking off, want 1", n)
	}
}

// connectAs connects to database db ("" for the URL's) of the admin URL's
// server, as user (the URL's when none): the local server trusts its
// connections, so the Compose passwords are not needed.
func connectAs(t *testing.T, adminURL, db string, user ...string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	if db != "" {
		cfg.Database = db
	}
	if len(user) > 0 {
		cfg.User, cfg.Password = user[0], ""
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect as %s to %s: %v", cfg.User, cfg.Database, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
