package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventmatch/matchmaker/attendee"
)

// CachedPair is one cached AI answer for a pair of profile versions.
// FirstHash <= SecondHash; ForFirst is addressed to the first profile.
type CachedPair struct {
	FirstHash  string
	SecondHash string
	ForFirst   string
	ForSecond  string
}

// CachedInsights returns the cached answers among the given pairs for the
// model and prompt version.
func (s *Store) CachedInsights(ctx context.Context, model, promptVersion string, firstHashes, secondHashes []string) ([]CachedPair, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.first_hash, c.second_hash, c.for_first, c.for_second
		FROM unnest($3::text[], $4::text[]) AS k (first_hash, second_hash)
		JOIN matchmaking_insight_cache c
		  ON c.first_hash = k.first_hash AND c.second_hash = k.second_hash
		 AND c.model = $1 AND c.prompt_version = $2`, model, promptVersion, firstHashes, secondHashes)
	if err != nil {
		return nil, fmt.Errorf("read insight cache: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CachedPair])
	if err != nil {
		return nil, fmt.Errorf("read insight cache: %w", err)
	}
	return out, nil
}

// CacheInsights stores new AI answers; an existing entry is kept.
func (s *Store) CacheInsights(ctx context.Context, model, promptVersion string, pairs []CachedPair) error {
	if len(pairs) == 0 {
		return nil
	}
	firsts := make([]string, len(pairs))
	seconds := make([]string, len(pairs))
	forFirst := make([]string, len(pairs))
	forSecond := make([]string, len(pairs))
	for i, p := range pairs {
		firsts[i], seconds[i], forFirst[i], forSecond[i] = p.FirstHash, p.SecondHash, p.ForFirst, p.ForSecond
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO matchmaking_insight_cache (first_hash, second_hash, model, prompt_version, for_first, for_second)
		SELECT f, s, $1, $2, ff, fs FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS v (f, s, ff, fs)
		ON CONFLICT DO NOTHING`, model, promptVersion, firsts, seconds, forFirst, forSecond)
	if err != nil {
		return fmt.Errorf("write insight cache: %w", err)
	}
	return nil
}

// EventProfiles reads the current profile of each of the event's members
// as the AI backfill reads them (memberColumns: the same caps, so a hash of
// one is the insight cache's key for it).
func (s *Store) EventProfiles(ctx context.Context, eventID string) ([]attendee.Profile, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+memberColumns("m", 2)+`
		FROM all_events_members m
		WHERE m.event_id = $1
		ORDER BY m.user_id`, append([]any{eventID}, memberCapArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read the profiles of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (attendee.Profile, error) {
		var m attendee.Profile
		err := row.Scan(profileScanTargets(&m)...)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the profiles of event %s: %w", eventID, err)
	}
	return out, nil
}

// ClearCachedInsightsAmong deletes the cached answers, of every model and
// prompt version, for every pair of the given profile hashes, and returns
// how many it deleted.
func (s *Store) ClearCachedInsightsAmong(ctx context.Context, profileHashes []string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM matchmaking_insight_cache
		WHERE first_hash = ANY ($1::text[]) AND second_hash = ANY ($1::text[])`, profileHashes)
	if err != nil {
		return 0, fmt.Errorf("clear cached insights: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ClearInsightCache deletes every cached answer and returns how many.
func (s *Store) ClearInsightCache(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM matchmaking_insight_cache`)
	if err != nil {
		return 0, fmt.Errorf("clear the insight cache: %w", err)
	}
	return tag.RowsAffected(), nil
}

// IsInsufficientPrivilege reports whether err is PostgreSQL refusing the
// statement to the connected role.
func IsInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}
