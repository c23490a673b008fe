package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrRowsRefused means the database refused to write a batch's lists for a
// reason in the data (a constraint or trigger on matches rejecting some
// rows), not for a reason about the whole batch. FindRefusedMembers names
// the members behind it.
var ErrRowsRefused = errors.New("the database refused some of the batch's match rows")

// isDataRefusal reports whether a statement failed because of the rows it
// wrote: a data exception (SQLSTATE class 22), an integrity constraint
// (class 23) or an exception raised by a trigger (class P0). Connection
// loss, timeouts, serialization failures and missing privileges are not:
// they are about the batch or the setup, and are retried as a whole.
func isDataRefusal(err error) (*pgconn.PgError, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil, false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "P0":
		return pgErr, true
	}
	return nil, false
}

// refusedOr marks a data refusal as ErrRowsRefused and returns any other
// error as it is.
func refusedOr(err error) error {
	if pgErr, ok := isDataRefusal(err); ok {
		return fmt.Errorf("%w: %s", ErrRowsRefused, describeRefusal(pgErr))
	}
	return err
}

func describeRefusal(pgErr *pgconn.PgError) string {
	reason := pgErr.Message
	if pgErr.Detail != "" {
		reason += ": " + pgErr.Detail
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", reason, pgErr.Code)
}

// RefusedMember is a member whose rows the database will not take.
type RefusedMember struct {
	UserID string
	Reason string
}

// FindRefusedMembers finds the members behind a batch's ErrRowsRefused by
// writing its staged lists again inside a transaction that is always rolled
// back: halves of the lists under savepoints until single lists, then single
// rows. A refused row is blamed on its matched member when the refusing
// constraint covers only matched_user_id (the matched member cannot be
// listed by anyone), otherwise on the list's owner. It returns nothing when
// every list is refused on its own, since that is not about one member.
func (s *Store) FindRefusedMembers(ctx context.Context, eventID, token string) ([]RefusedMember, error) {
	var refused []RefusedMember
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var viewers []string
		err := tx.QueryRow(ctx, `
			SELECT coalesce(viewers::text[], '{}') FROM matchmaking_batches WHERE token = $1 AND event_id = $2`,
			token, eventID).Scan(&viewers)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrBatchNotFound, token)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM matches WHERE event_id = $1 AND user_id = ANY ($2::uuid[])`,
			eventID, viewers); err != nil {
			return fmt.Errorf("clear the batch's lists: %w", err)
		}
		f := refusalFinder{tx: tx, eventID: eventID, token: token}
		if err := f.search(ctx, viewers); err != nil {
			return err
		}
		// Every list refused on its own is about the setup, not a member.
		if f.refusedLists < len(viewers) {
			refused = f.members
		}
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) {
		return nil, fmt.Errorf("find the members whose rows batch %s cannot write: %w", token, err)
	}
	return refused, nil
}

// errRollback ends a pgx.BeginFunc transaction that must leave no trace.
var errRollback = errors.New("rolled back on purpose")

type refusalFinder struct {
	tx             pgx.Tx
	eventID, token string
	refusedLists   int
	members        []RefusedMember
}

// search writes the lists of viewers under a savepoint, always undone, and
// splits a refused set until it finds the refused lists.
func (f *refusalFinder) search(ctx context.Context, viewers []string) error {
	if len(viewers) == 0 {
		return nil
	}
	pgErr, err := f.try(ctx, `
		INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, reasons, insight, insight_source)
		SELECT $2, user_id, matched_user_id, rank, score, reasons, coalesce(insight, ''), coalesce(insight_source, 'fallback')
		FROM matchmaking_staged_matches WHERE token = $1 AND user_id = ANY ($3::uuid[])`,
		f.token, f.eventID, viewers)
	if err != nil || pgErr == nil {
		return err
	}
	if len(viewers) > 1 {
		half := len(viewers) / 2
		if err := f.search(ctx, viewers[:half]); err != nil {
			return err
		}
		return f.search(ctx, viewers[half:])
	}
	f.refusedLists++
	return f.blameRows(ctx, viewers[0])
}

// blameRows writes one refused list row by row and blames each refused row.
func (f *refusalFinder) blameRows(ctx context.Context, viewer string) error {
	rows, err := f.tx.Query(ctx, `
		SELECT rank, matched_user_id::text FROM matchmaking_staged_matches
		WHERE token = $1 AND user_id = $2 ORDER BY rank`, f.token, viewer)
	if err != nil {
		return err
	}
	type stagedRow struct {
		Rank    int16
		Matched string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stagedRow])
	if err != nil {
		return err
	}
	blamed := false
	for _, r := range list {
		pgErr, err := f.try(ctx, `
			INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, reasons, insight, insight_source)
			SELECT $2, user_id, matched_user_id, rank, score, reasons, coalesce(insight, ''), coalesce(insight_source, 'fallback')
			FROM matchmaking_staged_matches WHERE token = $1 AND user_id = $3 AND rank = $4`,
			f.token, f.eventID, viewer, r.Rank)
		if err != nil {
			return err
		}
		if pgErr == nil {
			continue
		}
		culprit := viewer
		onlyMatched, err := f.constraintCoversOnlyMatched(ctx, pgErr)
		if err != nil {
			return err
		}
		if onlyMatched {
			culprit = r.Matched
		}
		f.blame(culprit, describeRefusal(pgErr))
		blamed = true
	}
	if !blamed {
		// Each row alone is accepted, the list is not (a rule over the
		// whole list, such as a per-member row count): the owner's.
		f.blame(viewer, "the database refused this member's list as a whole")
	}
	return nil
}

func (f *refusalFinder) blame(userID, reason string) {
	if slices.ContainsFunc(f.members, func(m RefusedMember) bool { return m.UserID == userID }) {
		return
	}
	f.members = append(f.members, RefusedMember{UserID: userID, Reason: reason})
}

// try runs one statement under a savepoint that is always rolled back. A
// data refusal is returned as pgErr; any other failure as err.
func (f *refusalFinder) try(ctx context.Context, sql string, args ...any) (*pgconn.PgError, error) {
	if _, err := f.tx.Exec(ctx, `SAVEPOINT refusal_probe`); err != nil {
		return nil, err
	}
	_, execErr := f.tx.Exec(ctx, sql, args...)
	if _, err := f.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT refusal_probe`); err != nil {
		return nil, err
	}
	if execErr == nil {
		return nil, nil
	}
	if pgErr, ok := isDataRefusal(execErr); ok {
		return pgErr, nil
	}
	return nil, execErr
}

// constraintCoversOnlyMatched reports whether the constraint that refused a
// row is on matches and covers matched_user_id and no other column, read
// from the catalog by the constraint name the error carries.
func (f *refusalFinder) constraintCoversOnlyMatched(ctx context.Context, pgErr *pgconn.PgError) (bool, error) {
	if pgErr.ConstraintName == "" || pgErr.TableName != "matches" {
		return false, nil
	}
	var columns []string
	err := f.tx.QueryRow(ctx, `
		SELECT coalesce(array_agg(a.attname::text), '{}')
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
		WHERE c.conname = $1 AND c.conrelid = to_regclass(quote_ident($2) || '.matches')`,
		pgErr.ConstraintName, pgErr.SchemaName).Scan(&columns)
	if err != nil {
		return false, err
	}
	return len(columns) == 1 && columns[0] == "matched_user_id", nil
}

// QuarantineMembers moves members to the dead-letter table with their
// reasons: their queue rows go, and scoring leaves them out (the event's
// members_version moves so cached pools are rebuilt) until their profile
// changes or RetryQuarantined. It returns how many are quarantined in the
// event now.
func (s *Store) QuarantineMembers(ctx context.Context, eventID string, members []RefusedMember) (int, error) {
	ids := make([]string, len(members))
	reasons := make([]string, len(members))
	for i, m := range members {
		ids[i], reasons[i] = m.UserID, m.Reason
	}
	var total int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockEventState(ctx, tx, eventID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO matchmaking_quarantine (event_id, user_id, reason)
			SELECT $1, u, r FROM unnest($2::uuid[], $3::text[]) AS q (u, r)
			ON CONFLICT (event_id, user_id) DO UPDATE SET reason = EXCLUDED.reason, quarantined_at = now()`,
			eventID, ids, reasons); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM matchmaking_queue WHERE event_id = $1 AND user_id = ANY ($2::uuid[])`, eventID, ids); err != nil {
			return err
		}
		if err := bumpMembersVersion(ctx, tx, eventID, ids); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM matchmaking_quarantine WHERE event_id = $1`, eventID).Scan(&total)
	})
	if err != nil {
		return 0, fmt.Errorf("quarantine %d members of event %s: %w", len(members), eventID, err)
	}
	return total, nil
}

// RetryQuarantined takes every quarantined member of the event out of
// quarantine and enqueues them at the profile-update priority. It returns
// how many it enqueued.
func (s *Store) RetryQuarantined(ctx context.Context, eventID string) (int, error) {
	var retried int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockEventState(ctx, tx, eventID); err != nil {
			return err
		}
		var ids []string
		if err := tx.QueryRow(ctx, `
			WITH released AS (
				DELETE FROM matchmaking_quarantine WHERE event_id = $1 RETURNING user_id
			)
			SELECT coalesce(array_agg(r.user_id::text), '{}')
			FROM released r
			JOIN all_events_members m ON m.event_id = $1 AND m.user_id = r.user_id`, eventID).Scan(&ids); err != nil {
			return err
		}
		retried = len(ids)
		if retried == 0 {
			return nil
		}
		if err := bumpMembersVersion(ctx, tx, eventID, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT matchmaking_enqueue_rows($1, $2::uuid[], 2)`, eventID, ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry the quarantined members of event %s: %w", eventID, err)
	}
	return retried, nil
}

// QuarantinedMember is one row of the dead-letter table, for status.
type QuarantinedMember struct {
	UserID        string
	DisplayName   string
	Reason        string
	QuarantinedAt time.Time
}

// QuarantinedMembers lists the event's quarantined members, newest first.
func (s *Store) QuarantinedMembers(ctx context.Context, eventID string) ([]QuarantinedMember, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT q.user_id::text, coalesce(m.display_name, ''), q.reason, q.quarantined_at
		FROM matchmaking_quarantine q
		LEFT JOIN all_events_members m ON m.event_id = q.event_id AND m.user_id = q.user_id
		WHERE q.event_id = $1
		ORDER BY q.quarantined_at DESC, q.user_id`, eventID)
	if err != nil {
		return nil, fmt.Errorf("list quarantined members of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[QuarantinedMember])
	if err != nil {
		return nil, fmt.Errorf("list quarantined members of event %s: %w", eventID, err)
	}
	return out, nil
}

// bumpMembersVersion moves the event's members_version and logs the members
// it was for, so cached pools take them in or out (the state row is locked
// already).
func bumpMembersVersion(ctx context.Context, tx pgx.Tx, eventID string, userIDs []string) error {
	_, err := tx.Exec(ctx, `
		WITH bumped AS (
			UPDATE matchmaking_event_state SET members_version = members_version + 1 WHERE event_id = $1
			RETURNING members_version
		)
		INSERT INTO matchmaking_change_log (event_id, counter, version, user_ids)
		SELECT $1, 'members', members_version, $2::uuid[] FROM bumped`, eventID, userIDs)
	if err != nil {
		return fmt.Errorf("log the member change: %w", err)
	}
	return nil
}
