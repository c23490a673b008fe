package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/attendee"
)

// EnsureEvent creates the event if no event has the code, and returns it.
func (s *Store) EnsureEvent(ctx context.Context, code, name string) (Event, error) {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO events (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING`, code, name)
	if err != nil {
		return Event{}, fmt.Errorf("create event %q: %w", code, err)
	}
	return s.FindEvent(ctx, code)
}

// InsertMembers adds members to an event, skipping those already there,
// with their type and languages (none listed is NULL); Excluded is not the
// profile's to write (match_exclusions is), and is ignored. It
// copies into a temporary table first so thousands of members cost one round
// trip, and then inserts in one statement so the member triggers run once.
func (s *Store) InsertMembers(ctx context.Context, eventID string, members []attendee.Profile) (inserted int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			CREATE TEMP TABLE incoming_members (LIKE all_events_members INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"incoming_members"},
			[]string{"event_id", "user_id", "display_name", "company", "job_title", "industry",
				"interests", "looking_for", "offering", "bio", "attendee_type", "languages"},
			pgx.CopyFromSlice(len(members), func(i int) ([]any, error) {
				m := members[i]
				return []any{eventID, m.UserID, m.DisplayName, nullIfEmpty(m.Company), nullIfEmpty(m.JobTitle),
					nullIfEmpty(m.Industry), nonNil(m.Interests), nonNil(m.LookingFor), nonNil(m.Offering), m.Bio,
					nullIfEmpty(m.AttendeeType), nilIfEmpty(m.Languages)}, nil
			}))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO all_events_members
			    (event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio,
			     attendee_type, languages)
			SELECT event_id, user_id, display_name, company, job_title, industry, interests, looking_for, offering, bio,
			       attendee_type, languages
			FROM incoming_members
			ON CONFLICT (event_id, user_id) DO NOTHING`)
		inserted = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("insert %d members into event %s: %w", len(members), eventID, err)
	}
	return inserted, nil
}

// MatchView is one row of a member's list as people read it.
type MatchView struct {
	UserName      string
	Rank          int
	MatchedName   string
	MatchedTitle  string
	Score         float32
	Insight       string
	InsightSource string
}

// EventMatchCounts summarises an event's matching.
type EventMatchCounts struct {
	Members        int
	MembersMatched int
	Rows           int
	Queued         int
}

// EventMembers counts the event's members.
func (s *Store) EventMembers(ctx context.Context, eventID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM all_events_members WHERE event_id = $1`, eventID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the members of event %s: %w", eventID, err)
	}
	return n, nil
}

// MatchCounts counts members, members with a list, match rows and queue rows.
func (s *Store) MatchCounts(ctx context.Context, eventID string) (EventMatchCounts, error) {
	var c EventMatchCounts
	err := s.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM all_events_members WHERE event_id = $1),
		       (SELECT count(DISTINCT user_id) FROM matches WHERE event_id = $1),
		       (SELECT count(*) FROM matches WHERE event_id = $1),
		       (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1)`, eventID).
		Scan(&c.Members, &c.MembersMatched, &c.Rows, &c.Queued)
	if err != nil {
		return c, fmt.Errorf("count matches of event %s: %w", eventID, err)
	}
	return c, nil
}

// SampleMatches returns the lists of the first `members` members by name.
func (s *Store) SampleMatches(ctx context.Context, eventID string, members int) ([]MatchView, error) {
	rows, err := s.pool.Query(ctx, `
		WITH sample AS (
			SELECT user_id, display_name FROM all_events_members
			WHERE event_id = $1 ORDER BY display_name, user_id LIMIT $2
		)
		SELECT s.display_name, m.rank, o.display_name, coalesce(o.job_title, ''), m.score, m.insight, m.insight_source
		FROM sample s
		JOIN matches m ON m.event_id = $1 AND m.user_id = s.user_id
		JOIN all_events_members o ON o.event_id = $1 AND o.user_id = m.matched_user_id
		ORDER BY s.display_name, s.user_id, m.rank`, eventID, members)
	if err != nil {
		return nil, fmt.Errorf("read matches of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MatchView, error) {
		var v MatchView
		err := row.Scan(&v.UserName, &v.Rank, &v.MatchedName, &v.MatchedTitle, &v.Score, &v.Insight, &v.InsightSource)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("read matches of event %s: %w", eventID, err)
	}
	return out, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// nilIfEmpty is a list of an optional column: NULL when empty.
func nilIfEmpty(list []string) any {
	if len(list) == 0 {
		return nil
	}
	return list
}
