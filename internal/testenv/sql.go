package testenv

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is one test's fresh, migrated database with the small SQL helpers the
// store and schema tests share; each failure ends the test.
type DB struct {
	T    *testing.T
	Ctx  context.Context
	URL  string
	Pool *pgxpool.Pool
}

// NewDB creates the test's database (see Database).
func NewDB(t *testing.T) *DB {
	t.Helper()
	url, pool := Database(t)
	return &DB{T: t, Ctx: t.Context(), URL: url, Pool: pool}
}

// Exec runs a statement and returns the rows it affected.
func (d *DB) Exec(sql string, args ...any) int64 {
	d.T.Helper()
	tag, err := d.Pool.Exec(d.Ctx, sql, args...)
	if err != nil {
		d.T.Fatalf("exec %q: %v", sql, err)
	}
	return tag.RowsAffected()
}

// Int runs a query returning one integer.
func (d *DB) Int(sql string, args ...any) int64 {
	d.T.Helper()
	var n int64
	if err := d.Pool.QueryRow(d.Ctx, sql, args...).Scan(&n); err != nil {
		d.T.Fatalf("query %q: %v", sql, err)
	}
	return n
}

// Strings runs a query returning one text column; no rows is an empty slice.
func (d *DB) Strings(sql string, args ...any) []string {
	d.T.Helper()
	rows, err := d.Pool.Query(d.Ctx, sql, args...)
	if err != nil {
		d.T.Fatalf("query %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		d.T.Fatalf("query %q: %v", sql, err)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// UID is member n's fixed UUID; ShortID(UID(n)) reads back "n".
func UID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// EventUUID is event n's fixed UUID.
func EventUUID(n int) string { return fmt.Sprintf("e0000000-0000-4000-8000-%012d", n) }

// UIDs maps UID over ns.
func UIDs(ns ...int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = UID(n)
	}
	return out
}

// ShortID is the SQL that turns a UID column into its number, for readable rows.
func ShortID(col string) string { return fmt.Sprintf("ltrim(right(%s::text, 12), '0')", col) }
