package store_test

import (
	"fmt"
	"testing"

	"github.com/eventmatch/matchmaker/attendee"
	"github.com/eventmatch/matchmaker/profiletext"
	"github.com/eventmatch/matchmaker/store"
)

// TestMovingAMemberIsADepartureAndAnArrival: an UPDATE of a member's
// event_id or user_id leaves no list naming the old identity, re-matches
// those who listed them, enqueues the new identity as a newcomer, and moves
// the members_version of both events so cached pools are rebuilt.
func TestMovingAMemberIsADepartureAndAnArrival(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		update string
		// the new identity, as "event:user"
		wantQueuedNew string
		// events whose members changed
		touched []bool
	}{
		{"to another event", `UPDATE all_events_members SET event_id = $2 WHERE event_id = $1 AND user_id = $3 AND $4::uuid IS NOT NULL`, "2:3", []bool{true, true}},
		{"to another user id", `UPDATE all_events_members SET user_id = $4 WHERE event_id = $1 AND user_id = $3 AND $2::uuid IS NOT NULL`, "1:9", []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			one, two := e.Event(1, true), e.Event(2, true)
			e.members(one, 1, 2, 3, 4)
			e.members(two, 5, 6)
			e.Exec(`DELETE FROM matchmaking_queue`)
			e.Exec(`INSERT INTO matchmaking_event_state (event_id) VALUES ($1), ($2)`, one, two)
			e.Match(one, 1, 3, 1) // 1 and 2 list 3; 3 lists 4
			e.Match(one, 2, 3, 1)
			e.Match(one, 3, 4, 1)
			before := e.Strings(`SELECT members_version::text FROM matchmaking_event_state ORDER BY event_id`)

			e.Exec(tc.update, one, two, uid(3), uid(9))

			if n := e.Int(`SELECT count(*) FROM matches WHERE user_id = $1 OR matched_user_id = $1`, uid(3)); n != 0 {
				t.Errorf("%d match rows still name the old identity", n)
			}
			got := e.Strings(`SELECT ` + short("event_id") + ` || ':' || ` + short("user_id") + ` || ':' || priority
				FROM matchmaking_queue ORDER BY 1`)
			wantStrings(t, "queue", got, "1:1:1", "1:2:1", tc.wantQueuedNew+":0")
			if n := e.Int(`SELECT count(*) FROM matchmaking_departures WHERE event_id = $1 AND user_id = $2`, one, uid(3)); n != 1 {
				t.Errorf("departure of the old identity not logged (%d rows)", n)
			}
			after := e.Strings(`SELECT members_version::text FROM matchmaking_event_state ORDER BY event_id`)
			for i := range after {
				if moved := after[i] != before[i]; moved != tc.touched[i] {
					t.Errorf("members_version of event %d moved: %v, want %v", i+1, moved, tc.touched[i])
				}
			}
		})
	}
}

// TestSnapshotReadsHostileProfiles: arrays of any shape, NULL elements,
// NULL columns and oversized values read as clean, bounded profiles.
func TestSnapshotReadsHostileProfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	event := e.Event(1, false)
	e.members(event, 1, 2, 3, 4, 5)
	for n, set := range map[int]string{
		1: `interests = '{NULL,"AI"}', looking_for = ARRAY[NULL]::text[]`,
		2: `interests = '{{a,b},{c,NULL}}', offering = '[0:1]={x,y}'`,
		3: `interests = ARRAY(SELECT 't' || g FROM generate_series(1, 5000) g), bio = repeat('word ', 300000)`,
		4: `interests = ARRAY[repeat('x', 100000)]`,
		5: `interests = '{}', looking_for = '{"",AI}'`,
	} {
		e.Exec(`UPDATE all_events_members SET `+set+` WHERE event_id = $1 AND user_id = $2`, event, uid(n))
	}
	e.queue(event, 1, 0, 0)
	e.claim(event, "t", 10)
	snap, err := e.st.LoadSnapshot(e.Ctx, event, "t", store.NoCache)
	if err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	got := map[string]attendee.Profile{}
	for _, m := range snap.Members {
		got[m.UserID] = m
	}
	want := map[int]string{1: "[AI] []", 2: "[a b c] []", 5: "[] [ AI]"}
	for n, w := range want {
		m := got[uid(n)]
		if s := fmt.Sprint(m.Interests, " ", m.LookingFor); s != w {
			t.Errorf("member %d: interests, looking_for = %s, want %s", n, s, w)
		}
	}
	if m := got[uid(2)]; fmt.Sprint(m.Offering) != "[x y]" {
		t.Errorf("0-based offering read as %v", m.Offering)
	}
	if m := got[uid(3)]; len(m.Interests) > 4*profiletext.MaxTagsPerField || len([]rune(m.Bio)) != profiletext.MaxBioRunes {
		t.Errorf("oversized profile read as %d tags and %d bio runes", len(m.Interests), len([]rune(m.Bio)))
	}
	if m := got[uid(4)]; len(m.Interests) != 1 || len([]rune(m.Interests[0])) > 4*profiletext.MaxTagRunes {
		t.Errorf("a 100,000-character tag read as %d tags of %d runes", len(m.Interests), len([]rune(m.Interests[0])))
	}
}
