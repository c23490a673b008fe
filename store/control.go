package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DisableEvent turns matchmaking off and drops the event's queue; matches
// are kept. It returns how many queued members were dropped.
func (s *Store) DisableEvent(ctx context.Context, eventID string) (dropped int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE events SET matchmaking_enabled = false WHERE id = $1`, eventID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM matchmaking_queue WHERE event_id = $1`, eventID)
		dropped = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("disable matchmaking for event %s: %w", eventID, err)
	}
	return dropped, nil
}

// ClearQueue removes every queued member of the event and says how many.
// A batch holding some of them still commits its lists; the removed members
// are simply not matched again until something enqueues them.
func (s *Store) ClearQueue(ctx context.Context, eventID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM matchmaking_queue WHERE event_id = $1`, eventID)
	if err != nil {
		return 0, fmt.Errorf("clear the queue of event %s: %w", eventID, err)
	}
	return int(tag.RowsAffected()), nil
}

// EnabledEvents lists the events with matchmaking on, by code.
func (s *Store) EnabledEvents(ctx context.Context) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id::text, code, name, matchmaking_enabled FROM events
		WHERE matchmaking_enabled ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("list enabled events: %w", err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
	if err != nil {
		return nil, fmt.Errorf("list enabled events: %w", err)
	}
	return events, nil
}

// EventStatus is the database's side of `starter status`.
type EventStatus struct {
	Event
	Members          int
	MembersMatched   int
	Queued           [4]int // by priority 0..3
	InProgress       int
	OldestWaiting    *time.Time
	LastBatchAt      *time.Time
	FailedBatches24h int
	AIInsights       int
	FallbackInsights int
	// Quarantined counts members whose rows the database refused.
	Quarantined int
}

// QueueSize is the number of queued members at every priority.
func (e EventStatus) QueueSize() int { return e.Queued[0] + e.Queued[1] + e.Queued[2] + e.Queued[3] }

// EventStatuses reads the status of one event, or with eventID "" of every
// event that is enabled or still has a queue.
func (s *Store) EventStatuses(ctx context.Context, eventID string) ([]EventStatus, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.id::text, e.code, e.name, e.matchmaking_enabled,
		       (SELECT count(*) FROM all_events_members m WHERE m.event_id = e.id),
		       (SELECT count(DISTINCT user_id) FROM matches m WHERE m.event_id = e.id),
		       q.p0, q.p1, q.p2, q.p3, q.in_progress, q.oldest,
		       (SELECT max(committed_at) FROM matchmaking_batches b WHERE b.event_id = e.id),
		       (SELECT count(*) FROM matchmaking_batches b
		         WHERE b.event_id = e.id AND b.released_at > now() - interval '24 hours'),
		       (SELECT count(*) FROM matches m WHERE m.event_id = e.id AND m.insight_source = 'ai'),
		       (SELECT count(*) FROM matches m WHERE m.event_id = e.id AND m.insight_source = 'fallback'),
		       (SELECT count(*) FROM matchmaking_quarantine x WHERE x.event_id = e.id)
		FROM events e
		CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE priority = 0) AS p0, count(*) FILTER (WHERE priority = 1) AS p1,
			       count(*) FILTER (WHERE priority = 2) AS p2, count(*) FILTER (WHERE priority = 3) AS p3,
			       count(*) FILTER (WHERE claim_token IS NOT NULL AND lease_expires_at > now()) AS in_progress,
			       min(enqueued_at) AS oldest
			FROM matchmaking_queue q WHERE q.event_id = e.id
		) q
		WHERE CASE WHEN $1 = '' THEN e.matchmaking_enabled OR q.p0 + q.p1 + q.p2 + q.p3 > 0
		           ELSE e.id = $1::uuid END
		ORDER BY e.code`, eventID)
	if err != nil {
		return nil, fmt.Errorf("read event status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (EventStatus, error) {
		var st EventStatus
		err := row.Scan(&st.ID, &st.Code, &st.Name, &st.MatchmakingEnabled, &st.Members, &st.MembersMatched,
			&st.Queued[0], &st.Queued[1], &st.Queued[2], &st.Queued[3], &st.InProgress, &st.OldestWaiting,
			&st.LastBatchAt, &st.FailedBatches24h, &st.AIInsights, &st.FallbackInsights, &st.Quarantined)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("read event status: %w", err)
	}
	return out, nil
}
