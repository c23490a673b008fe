package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/profiletext"
)

// ErrBatchFinished: the token's batch was committed or released already, by
// an earlier attempt of the same workflow run whose progress Temporal did
// not record (a worker that died inside a chain of local activities).
var ErrBatchFinished = errors.New("batch already finished")

// ClaimBatch leases up to limit queued members of the event to the batch
// token, in claim order (priority desc, then oldest first). Rows whose lease
// ran out count as free. Calling it again with the same token returns the
// first claim instead of taking more rows, so a retried activity is harmless;
// if that batch has been committed or released since, it returns its count
// with ErrBatchFinished.
func (s *Store) ClaimBatch(ctx context.Context, eventID, token string, limit int, lease time.Duration) (claimed int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var existing int
		var finished bool
		err := tx.QueryRow(ctx, `
			SELECT cardinality(claimed_users), committed_at IS NOT NULL OR released_at IS NOT NULL
			FROM matchmaking_batches WHERE token = $1`, token).Scan(&existing, &finished)
		if err == nil {
			claimed = existing
			if finished {
				return fmt.Errorf("%w: %s", ErrBatchFinished, token)
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// The member-delete trigger bumps the version only when the state row
		// exists; create it now so a delete during this batch fences its
		// commit. It comes before the queue rows, the lock order of every path.
		if _, err := tx.Exec(ctx,
			`INSERT INTO matchmaking_event_state (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, eventID); err != nil {
			return err
		}
		const claim = `
			WITH picked AS (
				SELECT user_id FROM matchmaking_queue
				WHERE event_id = $1 AND (claim_token IS NULL OR lease_expires_at < now())
				ORDER BY priority DESC, enqueued_at, user_id
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			), leased AS (
				UPDATE matchmaking_queue q
				SET claim_token = $3,
				    claimed_generation = q.generation,
				    claimed_at = now(),
				    lease_expires_at = now() + $4::interval,
				    attempts = q.attempts + 1
				FROM picked
				WHERE q.event_id = $1 AND q.user_id = picked.user_id
				RETURNING q.user_id
			)
			SELECT coalesce(array_agg(user_id), '{}') FROM leased`
		var users []string
		if err := tx.QueryRow(ctx, claim, eventID, limit, token, lease).Scan(&users); err != nil {
			return err
		}
		claimed = len(users)
		if claimed == 0 {
			return nil
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO matchmaking_batches (token, event_id, claimed_users) VALUES ($1, $2, $3::uuid[])`,
			token, eventID, users)
		return err
	})
	if errors.Is(err, ErrBatchFinished) {
		return claimed, fmt.Errorf("claim batch %s of event %s: %w", token, eventID, err)
	}
	if err != nil {
		return 0, fmt.Errorf("claim batch %s of event %s: %w", token, eventID, err)
	}
	return claimed, nil
}

// BatchFinished reports whether the token's batch was committed or released
// already; ErrBatchNotFound when no such batch was ever claimed. It only
// reads.
func (s *Store) BatchFinished(ctx context.Context, token string) (bool, error) {
	var finished bool
	err := s.pool.QueryRow(ctx, `
		SELECT committed_at IS NOT NULL OR released_at IS NOT NULL
		FROM matchmaking_batches WHERE token = $1`, token).Scan(&finished)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("batch %s: %w", token, ErrBatchNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("read batch %s: %w", token, err)
	}
	return finished, nil
}

// Transfer bounds of a profile read. Scoring and prompting apply the exact
// caps of package profiletext (tags counted after duplicates are dropped,
// lengths after spacing is tidied), so the database sends a few times more
// tags and characters than those caps and never less than they keep; the
// bio's prefix is the exact cap. A 5,000-tag list or a 1 MB bio then costs
// what its capped part costs, on the wire as in scoring.
const (
	sqlTagLimit = 4 * profiletext.MaxTagsPerField
	sqlTagChars = 4 * profiletext.MaxTagRunes
)

// memberColumns selects a member's profile from all_events_members aliased
// as alias, read defensively: any NULL is an empty value (so a LEFT JOIN
// that found no row reads as an empty profile with user_id ”), arrays of
// any shape are flattened with NULL and blank elements dropped, and sizes
// are bounded by three query parameters from $first on: tags per field,
// characters per tag, bio characters (memberCapArgs, in that order). Scan
// it with profileScanTargets.
func memberColumns(alias string, first int) string {
	tags, chars, bio := fmt.Sprintf("$%d", first), fmt.Sprintf("$%d", first+1), fmt.Sprintf("$%d", first+2)
	return strings.NewReplacer("m.", alias+".", "$tags", tags, "$chars", chars, "$bio", bio).Replace(
		`coalesce(m.user_id::text, ''), coalesce(m.display_name, ''),
		coalesce(m.company, ''), coalesce(m.job_title, ''), coalesce(m.industry, ''),
		` + cleanTags("m.interests") + `, ` + cleanTags("m.looking_for") + `, ` + cleanTags("m.offering") + `,
		left(coalesce(m.bio, ''), $bio),
		left(coalesce(m.attendee_type::text, ''), $chars), ` + cleanTags("m.languages") + ``)
}

// cleanTags is the SQL of a tag column as memberColumns reads it. Calling
// matchmaking_clean_tags on every row cost 370 ms per 20,000 members, paid
// on every reload of an event's profiles; passing through arrays that are
// already flat, without NULLs and within the bounds costs 80 ms. The WHEN
// clauses run in order, so array_position never sees a multi-dimensional
// array, which it refuses.
func cleanTags(column string) string {
	return strings.ReplaceAll(`CASE WHEN $col IS NULL THEN '{}'::text[]
		WHEN cardinality($col) = 0 THEN $col
		WHEN array_ndims($col) <> 1 THEN matchmaking_clean_tags($col, $tags, $chars)
		WHEN array_position($col, NULL) IS NOT NULL OR cardinality($col) > $tags
		     OR octet_length($col::text) > $tags * $chars THEN matchmaking_clean_tags($col, $tags, $chars)
		ELSE $col END`, "$col", column)
}

// memberCapArgs are the parameters memberColumns refers to.
var memberCapArgs = []any{sqlTagLimit, sqlTagChars, profiletext.MaxBioRunes}

// profileScanTargets are where the columns of memberColumns scan into.
func profileScanTargets(m *attendee.Profile) []any {
	return []any{&m.UserID, &m.DisplayName, &m.Company, &m.JobTitle, &m.Industry,
		&m.Interests, &m.LookingFor, &m.Offering, &m.Bio, &m.AttendeeType, &m.Languages}
}

// StoredMatch is one row of a member's current list.
type StoredMatch struct {
	UserID        string
	MatchedUserID string
	Rank          int
	Score         float32
}

// Snapshot is everything scoring a batch reads, taken in one repeatable-read
// transaction so members, matches and versions agree. It is the whole event,
// or what changed since versions the caller holds (see Cached).
type Snapshot struct {
	Version        int64
	MembersVersion int64
	ClaimedUsers   []string

	// MembersLoaded: Members holds every member scoring sees (quarantined
	// ones are left out), in UserID order (shards of such a pool score
	// each pair once: matching.Pool.ShardOffers). Otherwise Members holds the members that changed
	// since the caller's members version and are still scored, MembersGone
	// those that left or were quarantined; both are empty when nothing
	// changed. Members are read as memberColumns reads them: arrays
	// flattened, NULL and blank tags dropped, tags and bio bounded.
	MembersLoaded bool
	Members       []attendee.Profile
	MembersGone   []string
	// Rules are the event's match_rules, read when MembersLoaded. A change
	// of rules moves members_version without a change log line, so a
	// caller holding older rules always gets the whole event.
	Rules []attendee.Rule

	// MatchesLoaded: Matches holds every stored list. Otherwise Matches
	// holds the current rows of the lists named in ListsChanged, the lists
	// rewritten since the caller's version; one named there without rows
	// has no list now.
	MatchesLoaded bool
	Matches       []StoredMatch
	ListsChanged  []string
}

// Cached names the versions of an event's members and lists a caller keeps
// in memory; -1 means none.
type Cached struct {
	MembersVersion int64
	ListsVersion   int64
}

// NoCache makes LoadSnapshot read the whole event.
var NoCache = Cached{MembersVersion: -1, ListsVersion: -1}

// changeLogHorizon is how many versions of each counter the change log
// keeps per event. A cache further behind than this reads the whole event.
const changeLogHorizon = 10_000

// LoadSnapshot reads the batch's claimed users and the event's members and
// matches: in full, or as the changes since the versions in cached when the
// change log covers every version since (see migrations/006_change_log.sql).
// Members read in full mean matches are read in full too, since a caller
// that lost its members has nothing to apply list changes to.
func (s *Store) LoadSnapshot(ctx context.Context, eventID, token string, cached Cached) (Snapshot, error) {
	var snap Snapshot
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`SELECT claimed_users::text[] FROM matchmaking_batches WHERE token = $1 AND event_id = $2`,
			token, eventID).Scan(&snap.ClaimedUsers)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrBatchNotFound, token)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			SELECT coalesce(max(version), 0), coalesce(max(members_version), -1)
			FROM matchmaking_event_state WHERE event_id = $1`, eventID).Scan(&snap.Version, &snap.MembersVersion)
		if err != nil {
			return err
		}

		var changedMembers []string
		membersDelta := false
		// -1: no state row yet, so nothing may be cached against it.
		if snap.MembersVersion >= 0 {
			changedMembers, membersDelta, err = changesSince(ctx, tx, eventID, "members", cached.MembersVersion, snap.MembersVersion)
			if err != nil {
				return err
			}
		}
		if !membersDelta {
			if snap.Members, err = loadMembers(ctx, tx, eventID, nil); err != nil {
				return err
			}
			if snap.Rules, err = loadRules(ctx, tx, eventID); err != nil {
				return err
			}
			snap.MembersLoaded = true
		} else if len(changedMembers) > 0 {
			if snap.Members, err = loadMembers(ctx, tx, eventID, changedMembers); err != nil {
				return err
			}
			snap.MembersGone = missingFrom(changedMembers, snap.Members)
		}

		listsDelta := false
		if membersDelta {
			snap.ListsChanged, listsDelta, err = changesSince(ctx, tx, eventID, "lists", cached.ListsVersion, snap.Version)
			if err != nil {
				return err
			}
		}
		if !listsDelta {
			snap.ListsChanged = nil
			snap.MatchesLoaded = true
		}
		if snap.MatchesLoaded || len(snap.ListsChanged) > 0 {
			// Separate statements rather than "$2 IS NULL OR ...", which a
			// generic plan could only answer by reading every row.
			const columns = `SELECT user_id::text, matched_user_id::text, rank, score FROM matches `
			query, args := columns+`WHERE event_id = $1 ORDER BY user_id, rank`, []any{eventID}
			if !snap.MatchesLoaded {
				query = columns + `WHERE event_id = $1 AND user_id = ANY ($2::uuid[]) ORDER BY user_id, rank`
				args = append(args, snap.ListsChanged)
			}
			rows, err := tx.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			snap.Matches, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (StoredMatch, error) {
				var m StoredMatch
				err := row.Scan(&m.UserID, &m.MatchedUserID, &m.Rank, &m.Score)
				return m, err
			})
			return err
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("load event %s for batch %s: %w", eventID, token, err)
	}
	return snap, nil
}

// changesSince returns the users the change log names for counter's versions
// after since, up to current, and whether the log holds every one of those
// versions; only then are the users all that changed.
func changesSince(ctx context.Context, tx pgx.Tx, eventID, counter string, since, current int64) (users []string, complete bool, err error) {
	if since < 0 || since > current || current-since > changeLogHorizon {
		return nil, false, nil
	}
	if since == current {
		return nil, true, nil
	}
	var logged int64
	err = tx.QueryRow(ctx, `
		SELECT count(*), coalesce((SELECT array_agg(DISTINCT u::text)
		                           FROM matchmaking_change_log l, unnest(l.user_ids) AS u
		                           WHERE l.event_id = $1 AND l.counter = $2 AND l.version > $3 AND l.version <= $4), '{}')
		FROM matchmaking_change_log
		WHERE event_id = $1 AND counter = $2 AND version > $3 AND version <= $4`,
		eventID, counter, since, current).Scan(&logged, &users)
	if err != nil {
		return nil, false, fmt.Errorf("read the %s change log: %w", counter, err)
	}
	if logged != current-since {
		return nil, false, nil
	}
	return users, true, nil
}

// loadMembers reads the event's members that scoring sees (not
// quarantined), all of them when only is nil, else those in only.
func loadMembers(ctx context.Context, tx pgx.Tx, eventID string, only []string) ([]attendee.Profile, error) {
	which, args := "", []any{eventID}
	if only != nil {
		// A statement of its own, so its plan always uses the primary key.
		which, args = "AND m.user_id = ANY ($2::uuid[])", append(args, only)
	}
	rows, err := tx.Query(ctx, `
		SELECT `+memberColumns("m", len(args)+1)+`
		FROM all_events_members m
		WHERE m.event_id = $1 `+which+`
		  AND NOT EXISTS (SELECT 1 FROM matchmaking_quarantine q
		                  WHERE q.event_id = m.event_id AND q.user_id = m.user_id)
		ORDER BY m.user_id`, append(args, memberCapArgs...)...)
	if err != nil {
		return nil, err
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (attendee.Profile, error) {
		var m attendee.Profile
		err := row.Scan(profileScanTargets(&m)...)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	return members, loadExclusions(ctx, tx, eventID, only, members)
}

// loadExclusions sets each member's Excluded: the other side of every
// match_exclusions row that names them, whichever side they are on. Read
// apart from the members, in one statement, since most events have few
// exclusions and a per-member subquery would cost every member a probe.
func loadExclusions(ctx context.Context, tx pgx.Tx, eventID string, only []string, members []attendee.Profile) error {
	query, args := `SELECT user_id::text, excluded_user_id::text FROM match_exclusions WHERE event_id = $1`, []any{eventID}
	if only != nil {
		query += ` AND (user_id = ANY ($2::uuid[]) OR excluded_user_id = ANY ($2::uuid[]))`
		args = append(args, only)
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read exclusions: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var pair [2]string
		err := row.Scan(&pair[0], &pair[1])
		return pair, err
	})
	if err != nil {
		return fmt.Errorf("read exclusions: %w", err)
	}
	if len(pairs) == 0 {
		return nil
	}
	index := make(map[string]int, len(members))
	for i, m := range members {
		index[m.UserID] = i
	}
	for _, pair := range pairs {
		if i, ok := index[pair[0]]; ok {
			members[i].Excluded = append(members[i].Excluded, pair[1])
		}
		if i, ok := index[pair[1]]; ok {
			members[i].Excluded = append(members[i].Excluded, pair[0])
		}
	}
	return nil
}

// loadRules reads the event's organiser rules (match_rules).
func loadRules(ctx context.Context, tx pgx.Tx, eventID string) ([]attendee.Rule, error) {
	rows, err := tx.Query(ctx, `
		SELECT viewer_type, candidate_type FROM match_rules
		WHERE event_id = $1 ORDER BY viewer_type, candidate_type`, eventID)
	if err != nil {
		return nil, fmt.Errorf("read match rules: %w", err)
	}
	rules, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attendee.Rule])
	if err != nil {
		return nil, fmt.Errorf("read match rules: %w", err)
	}
	return rules, nil
}

// missingFrom returns the IDs of ids with no member in members.
func missingFrom(ids []string, members []attendee.Profile) []string {
	found := make(map[string]bool, len(members))
	for _, m := range members {
		found[m.UserID] = true
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// StagedMatch is one row of a new list, before its insight is written.
type StagedMatch struct {
	UserID        string
	MatchedUserID string
	Rank          int
	Score         float32
	Reasons       json.RawMessage
	// Fallback is the deterministic insight, used when no AI writes one.
	Fallback string
}

// StageMatches replaces the batch's staged lists. viewers names every member
// whose list the batch rewrites, including those whose new list is empty.
//
// fallbacksFinal says that no AI writes this worker's insights: each
// row's fallback is staged as its insight instead, so that WriteInsights
// (ApplyFallbackInsights) has no row left to rewrite. A large batch's
// UPDATE of every staged row was a tenth of a 50,000-member event's match.
func (s *Store) StageMatches(ctx context.Context, token string, baseVersion int64, viewers []string, rows []StagedMatch, fallbacksFinal bool) (stageID string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE matchmaking_batches
			SET base_version = $2, viewers = $3::uuid[], staged_rows = $4, scored_at = now(),
			    stage_id = gen_random_uuid()
			WHERE token = $1 AND committed_at IS NULL AND released_at IS NULL
			RETURNING stage_id::text`,
			token, baseVersion, viewers, len(rows)).Scan(&stageID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s is missing, committed or released", ErrBatchNotFound, token)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM matchmaking_staged_matches WHERE token = $1`, token); err != nil {
			return err
		}
		// With fallbacksFinal the fallback goes into the insight columns
		// only: nothing reads a staged fallback once the row has its
		// insight, and each is some 100 bytes of the COPY.
		columns := []string{"token", "user_id", "matched_user_id", "rank", "score", "reasons", "fallback_insight"}
		if fallbacksFinal {
			columns = []string{"token", "user_id", "matched_user_id", "rank", "score", "reasons", "insight", "insight_source"}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"matchmaking_staged_matches"}, columns,
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				r := rows[i]
				row := []any{token, r.UserID, r.MatchedUserID, int16(r.Rank), r.Score, string(r.Reasons), nullIfEmpty(r.Fallback)}
				if fallbacksFinal {
					// A row without a fallback waits for an insight, as
					// it would have without fallbacksFinal.
					source := any(nil)
					if r.Fallback != "" {
						source = "fallback"
					}
					row = append(row, source)
				}
				return row, nil
			}))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("stage matches of batch %s: %w", token, err)
	}
	return stageID, nil
}

// PendingInsight is a staged match still waiting for its insight, with both
// profiles for whoever writes it.
type PendingInsight struct {
	UserID          string
	MatchedUserID   string
	Rank            int
	MatchedUserName string
	Reasons         json.RawMessage
	Fallback        string // the staged fallback insight; "" if scoring wrote none
	Viewer          attendee.Profile
	Matched         attendee.Profile
}

// PendingInsights lists the batch's staged matches that have no insight yet.
func (s *Store) PendingInsights(ctx context.Context, eventID, token string) ([]PendingInsight, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.user_id::text, s.matched_user_id::text, s.rank, s.reasons, coalesce(s.fallback_insight, ''),
		       `+memberColumns("v", 3)+`,
		       `+memberColumns("o", 3)+`
		FROM matchmaking_staged_matches s
		LEFT JOIN all_events_members v ON v.event_id = $2 AND v.user_id = s.user_id
		LEFT JOIN all_events_members o ON o.event_id = $2 AND o.user_id = s.matched_user_id
		WHERE s.token = $1 AND s.insight IS NULL
		ORDER BY s.user_id, s.rank`, append([]any{token, eventID}, memberCapArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read pending insights of batch %s: %w", token, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PendingInsight, error) {
		var p PendingInsight
		v, o := &p.Viewer, &p.Matched
		targets := append([]any{&p.UserID, &p.MatchedUserID, &p.Rank, &p.Reasons, &p.Fallback}, profileScanTargets(v)...)
		targets = append(targets, profileScanTargets(o)...)
		err := row.Scan(targets...)
		v.UserID, o.UserID = p.UserID, p.MatchedUserID
		p.MatchedUserName = o.DisplayName
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read pending insights of batch %s: %w", token, err)
	}
	return out, nil
}

// Insight is the text written for one staged match.
type Insight struct {
	UserID string
	Rank   int
	Text   string
	Source string // "ai" or "fallback"
}

// SaveInsights writes insights onto the batch's staged matches.
func (s *Store) SaveInsights(ctx context.Context, token string, insights []Insight) error {
	if len(insights) == 0 {
		return nil
	}
	users := make([]string, len(insights))
	ranks := make([]int16, len(insights))
	texts := make([]string, len(insights))
	sources := make([]string, len(insights))
	for i, in := range insights {
		users[i], ranks[i], texts[i], sources[i] = in.UserID, int16(in.Rank), in.Text, in.Source
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE matchmaking_staged_matches s
		SET insight = v.insight, insight_source = v.source
		FROM unnest($2::uuid[], $3::smallint[], $4::text[], $5::text[]) AS v (user_id, rank, insight, source)
		WHERE s.token = $1 AND s.user_id = v.user_id AND s.rank = v.rank`,
		token, users, ranks, texts, sources)
	if err != nil {
		return fmt.Errorf("save insights of batch %s: %w", token, err)
	}
	return nil
}

// ApplyFallbackInsights gives every staged match of the batch that has no
// insight its staged fallback, in one statement. It says how many it set
// (applied) and how many of the batch's staged matches have their fallback
// as insight now (total), which includes those staged with it
// (StageMatches' fallbacksFinal) and those set by an earlier call.
func (s *Store) ApplyFallbackInsights(ctx context.Context, token string) (applied, total int, err error) {
	// The statement's parts all read the table as it was before the
	// UPDATE, so the rows it sets are counted once, in applied.
	var before int
	err = s.pool.QueryRow(ctx, `
		WITH applied AS (
			UPDATE matchmaking_staged_matches
			SET insight = fallback_insight, insight_source = 'fallback'
			WHERE token = $1 AND insight IS NULL AND fallback_insight IS NOT NULL
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM applied),
		       (SELECT count(*) FROM matchmaking_staged_matches WHERE token = $1 AND insight_source = 'fallback')`,
		token).Scan(&applied, &before)
	if err != nil {
		return 0, 0, fmt.Errorf("apply fallback insights of batch %s: %w", token, err)
	}
	return applied, applied + before, nil
}

// CommitResult is what a commit did, recorded on the batch so a retried
// commit returns the same answer.
type CommitResult struct {
	// QueueDepth is the event's queue size once the commit is done, and
	// Quarantined how many of its members are in quarantine then.
	QueueDepth     int
	Quarantined    int
	UsersCommitted int
	// UsersRequeued are claimed members who go round again: enqueued again
	// while the batch ran, or deferred (below).
	UsersRequeued int
	// ListsDeferred counts staged lists that named a member who left the
	// event while the batch ran; they were not written, their owners were
	// enqueued again.
	ListsDeferred    int
	ListsWritten     int
	AIInsights       int
	FallbackInsights int
	// StageID is the StageMatches whose rows this commit wrote. Version
	// is the event's version (of its lists) the commit made and
	// ScoredVersion the one that staging was scored on. Version is
	// ScoredVersion+1 when nothing else changed a list in between: then,
	// with no list deferred, the event's lists are exactly those that
	// staging was scored on with the ones it staged. All three are zero
	// when the batch had been committed before.
	StageID                string
	ScoredVersion, Version int64
}

// departureHorizon is how long departures are remembered. A batch scored
// longer ago than this cannot be told which departures it missed, so it is
// stale; batches take seconds, and a lease ends a stuck one within minutes.
const departureHorizon = "1 day"

// CommitBatch makes the batch's staged lists the event's matches, in one
// transaction fenced three ways: the batch still owns every claimed row that
// still exists (ErrLeaseLost otherwise); every change since scoring is a
// member departure the batch can work around, and its staged rows are all
// still there (ErrBatchStale otherwise); and every staged row has its
// insight. A staged list that names a departed
// member, or belongs to one, is not written: its owner is enqueued again.
// Claimed rows enqueued again meanwhile are released rather than deleted, so
// they get another pass. When the database refuses the lists' rows for a
// data reason (a constraint or trigger on matches), it returns
// ErrRowsRefused and writes nothing; FindRefusedMembers then says who.
//
// Locks are taken in the order every path uses: the event's state row, the
// batch row, queue rows, then matches.
func (s *Store) CommitBatch(ctx context.Context, eventID, token string) (CommitResult, error) {
	var res CommitResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		version, err := lockEventState(ctx, tx, eventID)
		if err != nil {
			return err
		}
		var (
			baseVersion *int64
			stagedRows  *int
			stageID     *string
			committed   bool
			released    bool
			recent      bool
		)
		err = tx.QueryRow(ctx, `
			SELECT base_version, staged_rows, stage_id::text, committed_at IS NOT NULL, released_at IS NOT NULL,
			       coalesce(scored_at > now() - $3::interval, false),
			       coalesce(users_committed, 0), coalesce(users_requeued, 0), coalesce(cardinality(viewers), 0),
			       coalesce(ai_insights, 0), coalesce(fallback_insights, 0)
			FROM matchmaking_batches WHERE token = $1 AND event_id = $2
			FOR UPDATE`, token, eventID, departureHorizon).Scan(&baseVersion, &stagedRows, &stageID, &committed, &released, &recent,
			&res.UsersCommitted, &res.UsersRequeued, &res.ListsWritten, &res.AIInsights, &res.FallbackInsights)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrBatchNotFound, token)
		}
		if err != nil {
			return err
		}
		if committed {
			return nil
		}
		if released {
			return fmt.Errorf("%w: batch %s was released", ErrLeaseLost, token)
		}
		if baseVersion == nil || stagedRows == nil {
			return fmt.Errorf("batch %s has not been scored", token)
		}

		// The rows are locked so no claim can take one between this check
		// and the delete below.
		var takenByOthers int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE claim_token IS DISTINCT FROM $1)
			FROM (
				SELECT q.claim_token FROM matchmaking_queue q
				JOIN matchmaking_batches b ON b.token = $1
				WHERE q.event_id = b.event_id AND q.user_id = ANY (b.claimed_users)
				FOR UPDATE OF q
			) claimed`, token).Scan(&takenByOthers); err != nil {
			return err
		}
		if takenByOthers > 0 {
			return fmt.Errorf("%w: %d of batch %s's rows are claimed elsewhere", ErrLeaseLost, takenByOthers, token)
		}

		departed, err := departuresSince(ctx, tx, eventID, *baseVersion, version, recent)
		if err != nil {
			return fmt.Errorf("batch %s: %w", token, err)
		}

		var staged, missingInsight int
		if err := tx.QueryRow(ctx, `
			SELECT count(*), count(*) FILTER (WHERE insight IS NULL)
			FROM matchmaking_staged_matches WHERE token = $1`, token).Scan(&staged, &missingInsight); err != nil {
			return err
		}
		if staged != *stagedRows {
			// The staging table is unlogged (migration 013): a database
			// crash or a failover empties it. Scoring again stages the
			// rows again.
			return fmt.Errorf("%w: batch %s has %d staged rows, scoring wrote %d (did the database crash or fail over since?)",
				ErrBatchStale, token, staged, *stagedRows)
		}
		if missingInsight > 0 {
			return fmt.Errorf("batch %s: %d staged matches have no insight", token, missingInsight)
		}
		if len(departed) > 0 {
			if res.ListsDeferred, err = deferListsOfDeparted(ctx, tx, eventID, token, departed); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE insight_source = 'ai'), count(*) FILTER (WHERE insight_source = 'fallback')
			FROM matchmaking_staged_matches WHERE token = $1`, token).Scan(&res.AIInsights, &res.FallbackInsights); err != nil {
			return err
		}

		// The lists are swapped row by row: a stored row equal to its staged
		// row in every column but updated_at stays as it is, every other row
		// of the batch's viewers goes and the staged rows not kept go in. A
		// list is rewritten when it names a claimed member, and in a large
		// batch most rows of the lists it rewrites are unchanged: writing
		// them again was most of the commit (and every one a delete and an
		// insert for the web app's triggers and subscribers). A kept row
		// keeps its updated_at, which is when that match was written.
		// (The count of stored rows reads the table as it was before the
		// statement's DELETE.)
		var kept int
		if err := tx.QueryRow(ctx, `
			WITH cleared AS (
				DELETE FROM matches m USING matchmaking_batches b
				WHERE b.token = $1 AND m.event_id = b.event_id AND m.user_id = ANY (b.viewers)
				  AND NOT EXISTS (
				      SELECT 1 FROM matchmaking_staged_matches s
				      WHERE s.token = $1 AND s.user_id = m.user_id AND s.rank = m.rank
				        AND s.matched_user_id = m.matched_user_id AND s.score = m.score AND s.reasons = m.reasons
				        AND s.insight = m.insight AND s.insight_source = m.insight_source)
				RETURNING 1
			)
			SELECT coalesce(cardinality(b.viewers), 0),
			       (SELECT count(*) FROM matches m WHERE m.event_id = b.event_id AND m.user_id = ANY (b.viewers))
			       - (SELECT count(*) FROM cleared)
			FROM matchmaking_batches b WHERE b.token = $1`, token).Scan(&res.ListsWritten, &kept); err != nil {
			return refusedOr(err)
		}
		// A kept row holds its viewer and rank, so its staged twin is the
		// one conflict there can be on them. The conflict clause costs
		// about a quarter of a large insert (scripts/write-costs.sh), and a
		// batch that keeps nothing (a first match, a newcomer whose lists
		// all moved) needs none. (An
		// anti-join instead was planned, once prepared, as a hash of all
		// the event's matches: 15 ms a newcomer at 10,000 members.)
		insert := `
			INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, reasons, insight, insight_source)
			SELECT $2, user_id, matched_user_id, rank, score, reasons, insight, insight_source
			FROM matchmaking_staged_matches WHERE token = $1`
		if kept > 0 {
			insert += `
			ON CONFLICT (event_id, user_id, rank) DO NOTHING`
		}
		if _, err := tx.Exec(ctx, insert, token, eventID); err != nil {
			return refusedOr(err)
		}

		tag, err := tx.Exec(ctx, `
			DELETE FROM matchmaking_queue
			WHERE claim_token = $1 AND generation = claimed_generation`, token)
		if err != nil {
			return err
		}
		res.UsersCommitted = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			UPDATE matchmaking_queue
			SET claim_token = NULL, claimed_generation = NULL, claimed_at = NULL, lease_expires_at = NULL
			WHERE claim_token = $1`, token)
		if err != nil {
			return err
		}
		res.UsersRequeued = int(tag.RowsAffected())

		// The new version logs the lists it rewrote, for workers that keep
		// the event's lists in memory; entries past the horizon go.
		if err := tx.QueryRow(ctx, `
			WITH bumped AS (
				UPDATE matchmaking_event_state SET version = version + 1 WHERE event_id = $1
				RETURNING version, members_version
			), logged AS (
				INSERT INTO matchmaking_change_log (event_id, counter, version, user_ids)
				SELECT $1, 'lists', bumped.version, coalesce(b.viewers, '{}')
				FROM bumped, matchmaking_batches b WHERE b.token = $2
			), pruned AS (
				DELETE FROM matchmaking_change_log l USING bumped
				WHERE l.event_id = $1
				  AND ((l.counter = 'lists' AND l.version <= bumped.version - $3)
				       OR (l.counter = 'members' AND l.version <= bumped.members_version - $3))
			)
			SELECT version FROM bumped`,
			eventID, token, changeLogHorizon).Scan(&res.Version); err != nil {
			return err
		}
		res.ScoredVersion = *baseVersion
		if stageID != nil {
			res.StageID = *stageID
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM matchmaking_departures
			WHERE event_id = $1 AND departed_at < now() - $2::interval`, eventID, departureHorizon); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM matchmaking_staged_matches WHERE token = $1`, token); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM matchmaking_batch_shards WHERE token = $1`, token); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE matchmaking_batches
			SET committed_at = now(), users_committed = $2, users_requeued = $3,
			    ai_insights = $4, fallback_insights = $5
			WHERE token = $1`,
			token, res.UsersCommitted, res.UsersRequeued, res.AIInsights, res.FallbackInsights)
		return err
	})
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit batch %s of event %s: %w", token, eventID, err)
	}
	err = s.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM matchmaking_queue WHERE event_id = $1),
		       (SELECT count(*) FROM matchmaking_quarantine WHERE event_id = $1)`, eventID).
		Scan(&res.QueueDepth, &res.Quarantined)
	if err != nil {
		return CommitResult{}, fmt.Errorf("count the queue of event %s: %w", eventID, err)
	}
	return res, nil
}

// lockEventState locks the event's state row, creating it if needed, and
// returns the event's version. Every transaction that takes more than one
// kind of lock on an event takes this one first, so they serialise here
// instead of deadlocking on queue rows.
func lockEventState(ctx context.Context, tx pgx.Tx, eventID string) (int64, error) {
	if _, err := tx.Exec(ctx,
		`INSERT INTO matchmaking_event_state (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, eventID); err != nil {
		return 0, err
	}
	var version int64
	err := tx.QueryRow(ctx,
		`SELECT version FROM matchmaking_event_state WHERE event_id = $1 FOR UPDATE`, eventID).Scan(&version)
	return version, err
}

// departuresSince returns who left the event after baseVersion, or
// ErrBatchStale when something other than departures moved the version
// (another commit) or the batch is too old for the log to be complete.
// Each departing statement bumps the version once and logs its members at
// the new version, so the log explains every bump exactly when it holds one
// distinct version per bump.
func departuresSince(ctx context.Context, tx pgx.Tx, eventID string, baseVersion, version int64, recent bool) ([]string, error) {
	if version == baseVersion {
		return nil, nil
	}
	if !recent {
		return nil, fmt.Errorf("%w: scored more than %s ago", ErrBatchStale, departureHorizon)
	}
	var (
		bumps    int64
		departed []string
	)
	err := tx.QueryRow(ctx, `
		SELECT count(DISTINCT version), coalesce(array_agg(DISTINCT user_id::text), '{}')
		FROM matchmaking_departures WHERE event_id = $1 AND version > $2`, eventID, baseVersion).Scan(&bumps, &departed)
	if err != nil {
		return nil, err
	}
	if bumps != version-baseVersion {
		return nil, fmt.Errorf("%w: scored at version %d, event is at %d, and %d of the changes are not departures",
			ErrBatchStale, baseVersion, version, version-baseVersion-bumps)
	}
	return departed, nil
}

// deferListsOfDeparted drops the staged lists that belong to or name a
// departed member, so the commit writes only lists the departures cannot
// have changed (a list without the departed member was its owner's top N
// with them in the pool, so it still is without them). The owners who are
// still in the event are enqueued again at priority 1, the re-match
// priority; a claimed owner's row is then released by the commit rather
// than deleted. It returns how many lists it dropped.
func deferListsOfDeparted(ctx context.Context, tx pgx.Tx, eventID, token string, departed []string) (int, error) {
	var deferred []string
	err := tx.QueryRow(ctx, `
		WITH affected AS (
			SELECT DISTINCT v AS user_id
			FROM matchmaking_batches b, unnest(b.viewers) AS v
			WHERE b.token = $1
			  AND (v = ANY ($2::uuid[])
			       OR EXISTS (SELECT 1 FROM matchmaking_staged_matches s
			                  WHERE s.token = $1 AND s.user_id = v AND s.matched_user_id = ANY ($2::uuid[])))
		), dropped AS (
			DELETE FROM matchmaking_staged_matches s USING affected a
			WHERE s.token = $1 AND s.user_id = a.user_id
		), narrowed AS (
			UPDATE matchmaking_batches b
			SET viewers = (SELECT coalesce(array_agg(v), '{}') FROM unnest(b.viewers) AS v
			               WHERE v NOT IN (SELECT user_id FROM affected))
			WHERE b.token = $1
		)
		SELECT coalesce(array_agg(user_id::text), '{}') FROM affected`, token, departed).Scan(&deferred)
	if err != nil {
		return 0, fmt.Errorf("set aside lists that name departed members: %w", err)
	}
	_, err = tx.Exec(ctx, `
		SELECT matchmaking_enqueue_rows($1, array_agg(m.user_id), 1)
		FROM all_events_members m
		JOIN events e ON e.id = m.event_id AND e.matchmaking_enabled
		WHERE m.event_id = $1 AND m.user_id = ANY ($2::uuid[])
		HAVING count(*) > 0`, eventID, deferred)
	if err != nil {
		return 0, fmt.Errorf("enqueue members whose lists named departed members: %w", err)
	}
	return len(deferred), nil
}

// ReleaseBatch gives up a batch: its rows go back to the queue with the
// error recorded, its staged rows are dropped. Rows another claim took are
// left alone. It returns how many rows went back.
func (s *Store) ReleaseBatch(ctx context.Context, token, reason string) (int, error) {
	var released int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var eventID string
		err := tx.QueryRow(ctx, `SELECT event_id::text FROM matchmaking_batches WHERE token = $1`, token).Scan(&eventID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // never claimed anything: nothing to give back
		}
		if err != nil {
			return err
		}
		// The same lock order as CommitBatch: a release racing a retried
		// commit of the same batch waits instead of deadlocking.
		if _, err := lockEventState(ctx, tx, eventID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM matchmaking_batches WHERE token = $1 FOR UPDATE`, token); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE matchmaking_queue
			SET claim_token = NULL, claimed_generation = NULL, claimed_at = NULL, lease_expires_at = NULL,
			    last_error = $2
			WHERE claim_token = $1`, token, reason)
		if err != nil {
			return err
		}
		released = int(tag.RowsAffected())
		if _, err := tx.Exec(ctx, `DELETE FROM matchmaking_staged_matches WHERE token = $1`, token); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM matchmaking_batch_shards WHERE token = $1`, token); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE matchmaking_batches SET released_at = now(), last_error = $2
			WHERE token = $1 AND committed_at IS NULL`, token, reason)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release batch %s: %w", token, err)
	}
	return released, nil
}
