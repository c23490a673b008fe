package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestCreateDatabaseMigratesAndDropDatabaseRemovesIt(t *testing.T) {
	RequireIntegration(t)
	ctx := t.Context()
	admin, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	name := "mm_test_" + randomSuffix()
	t.Cleanup(func() { _ = DropDatabase(context.Background(), admin, name) })

	cfg, err := CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var queued int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM matchmaking_queue`).Scan(&queued)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("the new database has no schema: %v", err)
	}

	if err := DropDatabase(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	adminConn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close(ctx)
	var left int
	if err := adminConn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("database %s is still there after DropDatabase", name)
	}
}
