package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/eventmatch/matchmaker/activities"
	"github.com/eventmatch/matchmaker/demodata"
	"github.com/eventmatch/matchmaker/internal/testenv"
	"github.com/eventmatch/matchmaker/store"
)

// TestAICacheClear: --event deletes the cached answers of the pairs among
// the event's members as their profiles read now, of every model and
// prompt version, and nothing else: not a pair with a member of another
// event, not another event's pairs, not an answer for a profile as it read
// before an edit. --all deletes the rest. Both say how many as text and
// JSON.
func TestAICacheClear(t *testing.T) {
	db := testenv.NewDB(t)
	dbURL, pool := db.URL, db.Pool
	unreachable(t)
	ctx := context.Background()
	st := store.New(pool)
	members := demodata.Generate(5, 7)
	ids := map[string]string{}
	for i, code := range []string{"left", "right"} {
		ev, err := st.EnsureEvent(ctx, code, code)
		if err != nil {
			t.Fatal(err)
		}
		ids[code] = ev.ID
		// left has members 0-3, right 3-6: member 3 is in both, with the
		// same profile.
		if _, err := st.InsertMembers(ctx, ev.ID, members[i*3:i*3+4]); err != nil {
			t.Fatal(err)
		}
	}
	keysOf := func(event string) []string {
		t.Helper()
		profiles, err := st.EventProfiles(ctx, ids[event])
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, p := range profiles {
			keys = append(keys, activities.ProfileCacheKey(p))
		}
		return keys
	}
	left := keysOf("left")
	var right []string // right's members that are not left's
	for _, k := range keysOf("right") {
		if !slices.Contains(left, k) {
			right = append(right, k)
		}
	}
	if len(left) != 4 || len(right) != 3 {
		t.Fatalf("%d profiles in left, %d only in right; want 4 and 3", len(left), len(right))
	}
	var rows []store.CachedPair
	pair := func(a, b string) {
		rows = append(rows, store.CachedPair{FirstHash: min(a, b), SecondHash: max(a, b), ForFirst: "x", ForSecond: "y"})
	}
	for i := range left {
		for j := i + 1; j < len(left); j++ {
			pair(left[i], left[j])
		}
	}
	wantLeft := 2 * len(rows)                         // two models below
	pair(left[0], right[1])                           // across the events: right's member 4 is not in left
	pair(right[1], right[2])                          // right's own
	pair("0123456789abcdef0123456789abcdef", left[1]) // a profile as it read before an edit
	for _, model := range []string{"gpt-4o-mini", "other-model"} {
		if err := st.CacheInsights(ctx, model, "v1", rows); err != nil {
			t.Fatal(err)
		}
	}
	total := 2 * len(rows)

	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := execute(ctx, append([]string{"--database-url", dbURL}, args...), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
		return out.String(), errOut.String()
	}
	stdout, stderr := run("ai-cache", "clear", "--event", "left", "-o", "json")
	var got aiCacheClearResult
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || stderr != "" {
		t.Fatalf("stdout %q (%v), stderr %q", stdout, err, stderr)
	}
	if got.Deleted != int64(wantLeft) || got.Profiles != 4 || got.Event == nil || got.Event.ID != ids["left"] {
		t.Errorf("ai-cache clear --event left: %+v, want %d deleted from 4 profiles", got, wantLeft)
	}
	if left := db.Int(`SELECT count(*) FROM matchmaking_insight_cache`); left != int64(total-wantLeft) {
		t.Errorf("%d cached answers left, want %d", left, total-wantLeft)
	}
	// Again: nothing more of left's.
	if stdout, _ = run("ai-cache", "clear", "--event", ids["left"]); !strings.HasPrefix(stdout, "deleted 0 cached AI insights of event left") {
		t.Errorf("second clear of left: %q", stdout)
	}
	stdout, _ = run("ai-cache", "clear", "--all")
	if want := fmt.Sprintf("deleted %d cached AI insights: the whole cache\n", total-wantLeft); stdout != want {
		t.Errorf("ai-cache clear --all: %q, want %q", stdout, want)
	}
}

// TestStatusShowsRejectionsByRule: the event's rejected answers by rule,
// from the database, are an object in status -o json and a part of the
// AI backfill line in text.
func TestStatusShowsRejectionsByRule(t *testing.T) {
	db := testenv.NewDB(t)
	dbURL, pool := db.URL, db.Pool
	unreachable(t)
	ctx := context.Background()
	st := store.New(pool)
	ev, err := st.EnsureEvent(ctx, "rejecting", "Rejecting")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnableEvent(ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	members := demodata.Generate(3, 2)
	if _, err := st.InsertMembers(ctx, ev.ID, members); err != nil {
		t.Fatal(err)
	}
	db.Exec(`INSERT INTO matches (event_id, user_id, matched_user_id, rank, score, insight, insight_source)
		VALUES ($1, $2, $3, 1, 0.5, 'fallback', 'fallback'), ($1, $3, $2, 1, 0.5, 'fallback', 'fallback')`,
		ev.ID, members[0].UserID, members[1].UserID)
	db.Exec(`INSERT INTO matchmaking_ai_backfill (event_id, calls, rejections) VALUES ($1, 6, '{"name": 3, "json": 2, "length": 1}')`, ev.ID)

	var out, errOut bytes.Buffer
	if code := execute(ctx, []string{"--database-url", dbURL, "status", "rejecting", "-o", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errOut.String())
	}
	var report struct {
		Events []struct {
			AIBackfill struct {
				Rejections map[string]int `json:"rejections"`
				Line       string         `json:"line"`
			} `json:"ai_backfill"`
		} `json:"events"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil || len(report.Events) != 1 {
		t.Fatalf("status -o json: %v\n%s", err, out.String())
	}
	b := report.Events[0].AIBackfill
	if want := map[string]int{"name": 3, "json": 2, "length": 1}; !maps.Equal(b.Rejections, want) {
		t.Errorf("ai_backfill.rejections %v, want %v", b.Rejections, want)
	}
	out.Reset()
	if code := execute(ctx, []string{"--database-url", dbURL, "status", "rejecting"}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	if want := "6 answers rejected (json 2, length 1, name 3)"; !strings.Contains(out.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, out.String())
	}
}
