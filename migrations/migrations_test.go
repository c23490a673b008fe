package migrations_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/migrations"
)

// migrationFiles counts the embedded migrations' source files.
func migrationFiles(t *testing.T) int32 {
	t.Helper()
	files, err := filepath.Glob("*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files found: %v", err)
	}
	return int32(len(files))
}

func connect(t *testing.T, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func schemaVersion(t *testing.T, conn *pgx.Conn) []int32 {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT version FROM public.matchmaking_schema_version`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaObjects counts the tables, functions and triggers the migrations own.
func schemaObjects(t *testing.T, conn *pgx.Conn) (tables, functions, triggers int) {
	t.Helper()
	err := conn.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		          AND tablename IN ('events', 'all_events_members', 'matchmaking_queue', 'matches',
		                            'matchmaking_event_state', 'matchmaking_batches', 'matchmaking_staged_matches')),
		       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace),
		       (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)`).Scan(&tables, &functions, &triggers)
	if err != nil {
		t.Fatal(err)
	}
	return tables, functions, triggers
}

func TestApplyFreshThenNoop(t *testing.T) {
	t.Parallel()
	n := migrationFiles(t)
	conn := connect(t, testenv.EmptyDatabase(t))

	from, to, err := migrations.Apply(t.Context(), conn)
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if from != 0 || to != n {
		t.Errorf("first Apply: from %d to %d, want 0 to %d", from, to, n)
	}
	tables, functions, triggers := schemaObjects(t, conn)
	if tables != 7 || functions == 0 || triggers == 0 {
		t.Fatalf("after Apply: %d tables, %d functions, %d triggers", tables, functions, triggers)
	}

	from, to, err = migrations.Apply(t.Context(), conn)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if from != n || to != n {
		t.Errorf("second Apply: from %d to %d, want %d to %d", from, to, n, n)
	}
	if v := schemaVersion(t, conn); len(v) != 1 || v[0] != n {
		t.Errorf("schema version rows %v, want [%d]", v, n)
	}
	t2, f2, tr2 := schemaObjects(t, conn)
	if t2 != tables || f2 != functions || tr2 != triggers {
		t.Errorf("second Apply changed the schema: %d/%d/%d -> %d/%d/%d", tables, functions, triggers, t2, f2, tr2)
	}
}

func TestApplyOnMigratedDatabaseIsNoop(t *testing.T) {
	t.Parallel()
	n := migrationFiles(t)
	url, _ := testenv.Database(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, cfg)
	for i := range 2 {
		from, to, err := migrations.Apply(t.Context(), conn)
		if err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
		if from != to || to != n {
			t.Errorf("Apply #%d: from %d to %d, want %d to %d", i+1, from, to, n, n)
		}
	}
}

func TestApplyConcurrently(t *testing.T) {
	t.Parallel()
	n := migrationFiles(t)
	cfg := testenv.EmptyDatabase(t)
	conns := []*pgx.Conn{connect(t, cfg), connect(t, cfg)}

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(conns))
		tos   = make([]int32, len(conns))
	)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, tos[i], errs[i] = migrations.Apply(t.Context(), conn)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply on connection %d: %v", i, err)
		} else if tos[i] != n {
			t.Errorf("Apply on connection %d: to %d, want %d", i, tos[i], n)
		}
	}
	if v := schemaVersion(t, conns[0]); len(v) != 1 || v[0] != n {
		t.Errorf("schema version rows %v, want [%d]", v, n)
	}
	if tables, _, _ := schemaObjects(t, conns[1]); tables != 7 {
		t.Errorf("%d of 7 tables exist", tables)
	}
}
