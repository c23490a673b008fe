// Package migrations holds the schema as plain SQL files, embedded in the
// binaries and applied by tern.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var files embed.FS

// versionTable records the applied version. tern takes an advisory lock
// around it, so two migrators started at once apply each file once. The lock
// is a session lock: migrate over a direct or session-mode connection, never
// through a transaction-mode pooler.
const versionTable = "public.matchmaking_schema_version"

// Apply brings the database up to the newest migration. It is idempotent.
func Apply(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("prepare migrations: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return 0, 0, fmt.Errorf("load migrations: %w", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return from, 0, fmt.Errorf("apply migrations: %w", err)
	}
	return from, int32(len(m.Migrations)), nil
}
