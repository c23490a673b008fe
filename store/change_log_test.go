package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/store"
)

func (e *env) snapshot(event, token string, cached store.Cached) store.Snapshot {
	e.T.Helper()
	snap, err := e.st.LoadSnapshot(e.Ctx, event, token, cached)
	if err != nil {
		e.T.Fatalf("LoadSnapshot(%s, %+v): %v", token, cached, err)
	}
	return snap
}

func (e *env) commit(event, token string) {
	e.T.Helper()
	if _, err := e.st.CommitBatch(e.Ctx, event, token); err != nil {
		e.T.Fatalf("CommitBatch(%s): %v", token, err)
	}
}

func cachedAt(snap store.Snapshot) store.Cached {
	return store.Cached{MembersVersion: snap.MembersVersion, ListsVersion: snap.Version}
}

func memberIDs(members []attendee.Profile) []string {
	var ids []string
	for _, m := range members {
		ids = append(ids, m.UserID)
	}
	return sorted(ids)
}

func matchStrings(matches []store.StoredMatch) []string {
	var out []string
	for _, m := range matches {
		out = append(out, m.UserID+">"+m.MatchedUserID)
	}
	return out
}

// A caller that holds an event at some versions gets exactly the members and
// lists that changed since: joins, edits, departures (with the lists that
// named them), quarantine, and the lists a commit rewrote.
func TestLoadSnapshotReadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3, 4, 5)
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1, 3, 4}, [2]int{1, 2}, [2]int{3, 1}, [2]int{4, 1})
	e.commit(event, "a")

	e.members(event, 6)
	e.claim(event, "b", 10)
	full := e.snapshot(event, "b", store.NoCache)
	if !full.MembersLoaded || !full.MatchesLoaded || len(full.Members) != 6 || len(full.Matches) != 3 {
		t.Fatalf("without a cache: members loaded %v (%d), matches loaded %v (%d), want all 6 and all 3",
			full.MembersLoaded, len(full.Members), full.MatchesLoaded, len(full.Matches))
	}
	same := e.snapshot(event, "b", cachedAt(full))
	if same.MembersLoaded || same.MatchesLoaded || len(same.Members)+len(same.MembersGone)+len(same.ListsChanged)+len(same.Matches) > 0 {
		t.Fatalf("nothing changed, yet the snapshot holds %+v", same)
	}

	e.Exec(`UPDATE all_events_members SET bio = 'new bio' WHERE event_id = $1 AND user_id = $2`, event, uid(2))
	e.Exec(`DELETE FROM all_events_members WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	e.members(event, 7)
	if _, err := e.st.QuarantineMembers(e.Ctx, event, []store.RefusedMember{{UserID: uid(5), Reason: "test"}}); err != nil {
		t.Fatal(err)
	}
	delta := e.snapshot(event, "b", cachedAt(full))
	if delta.MembersLoaded || delta.MatchesLoaded {
		t.Fatalf("the change log covers every change, yet members loaded %v, matches loaded %v", delta.MembersLoaded, delta.MatchesLoaded)
	}
	wantStrings(t, "changed members", memberIDs(delta.Members), uid(2), uid(7))
	wantStrings(t, "members gone", sorted(delta.MembersGone), uid(1), uid(5))
	wantStrings(t, "lists changed", sorted(delta.ListsChanged), uid(1), uid(3), uid(4))
	wantStrings(t, "their rows", matchStrings(delta.Matches))
	if delta.Version == full.Version || delta.MembersVersion == full.MembersVersion {
		t.Errorf("versions did not move: %d/%d", delta.Version, delta.MembersVersion)
	}

	e.stageAll(event, "b", []int{6}, [2]int{6, 2})
	e.commit(event, "b")
	e.claim(event, "c", 10)
	afterCommit := e.snapshot(event, "c", cachedAt(delta))
	wantStrings(t, "lists the commit rewrote", afterCommit.ListsChanged, uid(6))
	wantStrings(t, "their rows", matchStrings(afterCommit.Matches), uid(6)+">"+uid(2))
	if len(afterCommit.Members)+len(afterCommit.MembersGone) > 0 || afterCommit.MembersLoaded {
		t.Errorf("a commit changed no member, yet %+v", afterCommit)
	}

	// A hole in the log, a cache from the future or one past the horizon:
	// the whole event, never a partial answer.
	for name, cached := range map[string]store.Cached{
		"future":       {MembersVersion: delta.MembersVersion + 100, ListsVersion: delta.Version},
		"past horizon": {MembersVersion: delta.MembersVersion, ListsVersion: delta.Version - 20_000},
	} {
		snap := e.snapshot(event, "c", cached)
		if name == "future" && !snap.MembersLoaded {
			t.Errorf("%s: members not read in full", name)
		}
		if !snap.MatchesLoaded || len(snap.Matches) != 1 {
			t.Errorf("%s: matches loaded %v with %d rows, want all of them (1)", name, snap.MatchesLoaded, len(snap.Matches))
		}
	}
	e.Exec(`DELETE FROM matchmaking_change_log WHERE event_id = $1 AND counter = 'members'
		AND version = (SELECT max(version) FROM matchmaking_change_log WHERE event_id = $1 AND counter = 'members')`, event)
	holed := e.snapshot(event, "c", cachedAt(full))
	if !holed.MembersLoaded || !holed.MatchesLoaded {
		t.Errorf("with a version missing from the log: members loaded %v, matches loaded %v, want both", holed.MembersLoaded, holed.MatchesLoaded)
	}
	if got := memberIDs(holed.Members); !slices.Equal(got, []string{uid(2), uid(3), uid(4), uid(6), uid(7)}) {
		t.Errorf("members read in full: %v", got)
	}
}

// A member moved to another event by an UPDATE of event_id leaves one event
// and joins the other, and both logs say so.
func TestChangeLogFollowsAMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	from, to := e.Event(1, true), e.Event(2, true)
	e.members(from, 1, 2)
	e.members(to, 3)
	e.claim(from, "a", 10)
	e.claim(to, "b", 10)
	before := map[string]store.Snapshot{"a": e.snapshot(from, "a", store.NoCache), "b": e.snapshot(to, "b", store.NoCache)}

	e.Exec(`UPDATE all_events_members SET event_id = $1 WHERE event_id = $2 AND user_id = $3`, to, from, uid(2))
	left := e.snapshot(from, "a", cachedAt(before["a"]))
	joined := e.snapshot(to, "b", cachedAt(before["b"]))
	if left.MembersLoaded || joined.MembersLoaded {
		t.Fatalf("a move fell back to full reads: %v %v", left.MembersLoaded, joined.MembersLoaded)
	}
	wantStrings(t, "gone from the old event", left.MembersGone, uid(2))
	wantStrings(t, "joined the new event", memberIDs(joined.Members), uid(2))
}

// The log keeps a bounded history: commits prune what is past the horizon.
func TestCommitPrunesTheChangeLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2)
	e.Exec(`INSERT INTO matchmaking_change_log (event_id, counter, version, user_ids)
		SELECT $1, 'members', -20000 - v, ARRAY[$2::uuid] FROM generate_series(1, 50) AS v`, event, uid(1))
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1}, [2]int{1, 2})
	e.commit(event, "a")
	if n := e.Int(`SELECT count(*) FROM matchmaking_change_log WHERE event_id = $1 AND version < 0`, event); n != 0 {
		t.Errorf("%d log rows past the horizon survived a commit", n)
	}
	if n := e.Int(`SELECT count(*) FROM matchmaking_change_log WHERE event_id = $1 AND counter = 'lists'`, event); n != 1 {
		t.Errorf("%d lists log rows after one commit, want 1", n)
	}
}

// Claiming again with the token of a committed or released batch says so,
// rather than handing back rows the batch no longer holds.
func TestClaimOfAFinishedBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3)
	e.claim(event, "a", 2)
	e.stageAll(event, "a", []int{1}, [2]int{1, 2})
	e.commit(event, "a")
	e.claim(event, "b", 2)
	if _, err := e.st.ReleaseBatch(e.Ctx, "b", "test"); err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"a", "b"} {
		n, err := e.st.ClaimBatch(e.Ctx, event, token, 10, time.Minute)
		if !errors.Is(err, store.ErrBatchFinished) || n == 0 {
			t.Errorf("claim again with finished batch %s: %d, %v; want its count and ErrBatchFinished", token, n, err)
		}
	}
}
