package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AIBatch is an event's batch at the provider's Batch API (see migration
// 010): submitted, and collected or not.
type AIBatch struct {
	BatchID  string
	Requests int
	// ListsUpTo is the newest list write the batch was built from.
	ListsUpTo time.Time
}

// AIBatchCounts are what collecting a batch found.
type AIBatchCounts struct {
	Answered int // valid answers, cached for the backfill's fenced write
	Refused  int // answers validation refused
	Failed   int // lines the batch failed, or answered with no answer
	Stale    int // answers for pairs no longer awaiting one
}

// OpenAIBatch returns the event's batch that is submitted but not yet
// collected; ok is false when there is none.
func (s *Store) OpenAIBatch(ctx context.Context, eventID string) (b AIBatch, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT batch_id, requests, lists_up_to FROM matchmaking_ai_batches
		WHERE event_id = $1 AND collected_at IS NULL`, eventID).Scan(&b.BatchID, &b.Requests, &b.ListsUpTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return AIBatch{}, false, nil
	}
	if err != nil {
		return AIBatch{}, false, fmt.Errorf("read the open AI batch of event %s: %w", eventID, err)
	}
	return b, true, nil
}

// RecordAIBatch records a batch just submitted for the event.
func (s *Store) RecordAIBatch(ctx context.Context, eventID string, b AIBatch) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO matchmaking_ai_batches (event_id, batch_id, requests, lists_up_to) VALUES ($1, $2, $3, $4)
		ON CONFLICT (event_id, batch_id) DO NOTHING`, eventID, b.BatchID, b.Requests, b.ListsUpTo)
	if err != nil {
		return fmt.Errorf("record AI batch %s of event %s: %w", b.BatchID, eventID, err)
	}
	return nil
}

// FinishAIBatch marks the batch collected with what collecting found and
// adds what it spent to the event's backfill usage, once: it reports false,
// and the counts stored the first time, when the batch was collected
// already (a retried collect). For a batch the database no longer has
// (its event was deleted) it counts nothing and reports false.
func (s *Store) FinishAIBatch(ctx context.Context, eventID, batchID string, counts AIBatchCounts, usage BackfillUsage) (first bool, stored AIBatchCounts, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE matchmaking_ai_batches
			SET collected_at = now(), answered = $3, refused = $4, failed = $5, stale = $6
			WHERE event_id = $1 AND batch_id = $2 AND collected_at IS NULL`,
			eventID, batchID, counts.Answered, counts.Refused, counts.Failed, counts.Stale)
		if err != nil {
			return err
		}
		if first = tag.RowsAffected() == 1; !first {
			err := tx.QueryRow(ctx, `
				SELECT coalesce(answered, 0), coalesce(refused, 0), coalesce(failed, 0), coalesce(stale, 0)
				FROM matchmaking_ai_batches WHERE event_id = $1 AND batch_id = $2`, eventID, batchID).
				Scan(&stored.Answered, &stored.Refused, &stored.Failed, &stored.Stale)
			if errors.Is(err, pgx.ErrNoRows) {
				// The event was deleted, and its batches with it: nothing
				// to count against.
				stored = counts
				return nil
			}
			return err
		}
		stored = counts
		_, err = tx.Exec(ctx, `
			INSERT INTO matchmaking_ai_backfill AS b (event_id, calls, prompt_tokens, completion_tokens)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (event_id) DO UPDATE
			SET calls = b.calls + EXCLUDED.calls, prompt_tokens = b.prompt_tokens + EXCLUDED.prompt_tokens,
			    completion_tokens = b.completion_tokens + EXCLUDED.completion_tokens, updated_at = now()`,
			eventID, usage.Calls, usage.PromptTokens, usage.CompletionTokens)
		return err
	})
	if err != nil {
		return false, AIBatchCounts{}, fmt.Errorf("finish AI batch %s of event %s: %w", batchID, eventID, err)
	}
	return first, stored, nil
}
