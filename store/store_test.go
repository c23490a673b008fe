package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/store"
)

func TestFindEvent(t *testing.T) {
	e := newEnv(t)
	e.event(1, true)
	e.event(2, false)
	// A code that looks like a UUID but is not any event's id.
	e.Exec(`INSERT INTO events (id, code, name) VALUES ($1, $2, 'Odd')`, ev(3), ev(9))

	for _, tc := range []struct{ ref, wantID, wantCode string }{
		{"ev-1", ev(1), "ev-1"},
		{"  ev-2\n", ev(2), "ev-2"},
		{ev(2), ev(2), "ev-2"},
		{strings.ToUpper(ev(1)), ev(1), "ev-1"},
		{ev(9), ev(3), ev(9)},
	} {
		got, err := e.st.FindEvent(e.Ctx, tc.ref)
		if err != nil {
			t.Errorf("FindEvent(%q): %v", tc.ref, err)
			continue
		}
		if got.ID != tc.wantID || got.Code != tc.wantCode {
			t.Errorf("FindEvent(%q) = %+v, want id %s code %s", tc.ref, got, tc.wantID, tc.wantCode)
		}
	}
	got, err := e.st.FindEvent(e.Ctx, "ev-1")
	if err != nil || got != (store.Event{ID: ev(1), Code: "ev-1", Name: "Event 1", MatchmakingEnabled: true}) {
		t.Errorf("FindEvent(ev-1) = %+v, %v", got, err)
	}
	for _, ref := range []string{"nope", ev(7), "", "   "} {
		if _, err := e.st.FindEvent(e.Ctx, ref); !errors.Is(err, store.ErrEventNotFound) {
			t.Errorf("FindEvent(%q): %v, want ErrEventNotFound", ref, err)
		}
	}
}

func TestEnsureEvent(t *testing.T) {
	e := newEnv(t)
	a, err := e.st.EnsureEvent(e.Ctx, "conf", "Conference")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.st.EnsureEvent(e.Ctx, "conf", "Renamed")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.Name != "Conference" || a.MatchmakingEnabled {
		t.Errorf("EnsureEvent twice: %+v then %+v", a, b)
	}
	if n := e.Int(`SELECT count(*) FROM events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func TestEnableEvent(t *testing.T) {
	e := newEnv(t)
	event := e.event(1, false)
	e.members(event, 1, 2, 3)
	wantStrings(t, "queue of a disabled event", e.queueRows(event))

	n, err := e.st.EnableEvent(e.Ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("EnableEvent returned %d, want 3", n)
	}
	if got, _ := e.st.FindEvent(e.Ctx, event); !got.MatchmakingEnabled {
		t.Error("event not enabled")
	}
	wantStrings(t, "queue after enable", sorted(e.queueRows(event)), "1:3", "2:3", "3:3")

	before := e.queueFull(event)
	if n, err := e.st.EnableEvent(e.Ctx, event); err != nil || n != 3 {
		t.Errorf("EnableEvent again: %d, %v; want 3", n, err)
	}
	wantStrings(t, "queue after enabling again", e.queueFull(event), before...)
}

func TestInsertMembers(t *testing.T) {
	e := newEnv(t)
	event := e.event(1, true)
	first := []store.Member{
		{UserID: uid(1), DisplayName: "Ada", Company: "Acme", JobTitle: "CTO", Industry: "Tech",
			Interests: []string{"go", "sql"}, LookingFor: []string{"hires"}, Offering: []string{"advice"}, Bio: "hi"},
		{UserID: uid(2), DisplayName: "Bob"},
	}
	n, err := e.st.InsertMembers(e.Ctx, event, first)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("inserted %d, want 2", n)
	}
	wantStrings(t, "stored members", e.Strings(`SELECT concat_ws('|', `+short("user_id")+`, display_name,
		coalesce(company, 'NULL'), coalesce(job_title, 'NULL'), coalesce(industry, 'NULL'),
		interests::text, looking_for::text, offering::text, bio)
		FROM all_events_members WHERE event_id = $1 ORDER BY user_id`, event),
		"1|Ada|Acme|CTO|Tech|{go,sql}|{hires}|{advice}|hi", "2|Bob|NULL|NULL|NULL|{}|{}|{}|")
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:0", "2:0")
	queueBefore := e.queueFull(event)

	second := []store.Member{
		{UserID: uid(2), DisplayName: "Robert"},
		{UserID: uid(3), DisplayName: "Cy"},
	}
	n, err = e.st.InsertMembers(e.Ctx, event, second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("inserted %d of one new and one existing member, want 1", n)
	}
	wantStrings(t, "names", e.Strings(`SELECT display_name FROM all_events_members WHERE event_id = $1 ORDER BY user_id`, event),
		"Ada", "Bob", "Cy")
	wantStrings(t, "queue of existing members", e.queueFull(event)[:2], queueBefore...)
	wantStrings(t, "queue", sorted(e.queueRows(event)), "1:0", "2:0", "3:0")

	if n, err := e.st.InsertMembers(e.Ctx, event, nil); err != nil || n != 0 {
		t.Errorf("InsertMembers(nil): %d, %v", n, err)
	}
}

func TestEventsWithClaimableWork(t *testing.T) {
	e := newEnv(t)
	free := e.event(1, false)
	leased := e.event(2, false)
	expired := e.event(3, false)
	disabled := e.event(4, false)
	e.event(5, true) // enabled, empty queue
	mixed := e.event(6, false)
	e.queue(free, 1, 0, 0)
	e.queue(leased, 1, 0, 0)
	e.queue(expired, 1, 0, 0)
	e.queue(disabled, 1, 0, 0)
	e.queue(mixed, 1, 0, 0)
	e.queue(mixed, 2, 0, 0)
	e.Exec(`UPDATE events SET matchmaking_enabled = true WHERE id <> $1`, disabled)
	e.claim(leased, "l", 10)
	e.claim(expired, "x", 10)
	e.expire("x")
	e.claim(mixed, "m", 1)

	got, err := e.st.EventsWithClaimableWork(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{free, expired, mixed}; !slices.Equal(got, want) {
		t.Errorf("EventsWithClaimableWork = %v, want %v", got, want)
	}
}

func TestQueueDepthAndMatchCounts(t *testing.T) {
	e := newEnv(t)
	event := e.event(1, true)
	e.members(event, 1, 2, 3)
	e.match(event, 1, 2, 1)
	e.match(event, 1, 3, 2)
	e.match(event, 2, 1, 1)
	e.claim(event, "t", 1)
	if n, err := e.st.QueueDepth(e.Ctx, event); err != nil || n != 3 {
		t.Errorf("QueueDepth: %d, %v; want 3", n, err)
	}
	c, err := e.st.MatchCounts(e.Ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if c != (store.EventMatchCounts{Members: 3, MembersMatched: 2, Rows: 3, Queued: 3}) {
		t.Errorf("MatchCounts = %+v", c)
	}
	views, err := e.st.SampleMatches(e.Ctx, event, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].UserName != "M1" || views[0].MatchedName != "M2" || views[1].Rank != 2 ||
		views[1].MatchedTitle != "Title 3" || views[1].InsightSource != "fallback" {
		t.Errorf("SampleMatches = %+v", views)
	}
}
