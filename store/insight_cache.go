package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
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
