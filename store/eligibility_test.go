package store_test

import (
	"slices"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/store"
)

func (e *env) exclude(event string, from, to int, reason string) {
	e.T.Helper()
	e.Exec(`INSERT INTO match_exclusions (event_id, user_id, excluded_user_id, reason) VALUES ($1, $2, $3, $4)`,
		event, uid(from), uid(to), reason)
}

// excludedOf returns the Excluded of each member of the snapshot as
// "member:excluded,excluded", members without exclusions left out.
func excludedOf(members []attendee.Profile) []string {
	var out []string
	for _, m := range members {
		if len(m.Excluded) == 0 {
			continue
		}
		ids := slices.Clone(m.Excluded)
		slices.Sort(ids)
		s := shortOf(m.UserID) + ":"
		for k, id := range ids {
			if k > 0 {
				s += ","
			}
			s += shortOf(id)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// shortOf is testenv.ShortID in Go: the UID's number.
func shortOf(id string) string {
	i := len(id) - 12
	for i < len(id)-1 && id[i] == '0' {
		i++
	}
	return id[i:]
}

// An exclusion takes the pair out of matches at once, both ways, re-matches
// both, fences a batch scored before it, and reaches a cached copy of the
// event through the change log; removing it re-matches both again.
func TestExclusionRematchesBothAndDropsThePair(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	other := e.Event(2, true)
	e.members(event, 1, 2, 3, 4)
	e.members(other, 1, 2)
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1, 2, 3, 4}, [2]int{1, 2}, [2]int{1, 3}, [2]int{2, 1}, [2]int{3, 2}, [2]int{4, 1})
	e.commit(event, "a")
	e.Exec(`DELETE FROM matchmaking_queue`)
	e.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority) VALUES ($1, $2, 0)`, event, uid(3))
	e.claim(event, "b", 10)
	before := e.snapshot(event, "b", store.NoCache)
	version := e.version(event)

	e.exclude(event, 1, 2, "declined")
	wantStrings(t, "matches after 1 declined 2", e.Matches(event), "1>3#2", "3>2#1", "4>1#1")
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:2", "2:2", "3:0*b")
	wantStrings(t, "other event's queue", e.queueRows(other))
	if v := e.version(event); v != version+1 {
		t.Errorf("version %d after the exclusion, want %d", v, version+1)
	}
	wantStrings(t, "departures at the new version", e.Strings(`SELECT `+short("user_id")+` FROM matchmaking_departures
		WHERE event_id = $1 AND version = $2 ORDER BY 1`, event, version+1), "1", "2")

	delta := e.snapshot(event, "b", cachedAt(before))
	if delta.MembersLoaded || delta.MatchesLoaded {
		t.Fatalf("an exclusion made the cache read the whole event: members %v, matches %v", delta.MembersLoaded, delta.MatchesLoaded)
	}
	wantStrings(t, "members read again", memberIDs(delta.Members), uid(1), uid(2))
	wantStrings(t, "their exclusions", excludedOf(delta.Members), "1:2", "2:1")
	wantStrings(t, "lists read again", sorted(delta.ListsChanged), uid(1), uid(2))

	// The batch "b" was scored before the exclusion and lists the pair:
	// its commit sets aside the lists of both, and writes the rest.
	e.stageAll(event, "b", []int{3, 1}, [2]int{3, 1}, [2]int{1, 2})
	e.Exec(`UPDATE matchmaking_batches SET base_version = $1 WHERE token = 'b'`, version)
	res, err := e.st.CommitBatch(e.Ctx, event, "b")
	if err != nil {
		t.Fatalf("CommitBatch: %v", err)
	}
	if res.ListsDeferred != 2 {
		t.Errorf("lists deferred: %d, want 2 (3's names 1, and 1's own)", res.ListsDeferred)
	}
	if got := e.Strings(`SELECT `+short("user_id")+` || '>' || `+short("matched_user_id")+` FROM matches
		WHERE event_id = $1 AND ((user_id = $2 AND matched_user_id = $3) OR (user_id = $3 AND matched_user_id = $2))`,
		event, uid(1), uid(2)); len(got) != 0 {
		t.Errorf("the excluded pair is listed after the commit: %v", got)
	}

	full := e.snapshot(event, "b", store.NoCache)
	wantStrings(t, "exclusions of a whole read", excludedOf(full.Members), "1:2", "2:1")

	// The same pair declined the other way as well, then one row taken back:
	// still excluded; both rows taken back: eligible again.
	e.exclude(event, 2, 1, "blocked")
	e.Exec(`DELETE FROM matchmaking_queue`)
	cached := cachedAt(e.snapshot(event, "b", store.NoCache))
	e.Exec(`DELETE FROM match_exclusions WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	wantStrings(t, "queue after one row taken back", sorted(e.queueRows(event)), "1:2", "2:2")
	delta = e.snapshot(event, "b", cached)
	wantStrings(t, "exclusions after one row taken back", excludedOf(delta.Members), "1:2", "2:1")
	e.Exec(`DELETE FROM matchmaking_queue`)
	cached = cachedAt(delta)
	e.Exec(`DELETE FROM match_exclusions WHERE event_id = $1`, event)
	wantStrings(t, "queue after the exclusion went", sorted(e.queueRows(event)), "1:2", "2:2")
	delta = e.snapshot(event, "b", cached)
	if delta.MembersLoaded {
		t.Fatal("a removed exclusion made the cache read the whole event")
	}
	wantStrings(t, "members read again", memberIDs(delta.Members), uid(1), uid(2))
	wantStrings(t, "exclusions once removed", excludedOf(delta.Members))

	// A new reason is no change for matching; another pair is.
	e.exclude(event, 3, 4, "already_met")
	e.Exec(`DELETE FROM matchmaking_queue`)
	e.Exec(`UPDATE match_exclusions SET reason = 'blocked' WHERE event_id = $1`, event)
	wantStrings(t, "queue after a new reason", e.queueRows(event))
	e.Exec(`UPDATE match_exclusions SET excluded_user_id = $2 WHERE event_id = $1`, event, uid(1))
	wantStrings(t, "queue after the row named another pair", sorted(e.queueRows(event)), "1:2", "3:2", "4:2")

	// Someone who is not a member (yet) is excluded: only the member goes
	// round; the newcomer reads the exclusion when they join.
	e.Exec(`DELETE FROM matchmaking_queue`)
	e.exclude(event, 2, 9, "blocked")
	wantStrings(t, "queue after excluding a non-member", e.queueRows(event), "2:2")
	e.members(event, 9)
	e.claim(event, "c", 10)
	snap := e.snapshot(event, "c", store.NoCache)
	wantStrings(t, "exclusions with the newcomer", excludedOf(snap.Members), "1:3", "2:9", "3:1", "9:2")
}

// Rules re-match the whole event and make every cached copy read it whole,
// rules included; attendee_type and languages are profile columns.
func TestRulesTypesAndLanguagesRematch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, true)
	e.members(event, 1, 2, 3)
	e.claim(event, "a", 10)
	e.stageAll(event, "a", []int{1, 2, 3})
	e.commit(event, "a")
	e.Exec(`INSERT INTO matchmaking_queue (event_id, user_id, priority) VALUES ($1, $2, 0)`, event, uid(3))
	e.claim(event, "b", 10)
	cached := cachedAt(e.snapshot(event, "b", store.NoCache))

	e.Exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'Exhibitor', 'buyer'), ($1, 'buyer', 'exhibitor')`, event)
	wantStrings(t, "queue after rules", sorted(e.queueRows(event)), "1:2", "2:2", "3:2*b")
	snap := e.snapshot(event, "b", cached)
	if !snap.MembersLoaded {
		t.Fatal("new rules did not make a cached copy read the whole event")
	}
	if want := []attendee.Rule{{ViewerType: "Exhibitor", CandidateType: "buyer"}, {ViewerType: "buyer", CandidateType: "exhibitor"}}; !slices.Equal(snap.Rules, want) {
		t.Errorf("rules %v, want %v", snap.Rules, want)
	}
	if _, err := e.Pool.Exec(e.Ctx, `INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, ' ', 'buyer')`, event); err == nil {
		t.Error("a rule with a blank type was accepted")
	}

	e.Exec(`DELETE FROM matchmaking_queue WHERE claim_token IS NULL`)
	cached = cachedAt(snap)
	e.Exec(`UPDATE all_events_members SET attendee_type = 'buyer' WHERE event_id = $1 AND user_id = $2`, event, uid(1))
	e.Exec(`UPDATE all_events_members SET languages = '{English,NULL,"  "}' WHERE event_id = $1 AND user_id = $2`, event, uid(2))
	wantStrings(t, "queue after type and language edits", sorted(e.queueRows(event)), "1:2", "2:2", "3:2*b")
	delta := e.snapshot(event, "b", cached)
	if delta.MembersLoaded {
		t.Fatal("a type edit made the cache read the whole event")
	}
	if len(delta.Members) != 2 || delta.Members[0].AttendeeType != "buyer" || !slices.Equal(delta.Members[1].Languages, []string{"English"}) {
		t.Errorf("edited members read as %+v", delta.Members)
	}

	e.Exec(`DELETE FROM matchmaking_queue WHERE claim_token IS NULL`)
	e.Exec(`DELETE FROM match_rules WHERE event_id = $1 AND viewer_type = 'buyer'`, event)
	wantStrings(t, "queue after a rule went", sorted(e.queueRows(event)), "1:2", "2:2", "3:2*b")
	if snap := e.snapshot(event, "b", cachedAt(delta)); !snap.MembersLoaded || len(snap.Rules) != 1 {
		t.Errorf("after a rule went: whole read %v, rules %v", snap.MembersLoaded, snap.Rules)
	}

	// A disabled event's rules and exclusions change without enqueueing.
	off := e.Event(2, false)
	e.members(off, 1, 2)
	e.Exec(`INSERT INTO match_rules (event_id, viewer_type, candidate_type) VALUES ($1, 'a', 'b')`, off)
	e.exclude(off, 1, 2, "declined")
	wantStrings(t, "queue of a disabled event", e.queueRows(off))
}
