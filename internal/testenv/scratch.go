package testenv

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/migrations"
)

// CreateDatabase creates the database name on admin's server and applies
// the schema, outside a test: for a program such as the bench, which owns
// its databases' lifetime and drops them with DropDatabase. Tests use
// Database, which drops the database when the test ends. It returns the
// new database's connection config (as admin's user).
func CreateDatabase(ctx context.Context, admin *pgx.ConnConfig, name string) (*pgx.ConnConfig, error) {
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", admin.Host, admin.Port, err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	cfg := admin.Copy()
	cfg.Database = name
	db, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	defer db.Close(ctx)
	if _, _, err := migrations.Apply(ctx, db); err != nil {
		return nil, fmt.Errorf("migrate database %s: %w", name, err)
	}
	return cfg, nil
}

// DropDatabase drops the database name on admin's server, closing any
// connection still open to it.
func DropDatabase(ctx context.Context, admin *pgx.ConnConfig, name string) error {
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
