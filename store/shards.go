package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Shard is one shard's part of a batch scored across workers: the event
// versions it scored and its encoded offers (matching.Offers).
type Shard struct {
	MembersVersion int64
	ListsVersion   int64
	Offers         []byte
}

// StageShard replaces shard's part of the batch; a retried shard
// overwrites its earlier attempt.
func (s *Store) StageShard(ctx context.Context, token string, shard, shards int, part Shard) error {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO matchmaking_batch_shards (token, shard, shards, members_version, lists_version, offers)
		SELECT token, $2, $3, $4, $5, $6 FROM matchmaking_batches
		WHERE token = $1 AND committed_at IS NULL AND released_at IS NULL
		ON CONFLICT (token, shard) DO UPDATE
		SET shards = EXCLUDED.shards, members_version = EXCLUDED.members_version,
		    lists_version = EXCLUDED.lists_version, offers = EXCLUDED.offers, scored_at = now()`,
		token, shard, shards, part.MembersVersion, part.ListsVersion, part.Offers)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: %s is missing, committed or released", ErrBatchNotFound, token)
	}
	if err != nil {
		return fmt.Errorf("stage shard %d of %d of batch %s: %w", shard, shards, token, err)
	}
	return nil
}

// ErrShardMissing means a shard of the batch has not been staged.
var ErrShardMissing = errors.New("shard not staged")

// Shards reads every shard of the batch, in shard order.
func (s *Store) Shards(ctx context.Context, token string, shards int) ([]Shard, error) {
	out := make([]Shard, shards)
	seen := make([]bool, shards)
	rows, err := s.pool.Query(ctx, `
		SELECT shard, members_version, lists_version, offers FROM matchmaking_batch_shards
		WHERE token = $1 AND shards = $2`, token, shards)
	if err == nil {
		var shard int
		var part Shard
		_, err = pgx.ForEachRow(rows, []any{&shard, &part.MembersVersion, &part.ListsVersion, &part.Offers}, func() error {
			out[shard], seen[shard] = part, true
			part.Offers = nil // the next row must not share the buffer
			return nil
		})
	}
	for shard, ok := range seen {
		if err == nil && !ok {
			err = fmt.Errorf("%w: %d of %d", ErrShardMissing, shard, shards)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read the shards of batch %s: %w", token, err)
	}
	return out, nil
}
