package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// Event creates event n with code "ev-n" and returns its UUID.
func (d *DB) Event(n int, enabled bool) string {
	d.T.Helper()
	d.Exec(`INSERT INTO events (id, code, name, matchmaking_enabled) VALUES ($1, $2, $3, $4)`,
		EventUUID(n), fmt.Sprintf("ev-%d", n), fmt.Sprintf("Event %d", n), enabled)
	return EventUUID(n)
}

// Match stores "member from lists member to at rank", with a fallback
// insight.
func (d *DB) Match(event string, from, to, rank int) {
	d.T.Helper()
	d.Exec(`INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
		VALUES ($1, $2, $3, $4, 0.5, 'old', 'fallback')`, event, UID(from), UID(to), rank)
}

// Matches lists the event's matches as "from>to#rank".
func (d *DB) Matches(event string) []string {
	d.T.Helper()
	return d.Strings(`SELECT `+ShortID("user_id")+` || '>' || `+ShortID("matched_user_id")+` || '#' || rank
		FROM matches WHERE event_id = $1 ORDER BY user_id, rank`, event)
}

// WantStrings fails the test unless got equals want; no want is an empty
// list.
func WantStrings(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  [%s]\n want [%s]", what, strings.Join(got, " "), strings.Join(want, " "))
	}
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
