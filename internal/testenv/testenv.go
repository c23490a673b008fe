// Package testenv gives integration tests real infrastructure: a fresh
// PostgreSQL database per test (a copy of a migrated template, dropped at
// the end) and a Temporal dev server from the CLI that `make temporal-cli`
// builds into bin/.
//
// Integration tests run only when INTEGRATION=1 (make test sets it), so a
// plain `go test ./...` on a machine without PostgreSQL still runs the unit
// and workflow tests.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RequireIntegration skips the test unless INTEGRATION=1.
func RequireIntegration(t testing.TB) {
	t.Helper()
	if os.Getenv("INTEGRATION") != "1" {
		t.Skip("integration test: set INTEGRATION=1 (make test does) to run it against PostgreSQL and Temporal")
	}
}

// AdminURL is the server the tests create their databases on.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// EmptyDatabase creates a database without the schema and drops it when
// the test ends. It returns the database's connection config (as the admin
// user).
func EmptyDatabase(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	return newDatabase(t, false)
}

// newDatabase creates the test's database, a copy of the migrated template
// if migrated, and drops it when the test ends.
func newDatabase(t testing.TB, migrated bool) *pgx.ConnConfig {
	t.Helper()
	RequireIntegration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	adminCfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	name := "mm_test_" + randomSuffix()
	create := "CREATE DATABASE " + name
	if migrated {
		tmpl, err := migratedTemplate(context.Background(), adminCfg)
		if err != nil {
			t.Fatalf("migrated template database: %v", err)
		}
		create += " TEMPLATE " + tmpl
	}
	admin, err := pgx.ConnectConfig(ctx, adminCfg)
	if err != nil {
		t.Fatalf("connect to PostgreSQL at %s:%d (is it running? see README): %v", adminCfg.Host, adminCfg.Port, err)
	}
	defer admin.Close(ctx)

	if _, err := admin.Exec(ctx, create); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, adminCfg)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	dbCfg := adminCfg.Copy()
	dbCfg.Database = name
	return dbCfg
}

// URL is the connection URL of cfg's user, host, port and database.
func URL(cfg *pgx.ConnConfig) string {
	if cfg.Password != "" {
		return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, cfg.Database)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Database creates a database with the schema applied, a copy of the
// template this test binary migrated once (template.go), and drops it when
// the test ends. It returns the database's URL and a pool on it.
func Database(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	dbCfg := newDatabase(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := URL(dbCfg)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("open pool on test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return url, pool
}

func randomSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RepoFile reads a file of the repository, by its path from the root.
func RepoFile(t testing.TB, path ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(append([]string{RepoRoot()}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TemporalCLI is the dev server binary: $TEMPORAL_CLI or bin/temporal.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		path = filepath.Join(RepoRoot(), "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Temporal CLI not found at %s: run `make temporal-cli` (make test does)", path)
	}
	return path
}
