package store_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/store"
)

func TestBatchHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3, 4)
	e.queue(event, 1, 2, 3*time.Minute)
	e.queue(event, 2, 1, 2*time.Minute)
	e.queue(event, 3, 0, 1*time.Minute)
	e.queue(event, 4, 0, 0) // left out by the limit
	e.Match(event, 1, 4, 1)
	e.Match(event, 1, 3, 2)
	e.Match(event, 3, 4, 1) // 3's new list is empty
	e.Match(event, 4, 1, 1) // 4 is not in the batch

	if n := e.claim(event, "t", 3); n != 3 {
		t.Fatalf("claim: got %d, want 3", n)
	}
	snap, err := e.st.LoadSnapshot(e.Ctx, event, "t", store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 0 {
		t.Errorf("snapshot version %d, want 0", snap.Version)
	}
	if got := sorted(snap.ClaimedUsers); !slices.Equal(got, uids(1, 2, 3)) {
		t.Errorf("snapshot claimed users %v, want %v", got, uids(1, 2, 3))
	}
	if len(snap.Members) != 4 || snap.Members[1].UserID != uid(2) || snap.Members[1].DisplayName != "M2" ||
		snap.Members[1].JobTitle != "Title 2" || snap.Members[1].Company != "" || !slices.Equal(snap.Members[1].Interests, []string{"go"}) {
		t.Errorf("snapshot members %+v", snap.Members)
	}
	wantMatches := []store.StoredMatch{
		{UserID: uid(1), MatchedUserID: uid(4), Rank: 1, Score: 0.5},
		{UserID: uid(1), MatchedUserID: uid(3), Rank: 2, Score: 0.5},
		{UserID: uid(3), MatchedUserID: uid(4), Rank: 1, Score: 0.5},
		{UserID: uid(4), MatchedUserID: uid(1), Rank: 1, Score: 0.5},
	}
	if !reflect.DeepEqual(snap.Matches, wantMatches) {
		t.Errorf("snapshot matches %+v, want %+v", snap.Matches, wantMatches)
	}
	if _, err := e.st.LoadSnapshot(e.Ctx, event, "nope", store.NoCache); !errors.Is(err, store.ErrBatchNotFound) {
		t.Errorf("LoadSnapshot of an unknown token: %v, want ErrBatchNotFound", err)
	}

	rows, _ := stagedRows([2]int{1, 2}, [2]int{1, 3}, [2]int{2, 1})
	// Staged twice (a retried score step): the commit names the last.
	firstStage, err := e.st.StageMatches(e.Ctx, "t", snap.Version, uids(1, 2, 3), rows, false)
	if err != nil {
		t.Fatal(err)
	}
	stageID, err := e.st.StageMatches(e.Ctx, "t", snap.Version, uids(1, 2, 3), rows, false)
	if err != nil {
		t.Fatal(err)
	}
	if stageID == "" || stageID == firstStage {
		t.Errorf("stagings %q and %q: want two different ids", firstStage, stageID)
	}
	pending, err := e.st.PendingInsights(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	var gotPending []string
	for _, p := range pending {
		var reasons map[string]any
		if err := json.Unmarshal(p.Reasons, &reasons); err != nil || reasons["shared"] == nil {
			t.Errorf("pending %+v: reasons %s do not round-trip (%v)", p, p.Reasons, err)
		}
		gotPending = append(gotPending, p.UserID[len(p.UserID)-1:]+">"+p.MatchedUserID[len(p.MatchedUserID)-1:]+
			"#"+string(rune('0'+p.Rank))+" "+p.MatchedUserName)
	}
	wantStrings(t, "pending insights", gotPending, "1>2#1 M2", "1>3#2 M3", "2>1#1 M1")

	err = e.st.SaveInsights(e.Ctx, "t", []store.Insight{
		{UserID: uid(1), Rank: 1, Text: "one-two", Source: "ai"},
		{UserID: uid(1), Rank: 2, Text: "one-three", Source: "fallback"},
		{UserID: uid(2), Rank: 1, Text: "two-one", Source: "ai"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := e.st.PendingInsights(e.Ctx, event, "t"); err != nil || len(pending) != 0 {
		t.Fatalf("pending insights after saving all: %v, %v", pending, err)
	}

	res, err := e.st.CommitBatch(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	want := store.CommitResult{QueueDepth: 1, UsersCommitted: 3, UsersRequeued: 0, ListsWritten: 3, AIInsights: 2, FallbackInsights: 1,
		StageID: stageID, ScoredVersion: snap.Version, Version: snap.Version + 1}
	if res != want {
		t.Errorf("commit result %+v, want %+v", res, want)
	}
	wantStrings(t, "matches", e.Matches(event), "1>2#1", "1>3#2", "2>1#1", "4>1#1")
	wantStrings(t, "written matches", e.Strings(`SELECT concat_ws(' ', `+short("user_id")+`, rank, score, reasons::text, insight, insight_source)
		FROM matches WHERE event_id = $1 AND user_id <> $2 ORDER BY user_id, rank`, event, uid(4)),
		`1 1 0.75 {"shared": ["go"]} one-two ai`, `1 2 0.5 {"shared": ["go"]} one-three fallback`, `2 1 0.75 {"shared": ["go"]} two-one ai`)
	wantStrings(t, "queue", e.queueRows(event), "4:0")
	if v := e.version(event); v != 1 {
		t.Errorf("version %d after commit, want 1", v)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_batches WHERE token = 't' AND committed_at IS NOT NULL
		AND users_committed = 3 AND users_requeued = 0 AND ai_insights = 2 AND fallback_insights = 1`); n != 1 {
		t.Errorf("batch row not recorded as committed")
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_staged_matches WHERE token = 't'`); n != 0 {
		t.Errorf("%d staged rows left after commit", n)
	}

	// A retried commit answers the same and writes nothing; it names no
	// staging, since other commits may have come since.
	before := e.matchesFull(event)
	res2, err := e.st.CommitBatch(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	want = res
	want.StageID, want.ScoredVersion, want.Version = "", 0, 0
	if res2 != want {
		t.Errorf("retried commit result %+v, want %+v", res2, want)
	}
	wantStrings(t, "matches after retried commit", e.matchesFull(event), before...)
	if v := e.version(event); v != 1 {
		t.Errorf("version %d after retried commit, want 1", v)
	}
	wantStrings(t, "queue after retried commit", e.queueRows(event), "4:0")

	// A committed batch cannot be staged again.
	if _, err := e.st.StageMatches(e.Ctx, "t", 1, nil, nil, false); !errors.Is(err, store.ErrBatchNotFound) {
		t.Errorf("StageMatches on a committed batch: %v, want ErrBatchNotFound", err)
	}
}

// state is everything a failed commit must leave alone.
func (e *env) state(event string) []string {
	e.T.Helper()
	s := append(e.matchesFull(event), "|")
	s = append(s, e.queueFull(event)...)
	s = append(s, "|", e.Strings(`SELECT coalesce((SELECT version FROM matchmaking_event_state WHERE event_id = $1)::text, 'none')`, event)[0])
	s = append(s, "|")
	return append(s, e.Strings(`SELECT token || ' ' || (committed_at IS NOT NULL) FROM matchmaking_batches ORDER BY token`)...)
}

func TestCommitMissingInsightFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.Match(event, 1, 3, 1)
	e.claim(event, "t", 10)
	snap, err := e.st.LoadSnapshot(e.Ctx, event, "t", store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	rows, insights := stagedRows([2]int{1, 2}, [2]int{1, 3})
	if _, err := e.st.StageMatches(e.Ctx, "t", snap.Version, uids(1), rows, false); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SaveInsights(e.Ctx, "t", insights[:1]); err != nil {
		t.Fatal(err)
	}
	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); err == nil {
		t.Fatal("commit with a staged match lacking its insight succeeded")
	} else if errors.Is(err, store.ErrBatchStale) || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("commit with a missing insight: %v, want a plain error", err)
	}
	wantStrings(t, "state after failed commit", e.state(event), before...)

	// Once the insight is there, the same batch commits.
	if err := e.st.SaveInsights(e.Ctx, "t", insights[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); err != nil {
		t.Fatalf("commit after the last insight: %v", err)
	}
	wantStrings(t, "matches", e.Matches(event), "1>2#1", "1>3#2")
}

// TestFallbackInsightsStagedOrApplied: without AI a batch stages its
// fallbacks as insights (fallbacksFinal), leaving ApplyFallbackInsights
// nothing to set but the same total to report; staged the other way, the
// fallbacks are set by it, once. Both commit the same lists, and a row
// without a fallback still holds the commit back.
func TestFallbackInsightsStagedOrApplied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		fallbacksFinal        bool
		firstApplied, applied int
	}{
		{"staged as insights", true, 0, 0},
		{"applied later", false, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			event := e.Event(1, false)
			e.members(event, 1, 2, 3, 4)
			e.queue(event, 1, 0, 0)
			e.claim(event, "t", 10)
			snap, err := e.st.LoadSnapshot(e.Ctx, event, "t", store.NoCache)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := stagedRows([2]int{1, 2}, [2]int{1, 3}, [2]int{1, 4})
			rows[0].Fallback, rows[1].Fallback = "meet 2 (fallback)", "meet 3 (fallback)"
			if _, err := e.st.StageMatches(e.Ctx, "t", snap.Version, uids(1), rows, tc.fallbacksFinal); err != nil {
				t.Fatal(err)
			}
			for call, wantApplied := range []int{tc.firstApplied, tc.applied} {
				applied, total, err := e.st.ApplyFallbackInsights(e.Ctx, "t")
				if err != nil || applied != wantApplied || total != 2 {
					t.Fatalf("ApplyFallbackInsights call %d = %d applied, %d in all, %v; want %d, 2", call+1, applied, total, err, wantApplied)
				}
			}
			if _, err := e.st.CommitBatch(e.Ctx, event, "t"); err == nil {
				t.Fatal("committed a staged row without an insight or a fallback")
			}
			if err := e.st.SaveInsights(e.Ctx, "t", []store.Insight{{UserID: uid(1), Rank: 3, Text: "meet 4", Source: "ai"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.st.CommitBatch(e.Ctx, event, "t"); err != nil {
				t.Fatal(err)
			}
			wantStrings(t, "insights", e.Strings(`SELECT rank || ' ' || insight_source || ' ' || insight FROM matches WHERE event_id = $1 ORDER BY rank`, event),
				"1 fallback meet 2 (fallback)", "2 fallback meet 3 (fallback)", "3 ai meet 4")
		})
	}
}

// TestCommitAfterMemberDeleteWritesUnaffectedLists: a member who leaves
// while a batch is scored invalidates only the staged lists that name them
// (or are theirs). The rest commits; the owners of the set-aside lists go
// round again, and nothing names the departed member.
func TestCommitAfterMemberDeleteWritesUnaffectedLists(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		priorCommit bool
	}{
		{"first batch of the event", false},
		{"after an earlier commit", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			event := e.Event(1, true)
			e.members(event, 1, 2, 3, 4, 5, 6)
			e.Exec(`DELETE FROM matchmaking_queue WHERE event_id = $1`, event)
			if tc.priorCommit {
				e.queue(event, 5, 0, 0)
				e.claim(event, "prior", 10)
				e.stageAll(event, "prior", []int{5}, [2]int{5, 1})
				if _, err := e.st.CommitBatch(e.Ctx, event, "prior"); err != nil {
					t.Fatal(err)
				}
			}
			e.queue(event, 1, 0, 0)
			e.queue(event, 2, 0, 0)
			e.queue(event, 3, 0, 0)
			e.claim(event, "t", 10)
			// 1 and 4 list 3, who leaves after scoring; 2's list does not.
			e.stageAll(event, "t", []int{1, 2, 3, 4},
				[2]int{1, 3}, [2]int{2, 6}, [2]int{2, 4}, [2]int{3, 1}, [2]int{4, 3}, [2]int{4, 6})
			e.Exec(`DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, event, uid(3))

			res, err := e.st.CommitBatch(e.Ctx, event, "t")
			if err != nil {
				t.Fatalf("commit after a member delete: %v", err)
			}
			if res.ListsDeferred != 3 || res.ListsWritten != 1 || res.UsersCommitted != 1 {
				t.Errorf("commit result %+v: want 3 lists deferred (1, 3, 4), 1 written (2), 1 user committed (2)", res)
			}
			// The departure's bump came between: not the lists scored on.
			if res.Version != res.ScoredVersion+2 {
				t.Errorf("commit made version %d of a staging scored at %d, want the departure's bump between", res.Version, res.ScoredVersion)
			}
			if n := e.Int(`SELECT count(*) FROM matches WHERE event_id = $1 AND (matched_user_id = $2 OR user_id = $2)`, event, uid(3)); n != 0 {
				t.Errorf("%d matches name the deleted member", n)
			}
			if n := e.Int(`SELECT count(*) FROM matches WHERE event_id = $1 AND user_id = $2`, event, uid(2)); n != 2 {
				t.Errorf("member 2's list was not written: %v", e.Matches(event))
			}
			// 1 was claimed and its list set aside: it goes round again; so
			// does 4, whose list was not the batch's to keep.
			wantStrings(t, "queue", e.queueRows(event), "1:1", "4:1")
		})
	}
}

// TestCommitNamesNoStagingOfAnEarlierRelease: a worker of the release
// before stage_id, still running during a rollout, stages the batch again
// without the column. The commit must not name the staging it replaced,
// whose worker would take its own lists for the ones written.
func TestCommitNamesNoStagingOfAnEarlierRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2)
	e.queue(event, 1, 0, 0)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1}, [2]int{1, 2})
	// What that release's StageMatches sets.
	e.Exec(`UPDATE matchmaking_batches SET base_version = base_version, staged_rows = staged_rows,
		scored_at = clock_timestamp() + interval '1 second' WHERE token = 't'`)
	res, err := e.st.CommitBatch(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	if res.StageID != "" {
		t.Errorf("the commit names staging %s, replaced since by an earlier release's", res.StageID)
	}
}

// TestCommitStaleWhenTheDepartureLogIsIncomplete: a version bump the
// departure log does not explain (here, written by hand) still makes the
// whole batch stale.
func TestCommitStaleWhenTheDepartureLogIsIncomplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1}, [2]int{1, 2})
	e.Exec(`DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, event, uid(3))
	e.Exec(`UPDATE matchmaking_event_state SET version = version + 1 WHERE event_id = $1`, event)
	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); !errors.Is(err, store.ErrBatchStale) {
		t.Fatalf("commit: %v, want ErrBatchStale", err)
	}
	wantStrings(t, "state after stale commit", e.state(event), before...)
}

// TestCommitStaleWhenTheStagingIsGone: a database restart empties the
// unlogged staging table (TRUNCATE does what crash recovery does to it);
// the commit must write nothing and call the batch stale, and the batch
// staged again commits.
func TestCommitStaleWhenTheStagingIsGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1}, [2]int{1, 2}, [2]int{1, 3})
	e.Exec(`TRUNCATE matchmaking_staged_matches`)
	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); !errors.Is(err, store.ErrBatchStale) {
		t.Fatalf("commit: %v, want ErrBatchStale", err)
	}
	wantStrings(t, "state after stale commit", e.state(event), before...)
	e.stageAll(event, "t", []int{1}, [2]int{1, 2}, [2]int{1, 3})
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); err != nil {
		t.Fatalf("commit staged again: %v", err)
	}
	wantStrings(t, "matches", e.Matches(event), "1>2#1", "1>3#2")
}

// TestCommitKeepsUnchangedRows: a list written again keeps the rows that
// come out the same, updated_at included, and replaces the others: another
// member at the rank, or the same member with another insight.
func TestCommitKeepsUnchangedRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3, 4)
	// writes are the updated_at of member 1's rows, by rank.
	writes := func() []string {
		return e.Strings(`SELECT updated_at::text FROM matches WHERE event_id = $1 AND user_id = $2 ORDER BY rank`, event, uid(1))
	}
	commit := func(token string, restage func(), pairs ...[2]int) {
		t.Helper()
		e.queue(event, 1, 0, 0)
		e.claim(event, token, 10)
		e.stageAll(event, token, []int{1}, pairs...)
		restage()
		if _, err := e.st.CommitBatch(e.Ctx, event, token); err != nil {
			t.Fatal(err)
		}
	}
	commit("a", func() {}, [2]int{1, 2}, [2]int{1, 3}, [2]int{1, 4})
	first := writes()

	commit("b", func() {}, [2]int{1, 2}, [2]int{1, 4}, [2]int{1, 3})
	second := writes()
	wantStrings(t, "matches after b", e.Matches(event), "1>2#1", "1>4#2", "1>3#3")
	if second[0] != first[0] || second[1] == first[1] || second[2] == first[2] {
		t.Errorf("writes of ranks 1-3 %q after %q: want rank 1 kept, ranks 2 and 3 written again", second, first)
	}

	commit("c", func() {
		e.Exec(`UPDATE matchmaking_staged_matches SET insight = 'meet 2, again' WHERE token = 'c' AND rank = 1`)
	}, [2]int{1, 2}, [2]int{1, 4}, [2]int{1, 3})
	third := writes()
	if third[0] == second[0] || third[1] != second[1] || third[2] != second[2] {
		t.Errorf("writes of ranks 1-3 %q after %q: want rank 1 (new insight) written again, ranks 2 and 3 kept", third, second)
	}
	wantStrings(t, "insights after c", e.Strings(`SELECT insight FROM matches WHERE event_id = $1 AND user_id = $2 ORDER BY rank`, event, uid(1)),
		"meet 2, again", "meet 4", "meet 3")
}

func TestCommitStaleAfterAnotherCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.queue(event, 2, 0, 0)
	e.claim(event, "a", 1)
	e.claim(event, "b", 1)
	e.stageAll(event, "a", []int{1}, [2]int{1, 3})
	e.stageAll(event, "b", []int{2}, [2]int{2, 3})
	if _, err := e.st.CommitBatch(e.Ctx, event, "a"); err != nil {
		t.Fatal(err)
	}
	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "b"); !errors.Is(err, store.ErrBatchStale) {
		t.Fatalf("commit scored before another commit: %v, want ErrBatchStale", err)
	}
	wantStrings(t, "state after stale commit", e.state(event), before...)
}

func TestCommitLeaseLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.queue(event, 2, 0, 0)
	e.Match(event, 1, 3, 1)
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1, 2}, [2]int{1, 2}, [2]int{2, 1})
	e.expire("a")
	if n := e.claim(event, "b", 1); n != 1 {
		t.Fatalf("claim b after a expired: %d rows, want 1", n)
	}
	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "a"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("commit after another token took a row: %v, want ErrLeaseLost", err)
	}
	wantStrings(t, "state after lost commit", e.state(event), before...)
	wantStrings(t, "matches", e.Matches(event), "1>3#1")
}

func TestCommitExpiredButNotReclaimedStillCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2)
	e.queue(event, 1, 0, 0)
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1}, [2]int{1, 2})
	e.expire("a")
	if _, err := e.st.CommitBatch(e.Ctx, event, "a"); err != nil {
		t.Fatalf("commit with an expired lease nobody took: %v", err)
	}
	wantStrings(t, "queue", e.queueRows(event))
	wantStrings(t, "matches", e.Matches(event), "1>2#1")
}

func TestCommitReleasesRowsEnqueuedDuringBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2) // enqueued at priority 0 by the trigger
	if n := e.claim(event, "t", 10); n != 2 {
		t.Fatalf("claim: %d rows, want 2", n)
	}
	claimed := e.Strings(`SELECT ` + short("user_id") + ` FROM matchmaking_queue WHERE claim_token = 't' ORDER BY user_id`)
	wantStrings(t, "claimed", claimed, "1", "2")
	e.stageAll(event, "t", []int{1, 2}, [2]int{1, 2}, [2]int{2, 1})
	e.members(event, 3) // joins meanwhile: a new row, not the batch's

	// 1 edits their profile while the batch is scoring.
	e.Exec(`UPDATE all_events_members SET bio = 'new bio' WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	res, err := e.st.CommitBatch(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	if res.UsersCommitted != 1 || res.UsersRequeued != 1 || res.ListsWritten != 2 {
		t.Errorf("commit result %+v, want 1 committed, 1 requeued, 2 lists", res)
	}
	wantStrings(t, "matches", e.Matches(event), "1>2#1", "2>1#1")
	wantStrings(t, "queue", e.queueRows(event), "1:2", "3:0")
	if n := e.Int(`SELECT count(*) FROM matchmaking_queue WHERE user_id = $1 AND claim_token IS NULL
		AND claimed_generation IS NULL AND claimed_at IS NULL AND lease_expires_at IS NULL AND generation = 2`, uid(1)); n != 1 {
		t.Errorf("requeued row not released: %v", e.queueFull(event))
	}
	// The released row is claimable again.
	if n := e.claim(event, "next", 10); n != 2 {
		t.Errorf("claim after commit: %d rows, want 2", n)
	}
}

func TestCommitViewerWithoutRowsLosesOldList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 0, 0)
	e.queue(event, 2, 0, 0)
	e.Match(event, 1, 2, 1)
	e.Match(event, 1, 3, 2)
	e.Match(event, 2, 3, 1)
	e.Match(event, 3, 1, 1)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1, 2}, [2]int{2, 1})
	res, err := e.st.CommitBatch(e.Ctx, event, "t")
	if err != nil {
		t.Fatal(err)
	}
	if res.ListsWritten != 2 || res.UsersCommitted != 2 {
		t.Errorf("commit result %+v, want 2 lists, 2 users", res)
	}
	wantStrings(t, "matches", e.Matches(event), "2>1#1", "3>1#1")
}

func TestReleaseBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3)
	e.queue(event, 1, 2, 2*time.Minute)
	e.queue(event, 2, 1, time.Minute)
	e.Match(event, 1, 3, 1)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1, 2}, [2]int{1, 2}, [2]int{2, 1})

	n, err := e.st.ReleaseBatch(e.Ctx, "t", "scoring exploded")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("released %d rows, want 2", n)
	}
	wantStrings(t, "queue", e.Strings(`SELECT concat_ws(' ', `+short("user_id")+`, priority, coalesce(claim_token, '-'),
		coalesce(claimed_generation::text, '-'), coalesce(lease_expires_at::text, '-'), attempts, last_error)
		FROM matchmaking_queue WHERE event_id = $1 ORDER BY user_id`, event),
		"1 2 - - - 1 scoring exploded", "2 1 - - - 1 scoring exploded")
	if n := e.Int(`SELECT count(*) FROM matchmaking_staged_matches WHERE token = 't'`); n != 0 {
		t.Errorf("%d staged rows left after release", n)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_batches WHERE token = 't' AND released_at IS NOT NULL
		AND committed_at IS NULL AND last_error = 'scoring exploded'`); n != 1 {
		t.Error("batch row not marked released")
	}

	before := e.state(event)
	if _, err := e.st.CommitBatch(e.Ctx, event, "t"); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("commit after release: %v, want ErrLeaseLost", err)
	}
	wantStrings(t, "state after commit of a released batch", e.state(event), before...)
	if _, err := e.st.StageMatches(e.Ctx, "t", 0, uids(1), nil, false); !errors.Is(err, store.ErrBatchNotFound) {
		t.Errorf("StageMatches on a released batch: %v, want ErrBatchNotFound", err)
	}

	// Released rows go to the next claim, in their old order.
	if n := e.claim(event, "next", 10); n != 2 {
		t.Errorf("claim after release: %d rows, want 2", n)
	}
}

func TestReleaseBatchLeavesOtherClaimsAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.queue(event, 1, 0, 2*time.Minute)
	e.queue(event, 2, 0, time.Minute)
	e.claim(event, "a", 10)
	e.expire("a")
	e.claim(event, "b", 1) // takes 1 from a
	n, err := e.st.ReleaseBatch(e.Ctx, "a", "gave up")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("released %d rows, want 1", n)
	}
	wantStrings(t, "queue", e.queueRows(event), "1:0*b", "2:0")
}

// A member deleted while a commit is in flight must not survive in the lists
// that commit writes: the delete trigger has to take the event's version lock
// before it looks for matches naming the member.
func TestCommitRacingMemberDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3)
	e.Exec(`DELETE FROM matchmaking_queue`)
	e.queue(event, 1, 0, 0)
	e.claim(event, "t", 10)
	e.stageAll(event, "t", []int{1}, [2]int{1, 3}, [2]int{1, 2})

	// Hold the batch's staged rows so the commit stops after writing matches,
	// while it holds the event's version lock.
	blocker, err := e.Pool.Begin(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(e.Ctx)
	if _, err := blocker.Exec(e.Ctx, `SELECT 1 FROM matchmaking_staged_matches WHERE token = 't' FOR SHARE`); err != nil {
		t.Fatal(err)
	}

	type result struct {
		res store.CommitResult
		err error
	}
	committed := make(chan result, 1)
	go func() {
		res, err := e.st.CommitBatch(e.Ctx, event, "t")
		committed <- result{res, err}
	}()
	e.waitForLockWaiters(1)

	deleted := make(chan error, 1)
	go func() {
		_, err := e.Pool.Exec(e.Ctx, `DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, event, uid(3))
		deleted <- err
	}()
	e.waitForLockWaiters(2)

	if err := blocker.Commit(e.Ctx); err != nil {
		t.Fatal(err)
	}
	r := <-committed
	if err := <-deleted; err != nil {
		t.Fatalf("delete member: %v", err)
	}
	if r.err != nil {
		t.Fatalf("commit: %v", r.err)
	}
	wantStrings(t, "matches", e.Matches(event), "1>2#2")
	wantStrings(t, "queue", e.queueRows(event), "1:1")
	if v := e.version(event); v != 2 {
		t.Errorf("version %d, want 2 (commit and delete)", v)
	}
}

// waitForLockWaiters waits until n backends of the test database wait on a lock.
func (e *env) waitForLockWaiters(n int64) {
	e.T.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.Int(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("%d backends wait on a lock after 10s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBatchFinished: open, committed or released, and never claimed, read
// without claiming anything.
func TestBatchFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.queue(event, 1, 0, time.Minute)
	e.queue(event, 2, 0, time.Minute)
	if n := e.claim(event, "open", 1); n != 1 {
		t.Fatalf("claimed %d, want 1", n)
	}
	if finished, err := e.st.BatchFinished(e.Ctx, "open"); err != nil || finished {
		t.Errorf("open batch: finished %v, err %v", finished, err)
	}
	if _, err := e.st.ReleaseBatch(e.Ctx, "open", "test"); err != nil {
		t.Fatal(err)
	}
	if finished, err := e.st.BatchFinished(e.Ctx, "open"); err != nil || !finished {
		t.Errorf("released batch: finished %v, err %v", finished, err)
	}
	if _, err := e.st.BatchFinished(e.Ctx, "never"); !errors.Is(err, store.ErrBatchNotFound) {
		t.Errorf("unknown token: err %v, want ErrBatchNotFound", err)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_queue WHERE claim_token IS NOT NULL`); n != 0 {
		t.Errorf("reading a batch claimed %d rows", n)
	}
}

// A whole read lists members in UserID order as Go compares the IDs, so a
// worker's pool of it is in UserID order and its shards score each pair of
// a first match once (matching.Pool.ShardOffers). PostgreSQL orders the
// uuid column by its bytes; the test holds that to the canonical text. The
// members go into the heap in random order and the read runs with index
// scans off, so only the query's ORDER BY can sort them.
func TestSnapshotMembersInUserIDOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.Exec(`
		INSERT INTO all_events_members (event_id, user_id, display_name)
		SELECT $1, gen_random_uuid(), 'M' || k FROM generate_series(1, 200) AS k ORDER BY random()`, event)
	e.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority) SELECT event_id, user_id, 0 FROM all_events_members WHERE event_id = $1`, event)
	e.claim(event, "t", 1000)
	cfg, err := pgxpool.ParseConfig(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, scan := range []string{"enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"} {
		cfg.ConnConfig.RuntimeParams[scan] = "off"
	}
	seqScans, err := pgxpool.NewWithConfig(e.Ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seqScans.Close)
	snap, err := store.New(seqScans).LoadSnapshot(e.Ctx, event, "t", store.NoCache)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Members) != 200 {
		t.Fatalf("whole read holds %d members, want 200", len(snap.Members))
	}
	if !slices.IsSortedFunc(snap.Members, func(a, b attendee.Profile) int { return strings.Compare(a.UserID, b.UserID) }) {
		t.Error("the whole read's members are not in UserID order")
	}
}
