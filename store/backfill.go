package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// FallbackMatch is a current match that still has the fallback insight,
// with both profiles for the model, and what the backfill's write is fenced
// on: the list write it belongs to (ListWrittenAt is the match row's
// updated_at, set by the commit that wrote the list) and the event's
// members_version when it was read.
type FallbackMatch struct {
	PendingInsight
	ListWrittenAt  time.Time
	MembersVersion int64
}

// FallbackMatches returns up to limit of the event's matches that have the
// fallback insight and no mark from an earlier refused answer, newest list
// writes first: a newcomer's list (and the lists the newcomer entered) go
// ahead of an older backlog.
func (s *Store) FallbackMatches(ctx context.Context, eventID string, limit int) ([]FallbackMatch, error) {
	// The rows are picked before the profiles are joined: reading and
	// cleaning two profiles for every fallback of a large event, to keep
	// 512 of them, cost seconds a round.
	rows, err := s.pool.Query(ctx, `
		WITH picked AS (
			SELECT m.event_id, m.user_id, m.matched_user_id, m.rank, m.reasons, m.insight, m.updated_at
			FROM matches m
			WHERE m.event_id = $1 AND m.insight_source = 'fallback'
			  AND NOT EXISTS (SELECT 1 FROM matchmaking_ai_skips k
			                  WHERE k.event_id = m.event_id AND k.user_id = m.user_id AND k.rank = m.rank
			                    AND k.matched_user_id = m.matched_user_id AND k.list_written_at = m.updated_at)
			ORDER BY m.updated_at DESC, m.user_id, m.rank
			LIMIT $2
		)
		SELECT m.user_id::text, m.matched_user_id::text, m.rank, m.reasons, m.insight, m.updated_at,
		       coalesce((SELECT members_version FROM matchmaking_event_state WHERE event_id = $1), 0),
		       `+memberColumns("v", 3)+`,
		       `+memberColumns("o", 3)+`
		FROM picked m
		JOIN all_events_members v ON v.event_id = m.event_id AND v.user_id = m.user_id
		JOIN all_events_members o ON o.event_id = m.event_id AND o.user_id = m.matched_user_id
		ORDER BY m.updated_at DESC, m.user_id, m.rank`, append([]any{eventID, limit}, memberCapArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read fallback insights of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FallbackMatch, error) {
		var f FallbackMatch
		p := &f.PendingInsight
		v, o := &p.Viewer, &p.Matched
		targets := append([]any{&p.UserID, &p.MatchedUserID, &p.Rank, &p.Reasons, &p.Fallback, &f.ListWrittenAt, &f.MembersVersion},
			profileScanTargets(v)...)
		err := row.Scan(append(targets, profileScanTargets(o)...)...)
		p.MatchedUserName = o.DisplayName
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read fallback insights of event %s: %w", eventID, err)
	}
	return out, nil
}

// Upgrade is an AI insight for a match FallbackMatches returned.
type Upgrade struct {
	UserID        string
	Rank          int
	MatchedUserID string
	ListWrittenAt time.Time
	Text          string
}

// Refusal marks a match whose AI answer was refused (by the model or by
// validation): the backfill does not ask again until the list is rewritten.
type Refusal struct {
	UserID        string
	Rank          int
	MatchedUserID string
	ListWrittenAt time.Time
	Reason        string
}

// BackfillUsage is what one backfill round spent.
type BackfillUsage struct {
	Calls            int
	PromptTokens     int
	CompletionTokens int
	// Rejections counts the round's rejected answers by rule.
	Rejections []RuleCount
}

// RuleCount counts the model's answers rejected for one rule
// (insight.InvalidAnswerError's Rule). Lists of them are sorted by rule: a
// slice rather than a map, because it travels into workflow state, where
// maps are not ranged.
type RuleCount struct {
	Rule    string
	Answers int
}

// SaveBackfill writes a round's AI insights, fenced, with its refusal marks
// and what it spent, in one transaction, and returns how many insights it
// wrote. An insight is written only onto a match row that is still the one
// read: same viewer, rank and matched user, same list write (updated_at),
// still the fallback, and neither profile of the pair changed since
// membersVersion (the change log names every member a members_version bump
// was for). When the log no longer reaches back to membersVersion nothing
// is written; the next round reads afresh. The event's state row is locked
// first, as every path that rewrites the event's matches does (commits,
// member triggers), so no list or profile can change between the check and
// the write.
func (s *Store) SaveBackfill(ctx context.Context, eventID string, membersVersion int64,
	upgrades []Upgrade, refusals []Refusal, usage BackfillUsage) (written int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		written = 0
		if _, err := lockEventState(ctx, tx, eventID); err != nil {
			return err
		}
		var current, logged int64
		if err := tx.QueryRow(ctx, `
			SELECT s.members_version,
			       (SELECT count(DISTINCT l.version) FROM matchmaking_change_log l
			        WHERE l.event_id = $1 AND l.counter = 'members' AND l.version > $2 AND l.version <= s.members_version)
			FROM matchmaking_event_state s WHERE s.event_id = $1`, eventID, membersVersion).Scan(&current, &logged); err != nil {
			return err
		}
		if len(upgrades) > 0 && logged == current-membersVersion {
			users := make([]string, len(upgrades))
			ranks := make([]int16, len(upgrades))
			matched := make([]string, len(upgrades))
			writtenAt := make([]time.Time, len(upgrades))
			texts := make([]string, len(upgrades))
			for i, u := range upgrades {
				users[i], ranks[i], matched[i], writtenAt[i], texts[i] = u.UserID, int16(u.Rank), u.MatchedUserID, u.ListWrittenAt, u.Text
			}
			tag, err := tx.Exec(ctx, `
				UPDATE matches m SET insight = v.insight, insight_source = 'ai'
				FROM unnest($3::uuid[], $4::smallint[], $5::uuid[], $6::timestamptz[], $7::text[])
				     AS v (user_id, rank, matched_user_id, written_at, insight)
				WHERE m.event_id = $1 AND m.user_id = v.user_id AND m.rank = v.rank
				  AND m.matched_user_id = v.matched_user_id AND m.updated_at = v.written_at
				  AND m.insight_source = 'fallback'
				  AND NOT EXISTS (SELECT 1 FROM matchmaking_change_log l
				                  WHERE l.event_id = $1 AND l.counter = 'members' AND l.version > $2
				                    AND l.user_ids && ARRAY[m.user_id, m.matched_user_id])`,
				eventID, membersVersion, users, ranks, matched, writtenAt, texts)
			if err != nil {
				return fmt.Errorf("write AI insights: %w", err)
			}
			written = int(tag.RowsAffected())
		}
		if len(refusals) > 0 {
			users := make([]string, len(refusals))
			ranks := make([]int16, len(refusals))
			matched := make([]string, len(refusals))
			writtenAt := make([]time.Time, len(refusals))
			reasons := make([]string, len(refusals))
			for i, r := range refusals {
				users[i], ranks[i], matched[i], writtenAt[i], reasons[i] = r.UserID, int16(r.Rank), r.MatchedUserID, r.ListWrittenAt, r.Reason
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO matchmaking_ai_skips AS k (event_id, user_id, rank, matched_user_id, list_written_at, reason)
				SELECT $1, u, r, o, w, why FROM unnest($2::uuid[], $3::smallint[], $4::uuid[], $5::timestamptz[], $6::text[]) AS v (u, r, o, w, why)
				ON CONFLICT (event_id, user_id, rank) DO UPDATE
				SET matched_user_id = EXCLUDED.matched_user_id, list_written_at = EXCLUDED.list_written_at, reason = EXCLUDED.reason`,
				eventID, users, ranks, matched, writtenAt, reasons); err != nil {
				return fmt.Errorf("mark refused AI answers: %w", err)
			}
		}
		// Marks of lists rewritten since are spent: the new list is asked.
		if _, err := tx.Exec(ctx, `
			DELETE FROM matchmaking_ai_skips k
			WHERE k.event_id = $1 AND NOT EXISTS (
				SELECT 1 FROM matches m
				WHERE m.event_id = k.event_id AND m.user_id = k.user_id AND m.rank = k.rank
				  AND m.matched_user_id = k.matched_user_id AND m.updated_at = k.list_written_at)`, eventID); err != nil {
			return fmt.Errorf("drop spent refusal marks: %w", err)
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO matchmaking_ai_backfill AS b (event_id, calls, prompt_tokens, completion_tokens, upgraded, fenced)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO UPDATE
			SET calls = b.calls + EXCLUDED.calls, prompt_tokens = b.prompt_tokens + EXCLUDED.prompt_tokens,
			    completion_tokens = b.completion_tokens + EXCLUDED.completion_tokens,
			    upgraded = b.upgraded + EXCLUDED.upgraded, fenced = b.fenced + EXCLUDED.fenced, updated_at = now()`,
			eventID, usage.Calls, usage.PromptTokens, usage.CompletionTokens, written, len(upgrades)-written)
		if err != nil {
			return fmt.Errorf("count the round's usage: %w", err)
		}
		return addRejections(ctx, tx, eventID, usage.Rejections)
	})
	if err != nil {
		return 0, fmt.Errorf("save AI backfill of event %s: %w", eventID, err)
	}
	return written, nil
}

// addRejections adds a round's rejected answers to the event's counts by
// rule, on the row the round's usage was just counted on.
func addRejections(ctx context.Context, tx pgx.Tx, eventID string, counts []RuleCount) error {
	if len(counts) == 0 {
		return nil
	}
	rules := make([]string, len(counts))
	answers := make([]int64, len(counts))
	for i, c := range counts {
		rules[i], answers[i] = c.Rule, int64(c.Answers)
	}
	_, err := tx.Exec(ctx, `
		UPDATE matchmaking_ai_backfill b
		SET rejections = (
			SELECT jsonb_object_agg(rule, answers) FROM (
				SELECT rule, sum(answers) AS answers FROM (
					SELECT key AS rule, value::bigint AS answers FROM jsonb_each_text(b.rejections)
					UNION ALL
					SELECT * FROM unnest($2::text[], $3::bigint[])
				) AS both_counts
				GROUP BY rule
			) AS summed)
		WHERE b.event_id = $1`, eventID, rules, answers)
	if err != nil {
		return fmt.Errorf("count the round's rejected answers: %w", err)
	}
	return nil
}

// BackfillProgress is where an event's AI insights stand.
type BackfillProgress struct {
	Matches int // current match rows
	AI      int // of them with an AI insight
	// Backlog are fallback insights the backfill still means to upgrade;
	// Refused, those left with the fallback because the answer was refused.
	Backlog int
	Refused int
	// What the backfill has spent and done for the event, all runs together.
	Calls            int
	PromptTokens     int
	CompletionTokens int
	Upgraded         int
	Fenced           int
	// Rejections counts the model's answers rejected by validation (or
	// refused by the model), by rule, sorted by rule; all runs together.
	Rejections []RuleCount
}

// RejectedAnswers is how many answers were rejected, all rules together.
func (p BackfillProgress) RejectedAnswers() int {
	n := 0
	for _, c := range p.Rejections {
		n += c.Answers
	}
	return n
}

// Summary says where the event's AI insights stand, in one line.
func (p BackfillProgress) Summary() string {
	share := 0
	if p.Matches > 0 {
		share = 100 * p.AI / p.Matches
	}
	line := fmt.Sprintf("%d%% AI (%d of %d matches), backlog %d, %d calls, %d prompt + %d completion tokens",
		share, p.AI, p.Matches, p.Backlog, p.Calls, p.PromptTokens, p.CompletionTokens)
	if p.Refused > 0 {
		line += fmt.Sprintf(", %d answers refused", p.Refused)
	}
	if n := p.RejectedAnswers(); n > 0 {
		why := make([]string, len(p.Rejections))
		for i, c := range p.Rejections {
			why[i] = fmt.Sprintf("%s %d", c.Rule, c.Answers)
		}
		line += fmt.Sprintf(", %d answers rejected (%s)", n, strings.Join(why, ", "))
	}
	return line
}

// BackfillProgress reads the event's AI share, backlog and spending. It is
// what `starter status` needs to show the backfill without asking Temporal.
func (s *Store) BackfillProgress(ctx context.Context, eventID string) (BackfillProgress, error) {
	var (
		p          BackfillProgress
		rejections map[string]int
	)
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE m.insight_source = 'ai'),
		       count(*) FILTER (WHERE m.insight_source = 'fallback' AND k.user_id IS NULL),
		       count(*) FILTER (WHERE m.insight_source = 'fallback' AND k.user_id IS NOT NULL),
		       coalesce((SELECT calls FROM matchmaking_ai_backfill WHERE event_id = $1), 0),
		       coalesce((SELECT prompt_tokens FROM matchmaking_ai_backfill WHERE event_id = $1), 0),
		       coalesce((SELECT completion_tokens FROM matchmaking_ai_backfill WHERE event_id = $1), 0),
		       coalesce((SELECT upgraded FROM matchmaking_ai_backfill WHERE event_id = $1), 0),
		       coalesce((SELECT fenced FROM matchmaking_ai_backfill WHERE event_id = $1), 0),
		       coalesce((SELECT rejections FROM matchmaking_ai_backfill WHERE event_id = $1), '{}')
		FROM matches m
		LEFT JOIN matchmaking_ai_skips k
		  ON k.event_id = m.event_id AND k.user_id = m.user_id AND k.rank = m.rank
		 AND k.matched_user_id = m.matched_user_id AND k.list_written_at = m.updated_at
		WHERE m.event_id = $1`, eventID).Scan(&p.Matches, &p.AI, &p.Backlog, &p.Refused,
		&p.Calls, &p.PromptTokens, &p.CompletionTokens, &p.Upgraded, &p.Fenced, &rejections)
	if err != nil {
		return BackfillProgress{}, fmt.Errorf("read AI backfill progress of event %s: %w", eventID, err)
	}
	for rule, n := range rejections {
		p.Rejections = append(p.Rejections, RuleCount{Rule: rule, Answers: n})
	}
	slices.SortFunc(p.Rejections, func(a, b RuleCount) int { return strings.Compare(a.Rule, b.Rule) })
	return p, nil
}

// EventsAwaitingAI lists the enabled events that still have a current match
// with the fallback insight the backfill has not given up on: the events
// whose backfill workflow should be running. The worker uses it to start a
// backfill that no commit started (its start failed, or the event was
// re-enabled with its lists unchanged).
func (s *Store) EventsAwaitingAI(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.id::text FROM events e
		WHERE e.matchmaking_enabled
		  AND EXISTS (SELECT 1 FROM matches m
		              WHERE m.event_id = e.id AND m.insight_source = 'fallback'
		                AND NOT EXISTS (SELECT 1 FROM matchmaking_ai_skips k
		                                WHERE k.event_id = m.event_id AND k.user_id = m.user_id AND k.rank = m.rank
		                                  AND k.matched_user_id = m.matched_user_id AND k.list_written_at = m.updated_at))
		ORDER BY e.id`)
	if err != nil {
		return nil, fmt.Errorf("list events awaiting AI insights: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list events awaiting AI insights: %w", err)
	}
	return ids, nil
}
